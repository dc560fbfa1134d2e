"""Errors the service layer raises for callers' mistakes; the API maps each to one HTTP status.

ServiceError
├── InvalidRequest       a field is wrong (names the field)          → 422
├── NotAuthenticated     missing, unknown or revoked API key         → 401
├── NotFound             no such thing for this tenant               → 404
├── Conflict             the request clashes with current state      → 409
├── RateLimited          too many requests; `retry_after` seconds    → 429
└── Unavailable          provider misconfigured or unreachable       → 503
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    code = "error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidRequest(ServiceError):
    code = "invalid_request"

    def __init__(self, field: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{field}: {message}", {"field": field, **(details or {})})
        self.field = field


class NotAuthenticated(ServiceError):
    code = "unauthenticated"


class NotFound(ServiceError):
    code = "not_found"


class Conflict(ServiceError):
    code = "conflict"


class RateLimited(ServiceError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, {"retryAfterSeconds": retry_after})
        self.retry_after = retry_after


class Unavailable(ServiceError):
    code = "provider_unavailable"
