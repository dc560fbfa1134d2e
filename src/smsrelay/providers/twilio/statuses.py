"""Twilio's MessageStatus values as data, mapped onto our outbox statuses."""

from __future__ import annotations

from smsrelay.domain.status import Status

# All 13 values of `message_enum_status` in twilio/twilio-oai@d50069b4
# (shared/vectors/twilio_messages_schema.json); lifecycle per Twilio's "Outbound Message
# Status in Status Callbacks" guide (shared/vectors/twilio_webhooks.md).
TWILIO_STATUSES: dict[str, Status | None] = {
    # Twilio holds the message and has not reported a final result: still in flight.
    "accepted": Status.SENT,  # initial status with a Messaging Service
    "scheduled": Status.SENT,  # Messaging Service with SendAt; may still be canceled
    "queued": Status.SENT,  # initial status without a Messaging Service
    "sending": Status.SENT,  # being handed to the carrier
    "sent": Status.SENT,  # carrier took it; a delivery receipt may follow
    # Final results.
    "delivered": Status.DELIVERED,  # carrier receipt says delivered
    "read": Status.DELIVERED,  # read receipt (RCS, WhatsApp) implies delivery
    # Undocumented for SMS; the name says some of the message reached the handset, so it is
    # not a failure to resend (that would duplicate the delivered part) and not in flight.
    "partially_delivered": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED,  # carrier receipt says not delivered
    "failed": Status.FAILED,  # Twilio could not send it
    "canceled": Status.CANCELED,  # a scheduled message canceled before SendAt
    # Inbound messages: never one of ours.
    "receiving": None,
    "received": None,
}


def our_status(twilio_status: str) -> Status | None:
    """Our status for a Twilio MessageStatus; None for inbound or unknown values."""
    return TWILIO_STATUSES.get(twilio_status.strip().lower())
