"""Twilio error codes as data: which send outcome each code means, and why we think so."""

from __future__ import annotations

from typing import NamedTuple

from smsrelay.providers.base import Outcome

DOCS_URL = "https://www.twilio.com/docs/errors/{code}"

# Where the entries come from. Twilio publishes no retryable flag per code; only 20429 is
# stated to be "always safe to retry". Every other class is our reading of the error
# dictionary text (snapshot men232/twilio-error-codes@d31d1687, copied into
# shared/vectors/twilio_errors.json) or of the product spec (spec/product.md §2).
_DICT = "Twilio error dictionary"
_SPEC = "product.md §2 lists it as permanent"


class CodeClass(NamedTuple):
    """How one Twilio error code is handled: the outcome, a short reason, and its source."""

    outcome: Outcome
    reason: str
    source: str


TWILIO_ERROR_CODES: dict[int, CodeClass] = {
    # -- synchronous errors on POST /Messages (2xxxx) --
    20003: CodeClass(
        Outcome.PERMANENT,
        "authentication failed",
        f"{_DICT}: causes are a wrong SID/token pair, test credentials, a suspended account",
    ),
    20429: CodeClass(
        Outcome.RETRYABLE,
        "rate limited",
        f"{_DICT}: 'never processed and is always safe to retry' (source-explicit)",
    ),
    21211: CodeClass(
        Outcome.PERMANENT,
        "invalid To number",
        f"{_DICT}: To is badly formatted or equals From; fix the number",
    ),
    21212: CodeClass(
        Outcome.PERMANENT,
        "invalid From number",
        f"{_DICT}: 'Invalid From Number (caller ID)'; a configuration fix is needed",
    ),
    21408: CodeClass(
        Outcome.PERMANENT,
        "region not enabled",
        f"{_DICT}: Geo-Permissions do not allow the To region until the account changes them",
    ),
    21606: CodeClass(
        Outcome.PERMANENT,
        "From cannot send to this destination",
        f"{_DICT}: From is not a message-capable Twilio number for this destination",
    ),
    21608: CodeClass(
        Outcome.PERMANENT,
        "To not verified (trial account)",
        f"{_DICT}: trial accounts may only send to verified numbers",
    ),
    21610: CodeClass(
        Outcome.OPTED_OUT,
        "recipient unsubscribed",
        f"{_DICT}: no sending until the subscriber replies START; also suppresses",
    ),
    21611: CodeClass(
        Outcome.RETRYABLE,
        "From queue full",
        f"{_DICT}: 'exceeded the maximum number of queued messages'; rejected at create "
        "(nothing sent) and the queue drains, so a later attempt can succeed",
    ),
    21612: CodeClass(
        Outcome.PERMANENT,
        "To not reachable via SMS",
        f"{_DICT}: no route from this sender to this number",
    ),
    21614: CodeClass(
        Outcome.PERMANENT,
        "To is not a mobile number",
        f"{_DICT}: landline or invalid mobile number",
    ),
    21617: CodeClass(
        Outcome.PERMANENT,
        "body over 1600 characters",
        f"{_DICT}: the concatenated body exceeds the limit; shorten it",
    ),
    21658: CodeClass(
        Outcome.PERMANENT,
        "parameter too long",
        f"{_DICT}: 'Parameter exceeded character limit' (newer twin of 21617 for Body)",
    ),
    # -- delivery errors reported later on the message (3xxxx) --
    30001: CodeClass(
        Outcome.RETRYABLE,
        "queue overflow",
        f"{_DICT}: 'Queue overflow' - the message never left Twilio; product.md §2 retryable",
    ),
    30002: CodeClass(
        Outcome.PERMANENT,
        "account suspended",
        f"{_DICT}: the account was suspended between send and delivery",
    ),
    30003: CodeClass(
        Outcome.PERMANENT,
        "handset unreachable",
        f"{_SPEC}; the dictionary suggests a delayed retry may work (handset off), so an "
        "operator may resend it, but we never resend a carrier-handled message on our own",
    ),
    30004: CodeClass(
        Outcome.PERMANENT,
        "message blocked",
        f"{_DICT}: destination blocked, DNC registry or opted out at the carrier",
    ),
    30005: CodeClass(
        Outcome.PERMANENT,
        "unknown handset",
        f"{_DICT}: the number may no longer exist; verify it",
    ),
    30006: CodeClass(
        Outcome.PERMANENT,
        "landline or unreachable carrier",
        f"{_DICT}: the destination cannot receive this message; use Lookup",
    ),
    30007: CodeClass(
        Outcome.PERMANENT,
        "filtered as spam",
        f"{_DICT}: filtered by Twilio or the carrier; the same content will be filtered again",
    ),
    30008: CodeClass(
        Outcome.PERMANENT,
        "unknown delivery error",
        f"{_SPEC}; the dictionary says 'failed for unknown reasons', which gives no ground "
        "to resend automatically",
    ),
    30010: CodeClass(
        Outcome.PERMANENT,
        "price exceeds MaxPrice",
        f"{_DICT}: 'Message price exceeds max price'; a configuration fix is needed",
    ),
    30032: CodeClass(
        Outcome.PERMANENT,
        "toll-free number not verified",
        f"{_DICT}: 'Toll-Free Verification Required' before messages are delivered",
    ),
    30034: CodeClass(
        Outcome.PERMANENT,
        "sender not 10DLC-registered",
        f"{_DICT}: the number must be registered to an A2P 10DLC campaign first",
    ),
}


def classify(code: int | None, http_status: int | None) -> Outcome:
    """Map a Twilio error code (table first) or else the HTTP status to a send outcome."""
    known = TWILIO_ERROR_CODES.get(code) if code is not None else None
    if known is not None:
        return known.outcome
    if http_status == 429:
        return Outcome.RETRYABLE
    if http_status is not None and http_status >= 500:
        return Outcome.AMBIGUOUS
    # An unknown code on a 4xx, or with no HTTP status at all (a delivery callback), is
    # treated as permanent: resending needs positive evidence that it can succeed.
    return Outcome.PERMANENT


def more_info_url(code: int) -> str:
    """The public documentation page Twilio keeps for an error code."""
    return DOCS_URL.format(code=code)
