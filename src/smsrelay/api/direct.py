"""The hot routes' request handling, done by hand instead of by FastAPI's dependency solver.

FastAPI resolves a route's declared parameters (body model, headers, `Depends`) and serialises
its answer on every request; for `POST /api/sms/send` that was most of the CPU a send costs. A
`DirectRoute` is documented by FastAPI as any route but called as a plain `endpoint(request)`;
its endpoint reads, authorises and validates the request itself with the helpers here,
answering every bad request exactly as FastAPI would for the same declarations (the same error
codes and bodies, through the same handlers in `api/errors.py`). `openapi_extra=documented(...)`
documents what such an endpoint reads: the body model, the bearer key and the headers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from smsrelay.api.deps import bearer, container_of, get_principal, require_json
from smsrelay.services.tenants import KeyPrincipal, ensure_scope

Model = TypeVar("Model", bound=BaseModel)
# The models documented as request bodies by `documented`, added to the schema's components.
_BODIES: dict[str, type[BaseModel]] = {}
_MISSING_BODY = [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
EMPTY = object()  # what `read_json` returns for a request without a body


class DirectRoute(APIRoute):
    """A route documented from its declaration (and `openapi_extra`) but called as a plain
    `endpoint(request) -> Response`: FastAPI solves no parameters and serialises no answer.
    Errors it raises reach the app's handlers as from any route."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return endpoint


async def caller(request: Request, scope: str) -> KeyPrincipal:
    """The caller's key: 401 when unusable, 429 over the per-key limit, 403 without `scope`."""
    principal = await get_principal(container_of(request), await bearer(request))
    ensure_scope(principal, scope)
    return principal


async def read_json(request: Request) -> Any:
    """The JSON body (`EMPTY` when none), read in FastAPI's order for a body parameter: decoded
    when the content type is JSON (`application/json` or `…+json`; 400 if it does not parse),
    then 415 unless it is `application/json` itself."""
    raw = await request.body()
    payload = EMPTY
    if raw and _is_json(request.headers.get("content-type", "")):
        payload = _decoded(raw)
    await require_json(request)
    return payload


def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def _decoded(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        error = {
            "type": "json_invalid",
            "loc": ("body", exc.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": exc.msg},
        }
        raise RequestValidationError([error]) from None
    except (RecursionError, ValueError):  # nested too deep; an integer over 4,300 digits
        raise HTTPException(400, "There was an error parsing the body") from None


def parse_body(model: type[Model], payload: Any) -> Model:
    """`payload` as `model`, or the 422 FastAPI gives for a body parameter of that type."""
    if payload is EMPTY:
        raise RequestValidationError(_MISSING_BODY)
    try:
        return model.model_validate(payload, from_attributes=True)  # as FastAPI validates bodies
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from None


def documented(body: type[BaseModel], *headers: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads `body` (JSON) and `headers` itself, with a key."""
    _BODIES[body.__name__] = body
    return {
        "security": [{"HTTPBearer": []}],
        "parameters": [{"in": "header", "required": False, **header} for header in headers],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}
            },
        },
    }


def header_doc(name: str, description: str) -> dict[str, Any]:
    """An optional string header as FastAPI documents `Header(alias=name)`."""
    schema = {"anyOf": [{"type": "string"}, {"type": "null"}], "title": name}
    return {
        "name": name,
        "description": description,
        "schema": schema | {"description": description},
    }


def document_bodies(app: FastAPI) -> None:
    """Add the models `documented` names to the app's OpenAPI components."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, model in _BODIES.items():
                schemas.setdefault(
                    name, model.model_json_schema(ref_template="#/components/schemas/{model}")
                )
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
