"""Structured JSON logging with phone numbers, bodies and secrets masked before output."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# An E.164 number (+ and 7-15 digits), or a bare run of 10-15 digits standing alone.
_PHONE = re.compile(r"\+\d{7,15}(?!\d)|(?<![\w.:-])\d{10,15}(?![\w.:-])")
_SECRET_KEYS = frozenset(
    {
        "auth_token",
        "authtoken",
        "api_key",
        "apikey",
        "password",
        "secret",
        "token",
        "body",
        "message",
        "authorization",
    }
)
_PHONE_KEYS = frozenset({"recipient", "to", "from", "phone", "from_", "recipientphonenumber"})


def mask_phone(value: str) -> str:
    """Keep a number recognisable for support without revealing it: `+1******0006`."""
    digits = re.sub(r"\D", "", value)
    if len(digits) <= 4:
        return "*" * len(digits)
    prefix = "+" + digits[0] if value.startswith("+") else ""
    hidden = len(digits) - 4 - (1 if prefix else 0)
    return f"{prefix}{'*' * hidden}{digits[-4:]}"


def mask_text(text: str) -> str:
    """Mask every phone-number-looking run inside free text."""
    return _PHONE.sub(lambda match: mask_phone(match.group(0)), text)


def _mask_value(key: str, value: Any) -> Any:
    normalized = key.lower().replace("_", "").replace("-", "")
    if normalized in _SECRET_KEYS and key != "event":
        return "[redacted]" if value else value
    if isinstance(value, str):
        return mask_phone(value) if normalized in _PHONE_KEYS else mask_text(value)
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(key, item) for item in value]
    if isinstance(value, BaseException):
        return mask_text(repr(value))
    return value


def mask_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask every field except the event name."""
    for key, value in list(event.items()):
        if key != "event":
            event[key] = _mask_value(key, value)
    return event


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    """Send structlog and stdlib logs to stderr as JSON lines, masked."""
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,  # tracebacks become text, then get masked
            mask_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A structlog logger whose lines carry `component=name`."""
    return structlog.get_logger(component=name)
