"""The simulator's vocabularies: Twilio error codes, magic test numbers and status progressions."""

from __future__ import annotations

from typing import Final, NamedTuple


class RestError(NamedTuple):
    http_status: int
    message: str


# Twilio REST errors the simulator answers with: code -> (HTTP status, message).
# Messages are the titles of Twilio's error dictionary (shared/vectors/twilio_errors.json,
# snapshot men232/twilio-error-codes@d31d1687) unless a line says otherwise; they never
# repeat the caller's phone number or body, so an adapter may log them.
REST_ERRORS: Final[dict[int, RestError]] = {
    # twilio_errors.json rest_error_response_shapes.legacy (twilio-python's test fixture).
    20001: RestError(400, "Bad request"),
    # 401: twilio_errors.json http_status_hints (derived); message as the live API words it.
    20003: RestError(401, "Authenticate"),
    # https://www.twilio.com/docs/errors/20404 (the live API also names the path; left out).
    20404: RestError(404, "The requested resource was not found"),
    # https://www.twilio.com/docs/api/errors/20429 ("HTTP 429 Too Many Requests").
    20429: RestError(429, "Too Many Requests"),
    # https://www.twilio.com/docs/errors/20500 (Twilio's internal server error).
    20500: RestError(500, "An internal server error has occurred"),
    21211: RestError(400, "Invalid 'To' Phone Number"),
    21212: RestError(400, "Invalid From Number (caller ID)"),
    21408: RestError(
        400,
        "Permission to send an SMS has not been enabled for the region indicated by the "
        "'To' number",
    ),
    # Not in the shared vectors: wording of live API responses quoted in public test fixtures
    # (https://www.twilio.com/docs/errors/21602, /21603, /21604).
    21602: RestError(400, "Message body is required."),
    21603: RestError(400, "A 'From' phone number is required."),
    21604: RestError(400, "A 'To' phone number is required."),
    21606: RestError(
        400,
        "The 'From' phone number provided is not a valid message-capable Twilio phone number "
        "for this destination.",
    ),
    21610: RestError(400, "Attempt to send to unsubscribed recipient"),
    21611: RestError(400, "This 'From' number has exceeded the maximum number of queued messages"),
    21612: RestError(400, "The 'To' phone number is not currently reachable via SMS"),
    21614: RestError(400, "'To' number is not a valid mobile number"),
    21617: RestError(400, "The concatenated message body exceeds the 1600 character limit"),
}

# Twilio's test-credential magic numbers: To -> error code.
MAGIC_TO: Final[dict[str, int]] = {
    # https://www.twilio.com/docs/iam/test-credentials#test-sms-messages
    # (copied in shared/vectors/twilio_errors.json test_credentials_magic_numbers.to)
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
    # product.md §2: listed by one of the project's source documents.
    "+15005550007": 21610,
    "+15005550008": 21612,
}

# https://www.twilio.com/docs/iam/test-credentials#test-sms-messages
# (shared/vectors/twilio_errors.json test_credentials_magic_numbers.from): From -> error code.
# Twilio answers 21606 for every other From under test credentials; the simulator, a general
# development provider, accepts them.
MAGIC_FROM: Final[dict[str, int]] = {
    "+15005550001": 21212,
    "+15005550007": 21606,
    "+15005550008": 21611,
}

# https://www.twilio.com/docs/errors/21617: a body may be up to 1600 characters.
MAX_BODY_CHARS: Final = 1600

# Delivery error codes a message may end with: code -> error_message.
# Source: Twilio's error dictionary titles (shared/vectors/twilio_errors.json primary_codes).
DELIVERY_ERRORS: Final[dict[int, str]] = {
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
    30034: "US A2P 10DLC - Message from an Unregistered Number",
}

# The statuses a message passes through for each final status.
# Source: https://www.twilio.com/docs/messaging/guides/track-outbound-message-status
# (failed: never handed to a carrier; undelivered: the carrier reported it undeliverable).
STATUS_STEPS: Final[dict[str, tuple[str, ...]]] = {
    "delivered": ("queued", "sent", "delivered"),
    "undelivered": ("queued", "sent", "undelivered"),
    "failed": ("queued", "failed"),
}

# Illustrative, not a quote: Twilio's US outbound SMS list price per segment, in USD, as of
# 2023 (https://www.twilio.com/en-us/sms/pricing/us); reported negative, as Twilio does.
SEGMENT_PRICE_USD: Final = "0.00790"

API_VERSION: Final = "2010-04-01"
