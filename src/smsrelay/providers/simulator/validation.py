"""Twilio's checks on a create-message request, in the order the simulator applies them."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from smsrelay.providers.simulator.tables import MAGIC_FROM, MAGIC_TO, MAX_BODY_CHARS

Params = Mapping[str, str]


def rejection_code(params: Params) -> int | None:
    """The Twilio error code the request is refused with, or None when it is accepted."""
    for check in _CHECKS:
        code = check(params)
        if code is not None:
            return code
    return None


def _missing_to(params: Params) -> int | None:
    return None if params.get("To") else 21604


def _missing_content(params: Params) -> int | None:
    has_content = any(params.get(name) for name in ("Body", "MediaUrl", "ContentSid"))
    return None if has_content else 21602


def _missing_sender(params: Params) -> int | None:
    has_sender = params.get("From") or params.get("MessagingServiceSid")
    return None if has_sender else 21603


def _body_too_long(params: Params) -> int | None:
    return 21617 if len(params.get("Body", "")) > MAX_BODY_CHARS else None


def _magic_from(params: Params) -> int | None:
    return MAGIC_FROM.get(params.get("From", ""))


def _magic_to(params: Params) -> int | None:
    return MAGIC_TO.get(params["To"])


_CHECKS: tuple[Callable[[Params], int | None], ...] = (
    _missing_to,
    _missing_content,
    _missing_sender,
    _body_too_long,
    _magic_from,
    _magic_to,
)
