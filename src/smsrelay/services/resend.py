"""Resending a failed or undelivered message, up to a per-message cap."""

from __future__ import annotations

from datetime import UTC, datetime

from smsrelay.domain.messages import OutboxEntry
from smsrelay.domain.status import RESENDABLE, Status
from smsrelay.services import balances
from smsrelay.services.errors import Conflict, NotFound
from smsrelay.store.database import Database
from smsrelay.store.outbox import OutboxRepository, to_entry

# Provider errors that mean the recipient must not be texted again (Twilio 21610: opted out).
NEVER_RESEND_CODES = frozenset({"21610"})


class ResendRefused(Conflict):
    code = "resend_refused"


async def resend_message(
    db: Database, tenant_id: str, outbox_id: str, cap: int, now: datetime | None = None
) -> OutboxEntry:
    """Queue a failed/undelivered message again; refuse (and change nothing) past `cap`."""
    now = now or datetime.now(UTC)
    async with db.transaction() as connection:
        outbox = OutboxRepository(connection)
        row = await outbox.get_row(outbox_id, tenant_id, lock=True)  # a rival resend waits
        if row is None:
            raise NotFound(f"no outbox entry {outbox_id!r}")
        _check_resendable(Status(row["status"]), row["resend_count"], cap, row["error_code"])
        await balances.debit_resend(connection, row, now)  # a resend is a new, paid send
        moved = await outbox.update_if_status(
            outbox_id,
            Status(row["status"]),
            status=Status.PENDING.value,
            next_attempt_at=now,
            attempt_count=0,
            resend_count=row["resend_count"] + 1,
            retry_count=row["retry_count"] + 1,
            provider_message_id=None,
            updated_at=now,
        )
        if not moved:
            raise Conflict("the message changed while resending; read it and try again")
        await outbox.add_event(
            outbox_id,
            "resend_requested",
            now,
            from_status=row["status"],
            to_status=Status.PENDING.value,
            data={
                "resend": row["resend_count"] + 1,
                "cap": cap,
                "previousMessageId": row["provider_message_id"],
            },
        )
        stored = await outbox.get_row(outbox_id, tenant_id)
        assert stored is not None
        return to_entry(stored, await outbox.events(outbox_id))


def _check_resendable(status: Status, resends: int, cap: int, error_code: str | None) -> None:
    if status not in RESENDABLE:
        allowed = " or ".join(sorted(s.value for s in RESENDABLE))
        raise ResendRefused(
            f"only {allowed} messages can be resent; this one is {status.value}",
            {"status": status.value},
        )
    if error_code in NEVER_RESEND_CODES:
        raise ResendRefused(
            "the recipient opted out (provider error 21610); not resending",
            {"errorCode": error_code},
        )
    if resends >= cap:
        raise ResendRefused(
            f"this message was already resent {resends} times; the cap is {cap}",
            {"resends": resends, "cap": cap},
        )
