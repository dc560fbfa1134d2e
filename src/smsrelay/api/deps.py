"""Request dependencies: the container, the caller's tenant, JSON-only bodies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from smsrelay.api.errors import UnsupportedMediaType
from smsrelay.bootstrap import Container
from smsrelay.services.submit import Principal
from smsrelay.services.tenants import authenticate

_bearer = HTTPBearer(auto_error=False, description="An API key from `smsrelay tenants create`")


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_principal(
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return await authenticate(container.db, credentials.credentials if credentials else None)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def require_json(request: Request) -> None:
    """Refuse bodies that are not JSON with 415, naming the content type to use."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(
            f"send the body as JSON with 'Content-Type: application/json' (got {content_type!r})"
        )


JsonBody = Depends(require_json)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
