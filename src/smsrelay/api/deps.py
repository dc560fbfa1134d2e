"""Request dependencies: the container, the caller's tenant and scopes, JSON-only bodies."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from smsrelay.api.errors import STATUS_BY_ERROR, UnsupportedMediaType
from smsrelay.bootstrap import Container
from smsrelay.services.submit import Principal
from smsrelay.services.tenants import InsufficientScope, KeyPrincipal, authenticate, ensure_scope

bearer = HTTPBearer(auto_error=False, description="An API key from `smsrelay tenants create`")


def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


async def get_container(request: Request) -> Container:
    # async: FastAPI would run a plain function in a thread, a hand-off on every request.
    return container_of(request)


ContainerDep = Annotated[Container, Depends(get_container)]


# A valid key without the scope an operation needs (see `require_scope`).
STATUS_BY_ERROR[InsufficientScope] = 403
API_KEY_LIMIT_SCOPE = "api-key"


async def get_principal(
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> KeyPrincipal:
    """The caller's key (401 when unusable), counted against the per-key rate limit (429)."""
    raw_key = credentials.credentials if credentials else None
    principal = await authenticate(container.db, raw_key, container.key_cache)
    if container.api_key_limiter is not None:
        await container.api_key_limiter.check(API_KEY_LIMIT_SCOPE, principal.key_id or "")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
KeyPrincipalDep = Annotated[KeyPrincipal, Depends(get_principal)]


def require_scope(scope: str, *alternatives: str) -> Any:
    """A route dependency answering 403 unless the caller's key holds `scope` (or one of the
    `alternatives`)."""

    async def check_scope(principal: KeyPrincipalDep) -> None:
        ensure_scope(principal, scope, *alternatives)

    return Depends(check_scope)


async def require_json(request: Request) -> None:
    """Refuse bodies that are not JSON with 415, naming the content type to use."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(
            f"send the body as JSON with 'Content-Type: application/json' (got {content_type!r})"
        )


JsonBody = Depends(require_json)

# The header every POST that creates messages honours (services/idempotency.py).
IDEMPOTENCY_KEY = "Idempotency-Key"
IDEMPOTENCY_KEY_DOC = "Replays the first answer for 24 h"
IdempotencyKeyHeader = Annotated[
    str | None, Header(alias=IDEMPOTENCY_KEY, description=IDEMPOTENCY_KEY_DOC)
]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
