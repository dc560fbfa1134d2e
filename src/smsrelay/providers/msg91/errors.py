"""MSG91's error codes and HTTP statuses as data: which send outcome each one means, and why."""

from __future__ import annotations

from typing import NamedTuple

from smsrelay.providers.base import Outcome

# Where the entries come from. MSG91 publishes one error-code table for its HTTP APIs
# (api.msg91.com/apidoc "Error Code" page, mirrored in tesark/msg91-php ERRORCODE.md) and,
# like Twilio, no retryable flag: each class below is our reading of the code's text.
_CODES = "MSG91 API error-code table"
DOCS_URL = "https://docs.msg91.com/"


class CodeClass(NamedTuple):
    """How one MSG91 code or HTTP status is handled: the outcome, a reason and its source."""

    outcome: Outcome
    reason: str
    source: str


def _permanent(reason: str, source: str = _CODES) -> CodeClass:
    return CodeClass(Outcome.PERMANENT, reason, source)


MSG91_ERROR_CODES: dict[str, CodeClass] = {
    # -- missing parameters: the request we built is incomplete --
    "101": _permanent("missing mobile number", f"{_CODES}: 'Missing mobile no.'"),
    "102": _permanent("missing message", f"{_CODES}: 'Missing message'"),
    "103": _permanent("missing sender ID", f"{_CODES}: 'Missing sender ID'"),
    "106": _permanent("missing auth key", f"{_CODES}: 'Missing Authentication Key'"),
    # -- invalid parameters: fix the number or the configuration --
    "202": _permanent("invalid mobile number", f"{_CODES}: under 10 digits or not numeric"),
    "203": _permanent("invalid sender ID", f"{_CODES}: the sender ID must be 6 characters"),
    "207": _permanent("invalid auth key", f"{_CODES}: check MSG91_AUTH_KEY"),
    "208": _permanent("IP blacklisted", f"{_CODES}: requests from outside the whitelisted IPs"),
    "418": _permanent("IP not whitelisted", f"{_CODES}; msg91.com/help/api 'API security'"),
    # -- account state: nothing sent, and nothing changes until someone acts --
    "301": _permanent(
        "insufficient balance",
        f"{_CODES}: 'Insufficient balance'; only a top-up helps, so an operator resends",
    ),
    "302": _permanent("account expired", f"{_CODES}: 'Expired user account'"),
    "303": _permanent("account banned", f"{_CODES}: 'Banned user account'"),
    "505": _permanent("demo account", f"{_CODES}: 'Your account is a demo account'"),
    # -- request content --
    "307": _permanent("incorrect schedule time", f"{_CODES}: 'Incorrect scheduled time'"),
    "310": _permanent("message too long", f"{_CODES}: 'SMS is too long'"),
    # -- nothing sent, and a later attempt can succeed --
    "306": CodeClass(
        Outcome.RETRYABLE,
        "route closed at this hour",
        f"{_CODES}: the route only sends between 9 AM and 9 PM; rejected, not queued",
    ),
    "506": CodeClass(
        Outcome.RETRYABLE,
        "small-campaign limit",
        f"{_CODES}: at most 20 small campaigns per 24 hours; the window moves on",
    ),
    "001": CodeClass(
        Outcome.RETRYABLE,
        "MSG91 database unavailable",
        f"{_CODES}: 'Unable to connect database'; the request was not recorded",
    ),
    "002": CodeClass(
        Outcome.RETRYABLE,
        "MSG91 database unavailable",
        f"{_CODES}: 'Unable to select database'; the request was not recorded",
    ),
    # -- the message may already be out --
    "311": CodeClass(
        Outcome.AMBIGUOUS,
        "duplicate within 10 seconds",
        f"{_CODES}: the same request was made twice within 10 s, so an earlier attempt "
        "of ours reached MSG91; sending again would duplicate it",
    ),
    "601": CodeClass(
        Outcome.AMBIGUOUS,
        "MSG91 internal error",
        f"{_CODES}: 'Internal error'; like a 5xx, it does not say whether anything was sent",
    ),
}

HTTP_STATUSES: dict[int, CodeClass] = {
    400: _permanent("bad request", "RFC 9110 §15.5.1: the request must change"),
    401: _permanent("auth key rejected", "RFC 9110 §15.5.2; MSG91 answers 401 to a bad authkey"),
    403: _permanent("forbidden", "RFC 9110 §15.5.4: the account may not do this"),
    404: _permanent("no such endpoint", "RFC 9110 §15.5.5: check MSG91_API_BASE_URL"),
    408: CodeClass(
        Outcome.RETRYABLE,
        "request timeout",
        "RFC 9110 §15.5.9: the server closed before it received the whole request",
    ),
    429: CodeClass(Outcome.RETRYABLE, "rate limited", "RFC 6585 §4: too many requests, try later"),
}


def classify(code: str | None, http_status: int | None) -> Outcome:
    """Map an MSG91 error code (table first), else the HTTP status, to a send outcome."""
    known = MSG91_ERROR_CODES.get(code) if code is not None else None
    if known is None and http_status is not None:
        known = HTTP_STATUSES.get(http_status)
    if known is not None:
        return known.outcome
    if http_status is not None and http_status >= 500:
        # RFC 9110 §15.6: the server failed, and may have acted on the request first.
        return Outcome.AMBIGUOUS
    # Any other refusal (a 3xx or 4xx, or an error answered with 200): resending needs
    # positive evidence that it can succeed.
    return Outcome.PERMANENT
