"""The one table from errors to HTTP answers: `{"error": {"code", "message", "details"}}`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from smsrelay.logs import get_logger
from smsrelay.services import errors
from smsrelay.services.balances import CurrencyMismatch, InsufficientBalance
from smsrelay.services.test_send import ProviderFailed, ProviderRejected

log = get_logger("smsrelay.api")

STATUS_BY_ERROR: dict[type[errors.ServiceError], int] = {
    errors.InvalidRequest: 422,
    errors.NotAuthenticated: 401,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.RateLimited: 429,
    errors.Unavailable: 503,
    ProviderRejected: 422,
    ProviderFailed: 502,
    InsufficientBalance: 402,
    CurrencyMismatch: 422,
}


class UnsupportedMediaType(errors.ServiceError):
    code = "unsupported_media_type"


STATUS_BY_ERROR[UnsupportedMediaType] = 415


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """Every error answer's JSON."""
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


async def _service_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ServiceError)
    status = next(s for t, s in STATUS_BY_ERROR.items() if isinstance(exc, t))
    headers: dict[str, str] = {}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, errors.NotAuthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    return error_response(status, exc.code, exc.message, exc.details, headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [_problem(error) for error in exc.errors()]
    if any(p["type"] == "json_invalid" for p in problems):
        return error_response(400, "malformed_json", "the body is not valid JSON", problems)
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return error_response(422, "invalid_request", summary, problems)


def _problem(error: Any) -> dict[str, Any]:
    location = [str(part) for part in error.get("loc", ()) if part != "body"]
    field = ".".join(location) or "body"
    message = error.get("msg", "invalid")
    if error.get("type") == "extra_forbidden":
        message = "is not a known field; remove it"
    return {"field": field, "message": message, "type": error.get("type")}


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), None, exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug of ours: log it as one structured line and answer in the usual error shape."""
    log.error("api.unexpected_error", path=request.url.path, error=type(exc).__name__, exc_info=exc)
    return error_response(500, "internal_error", "unexpected error; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Exception, _unexpected)
    app.add_exception_handler(errors.ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
