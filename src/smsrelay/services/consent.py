"""Consent use cases: the append-only ledger, suppressions, and the checks made before a send.

Enforcement (`check_recipient`) is a pure decision plus reads. It is asked twice per message: at
submit (`enforce_at_submit`) and again just before the provider call (`enforce_at_dispatch`), so
a STOP that lands mid-broadcast stops the rest of it. Inbound keywords live in `inbound.py`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.domain import phones, quiet_hours
from smsrelay.domain.ids import new_id
from smsrelay.domain.status import Status
from smsrelay.logs import get_logger
from smsrelay.services.errors import InvalidRequest, NotFound
from smsrelay.store.consent import (
    ConsentLedger,
    SuppressionRepository,
    TenantSettingsRepository,
)
from smsrelay.store.database import Database
from smsrelay.store.outbox import OutboxRepository

log = get_logger("smsrelay.consent")

TRANSACTIONAL, MARKETING = "transactional", "marketing"
CATEGORIES = (TRANSACTIONAL, MARKETING)
CONSENT_STATUSES = ("opted_in", "opted_out")
LIFTED = "suppression_lifted"  # ledger status: an operator removed a suppression
# Issue 5 item 1: how a person gave or withdrew consent, as callers may record it.
CONSENT_METHODS = ("web_form", "keyword", "api", "import", "verbal")

# Issue 5 item 2: why a number is suppressed -> the ledger method recorded with it.
SUPPRESSION_REASONS: dict[str, str] = {
    "keyword": "keyword",  # the person texted an opt-out keyword
    "provider_21610": "provider",  # Twilio error 21610: unsubscribed at the provider
    "manual": "api",  # added by an operator or an application
    "import": "import",  # loaded from a file
}

# Why a send is refused -> the outbox's errorDetails.message.
BLOCK_MESSAGES: dict[str, str] = {
    "opted_out": "the recipient opted out (suppression list); only a transactional message "
    "sent with overrideSuppression may reach them",
    "opt_out_pending": "the recipient's STOP is being recorded; nothing more is sent to them",
    "no_marketing_consent": "marketing needs an opt-in from this number; record one with "
    "POST /api/consents",
    "marketing_opted_out": "the recipient's latest marketing consent is an opt-out",
}
_SUPPRESSION_BLOCKS = frozenset({"opted_out", "opt_out_pending"})


MarketingConsent = Literal["opted_in", "opted_out", "none"]


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- the ledger --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsentInput:
    """One opt-in or opt-out with its evidence, as a caller states it."""

    phone: str
    status: str
    source: str
    method: str
    consent_text: str
    category: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ConsentState:
    """A number's consent history, its suppression (if any) and what marketing may do."""

    phone: str
    records: list[RowMapping]
    suppression: RowMapping | None
    marketing: MarketingConsent


def normalize_phone(raw: str, field: str = "phone") -> str:
    """E.164 form of `raw`, or `InvalidRequest` naming `field`."""
    if raw.startswith(" ") and raw.strip()[:1].isdigit():
        raw = "+" + raw.strip()  # an unencoded "+" in a URL query string arrives as a space
    try:
        return phones.normalize(raw).e164
    except phones.InvalidPhoneNumber as exc:
        raise InvalidRequest(field, str(exc)) from None


def check_consent(entry: ConsentInput, now: datetime) -> ConsentInput:
    """`entry` with its phone normalised, or `InvalidRequest` naming the field at fault."""
    choices = (
        ("status", entry.status, CONSENT_STATUSES),
        ("method", entry.method, CONSENT_METHODS),
        ("category", entry.category or TRANSACTIONAL, CATEGORIES),
    )
    for name, value, allowed in choices:
        if value not in allowed:
            raise InvalidRequest(name, f"must be one of {', '.join(allowed)}")
    if not entry.source.strip():
        raise InvalidRequest("source", "must say where consent was captured, e.g. a form's URL")
    occurred = entry.occurred_at or now
    if occurred.tzinfo is None:
        raise InvalidRequest("occurredAt", "needs a UTC offset, e.g. 2026-01-01T09:00:00Z")
    if occurred > now + timedelta(minutes=5):
        raise InvalidRequest("occurredAt", "is in the future")
    return replace(entry, phone=normalize_phone(entry.phone), occurred_at=occurred)


def ledger_record(
    tenant_id: str, entry: ConsentInput, by: str | None, now: datetime, **evidence: Any
) -> dict[str, Any]:
    return {
        "id": new_id("cns"),
        "tenant_id": tenant_id,
        "phone": entry.phone,
        "status": entry.status,
        "category": entry.category,
        "source": entry.source,
        "method": entry.method,
        "consent_text": entry.consent_text,
        "ip": entry.ip,
        "user_agent": entry.user_agent,
        "occurred_at": entry.occurred_at or now,
        "recorded_at": now,
        "recorded_by": by,
        "evidence": {k: v for k, v in evidence.items() if v is not None},
    }


async def record_consents(
    db: Database, tenant_id: str, by: str | None, entries: Sequence[ConsentInput], now: datetime
) -> list[dict[str, Any]]:
    """Append opt-ins/opt-outs in one transaction; an opt-out from everything also suppresses."""
    checked = [check_consent(entry, now) for entry in entries]
    records = [ledger_record(tenant_id, entry, by, now) for entry in checked]
    async with db.transaction() as connection:
        await ConsentLedger(connection).append_many(records)
        for entry in checked:
            if entry.status == "opted_out" and entry.category is None:
                reason = entry.method if entry.method in ("keyword", "import") else "manual"
                await insert_suppression(connection, tenant_id, entry.phone, reason, by, now)
    return records


async def consent_state(db: Database, tenant_id: str, raw_phone: str) -> ConsentState:
    phone = normalize_phone(raw_phone)
    async with db.transaction() as connection:
        records = await ConsentLedger(connection).history(tenant_id, phone)
        facts = (await gather_facts(connection, tenant_id, [phone]))[phone]
    refused = _marketing_refusal(facts.marketing)
    return ConsentState(phone, records, facts.suppression, _marketing_state(refused))


def _marketing_state(refused: Decision | None) -> MarketingConsent:
    if refused is None:
        return "opted_in"
    return "opted_out" if refused.reason == "marketing_opted_out" else "none"


async def export_consents(
    db: Database, tenant_id: str, raw_phone: str | None, since: datetime | None
) -> list[RowMapping]:
    """The ledger records a dispute needs: one number's history, or everything since a moment."""
    phone = normalize_phone(raw_phone) if raw_phone else None
    async with db.transaction() as connection:
        return await ConsentLedger(connection).export(tenant_id, phone, since)


# --- suppressions ------------------------------------------------------------------------------


async def insert_suppression(
    connection: AsyncConnection,
    tenant_id: str,
    phone: str,
    reason: str,
    by: str | None,
    now: datetime,
    source_ref: str | None = None,
    note: str | None = None,
) -> bool:
    row = {
        "tenant_id": tenant_id,
        "phone": phone,
        "reason": reason,
        "note": note,
        "source_ref": source_ref,
        "created_at": now,
        "created_by": by,
    }
    return await SuppressionRepository(connection).add(row)


def _suppression_record(
    tenant_id: str, phone: str, status: str, reason: str, by: str | None, now: datetime
) -> dict[str, Any]:
    entry = ConsentInput(
        phone=phone,
        status=status,
        source=f"suppression:{reason}",
        method=SUPPRESSION_REASONS.get(reason, "api"),
        consent_text="",
    )
    return ledger_record(tenant_id, entry, by, now, suppressionReason=reason)


async def suppress(
    db: Database,
    tenant_id: str,
    raw_phone: str,
    reason: str,
    by: str | None,
    now: datetime,
    note: str | None = None,
) -> tuple[RowMapping, bool]:
    """Suppress a number (recorded in the ledger); returns the row and whether it is new."""
    if reason not in SUPPRESSION_REASONS:
        raise InvalidRequest("reason", f"must be one of {', '.join(SUPPRESSION_REASONS)}")
    phone = normalize_phone(raw_phone)
    async with db.transaction() as connection:
        created = await insert_suppression(
            connection, tenant_id, phone, reason, by, now, None, note
        )
        if created:
            record = _suppression_record(tenant_id, phone, "opted_out", reason, by, now)
            await ConsentLedger(connection).append(record)
        row = await SuppressionRepository(connection).get(tenant_id, phone)
    assert row is not None
    return row, created


async def lift_suppression(db: Database, tenant_id: str, raw_phone: str, by: str | None) -> None:
    """Remove a suppression (recorded in the ledger); `NotFound` when there is none."""
    phone = normalize_phone(raw_phone)
    now = utcnow()
    async with db.transaction() as connection:
        repository = SuppressionRepository(connection)
        existing = await repository.get(tenant_id, phone)
        await repository.release(tenant_id, phone)
        if existing is None or not await repository.remove(tenant_id, phone):
            raise NotFound(f"{_masked(phone)} is not suppressed")
        record = _suppression_record(tenant_id, phone, LIFTED, existing["reason"], by, now)
        await ConsentLedger(connection).append(record)


async def list_suppressions(
    db: Database, tenant_id: str, raw_phone: str | None, cursor: str | None, limit: int
) -> tuple[list[RowMapping], str | None]:
    """Newest first; with a phone, just that number's suppression (or nothing)."""
    async with db.transaction() as connection:
        repository = SuppressionRepository(connection)
        if raw_phone:
            row = await repository.get(tenant_id, normalize_phone(raw_phone))
            return ([row] if row else []), None
        rows = await repository.page(tenant_id, decode_cursor(cursor), limit + 1)
    return paged(rows, limit, "created_at", "phone")


async def record_provider_opt_out(
    db: Database, tenant_id: str, phone: str, outbox_id: str, now: datetime
) -> None:
    """The provider refused a send because the number unsubscribed there (Twilio 21610)."""
    reason = "provider_21610"
    async with db.transaction() as connection:
        if await insert_suppression(
            connection, tenant_id, phone, reason, "dispatcher", now, outbox_id
        ):
            record = _suppression_record(tenant_id, phone, "opted_out", reason, "dispatcher", now)
            await ConsentLedger(connection).append(record)
    log.info("consent.provider_opt_out", phone=phone, outboxId=outbox_id, tenantId=tenant_id)


# --- enforcement -------------------------------------------------------------------------------


class Verdict(enum.StrEnum):
    ALLOW = "allow"
    BLOCK = "block"
    DEFER = "defer"


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a message may go now: allowed, blocked (with the reason) or deferred until a time."""

    verdict: Verdict
    reason: str | None = None
    until: datetime | None = None
    overridden: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW

    @property
    def message(self) -> str | None:
        if self.verdict is Verdict.DEFER and self.until is not None:
            return f"deferred to the recipient's sending hours, until {self.until.isoformat()}"
        return BLOCK_MESSAGES.get(self.reason or "")

    def event_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"reason": self.reason, **self.details}
        if self.until is not None:
            data["until"] = self.until.isoformat()
        return data


ALLOWED = Decision(Verdict.ALLOW)


@dataclass(frozen=True, slots=True)
class Facts:
    """What enforcement reads about one number; gathered in four queries for a whole batch."""

    held: bool = False
    suppression: RowMapping | None = None
    marketing: tuple[RowMapping, ...] = ()  # opt-ins/opt-outs covering marketing, oldest first
    tenant_rule: quiet_hours.Rule | None = None


async def gather_facts(
    connection: AsyncConnection, tenant_id: str, phones: Sequence[str], *, marketing: bool = True
) -> dict[str, Facts]:
    """The facts for each of `phones`; reads only.

    With `marketing=False` (no marketing message among them) the marketing consents and the
    quiet-hours rule, which `decide` reads for marketing only, are left unread.
    """
    repository = SuppressionRepository(connection)
    # The holds first: a STOP's suppression commits in the same transaction that drops its
    # hold, so reading in this order (each read sees the newest commit) never misses both.
    held = await repository.held_among(tenant_id, phones)
    suppressed = await repository.get_among(tenant_id, phones)
    if not marketing:
        return {phone: Facts(phone in held, suppressed.get(phone)) for phone in phones}
    records = await ConsentLedger(connection).decisions_among(tenant_id, phones, MARKETING)
    rule = _tenant_rule(await TenantSettingsRepository(connection).get(tenant_id))
    by_phone: dict[str, list[RowMapping]] = {}
    for record in records:
        by_phone.setdefault(record["phone"], []).append(record)
    return {
        phone: Facts(phone in held, suppressed.get(phone), tuple(by_phone.get(phone, ())), rule)
        for phone in phones
    }


def decide(facts: Facts, phone: str, category: str, override: bool, now: datetime) -> Decision:
    """May a `category` message reach `phone` now, given the facts? Pure."""
    blocked = _suppression_block(facts)
    if blocked is not None:
        if override and category == TRANSACTIONAL:
            return replace(blocked, verdict=Verdict.ALLOW, overridden=True)
        return blocked
    if category != MARKETING:
        return ALLOWED
    return _marketing_refusal(facts.marketing) or _quiet_hours(phone, facts.tenant_rule, now)


async def check_recipient(
    connection: AsyncConnection,
    tenant_id: str,
    phone: str,
    category: str,
    override: bool = False,
    *,
    now: datetime,
) -> Decision:
    """May a `category` message reach `phone` now? Reads only; writes nothing."""
    facts = await gather_facts(connection, tenant_id, [phone], marketing=category == MARKETING)
    return decide(facts[phone], phone, category, override, now)


def _suppression_block(facts: Facts) -> Decision | None:
    if facts.held:
        return Decision(Verdict.BLOCK, "opt_out_pending")
    row = facts.suppression
    if row is None:
        return None
    details = {"suppressionReason": row["reason"], "suppressedAt": row["created_at"].isoformat()}
    return Decision(Verdict.BLOCK, "opted_out", details=details)


def _marketing_refusal(records: Sequence[RowMapping]) -> Decision | None:
    """None when the newest marketing consent is an opt-in, backed by one not given by keyword.

    A START/YES reply restores an earlier opt-in; on its own it is not consent to marketing.
    """
    latest = records[-1] if records else None
    if latest is not None and latest["status"] == "opted_out":
        return Decision(Verdict.BLOCK, "marketing_opted_out")
    own = any(r["status"] == "opted_in" and r["method"] != "keyword" for r in records)
    if latest is None or not own:
        return Decision(Verdict.BLOCK, "no_marketing_consent")
    return None


def _quiet_hours(phone: str, tenant_rule: quiet_hours.Rule | None, now: datetime) -> Decision:
    rules = quiet_hours.rules_for(quiet_hours.region_of(phone), tenant_rule)
    until = quiet_hours.next_allowed(now, quiet_hours.zones_for(phone), rules)
    return ALLOWED if until <= now else Decision(Verdict.DEFER, "quiet_hours", until=until)


def _tenant_rule(settings: RowMapping | None) -> quiet_hours.Rule | None:
    if settings is None or not settings["quiet_start"] or not settings["quiet_end"]:
        return None
    return (quiet_hours.parse_window(settings["quiet_start"], settings["quiet_end"]),)


class SubmitVerdict(NamedTuple):
    """What submit does with a new message: its status, why, and when it may first go."""

    status: Status
    reason: str | None
    next_attempt_at: datetime


async def enforce_at_submit(
    connection: AsyncConnection,
    tenant_id: str,
    phone: str,
    category: str,
    override: bool,
    now: datetime,
) -> SubmitVerdict:
    """Submit-time check; `now` is when the message would first go (its schedule, if any)."""
    if override and category != TRANSACTIONAL:
        raise InvalidRequest("overrideSuppression", "only transactional messages may set it")
    decision = await check_recipient(connection, tenant_id, phone, category, override, now=now)
    return submit_verdict(decision, now)


def submit_verdict(decision: Decision, now: datetime) -> SubmitVerdict:
    """What submit does with a decision made for a message that would first go at `now`."""
    if decision.verdict is Verdict.BLOCK:
        return SubmitVerdict(Status.SUPPRESSED, decision.reason, now)
    if decision.verdict is Verdict.DEFER and decision.until is not None:
        return SubmitVerdict(Status.PENDING, decision.reason, decision.until)
    return SubmitVerdict(
        Status.PENDING, "suppression_overridden" if decision.overridden else None, now
    )


def verdict_columns(verdict: SubmitVerdict) -> dict[str, Any]:
    """The outbox columns a submit verdict sets (a suppressed message costs nothing)."""
    if verdict.status is not Status.SUPPRESSED:
        return {"status": verdict.status.value, "next_attempt_at": verdict.next_attempt_at}
    return {"status": verdict.status.value, "total_cost": "0", **_block_columns(verdict.reason)}


def verdict_event(verdict: SubmitVerdict) -> tuple[str, dict[str, Any]] | None:
    """The history event (kind, data) a submit verdict adds, if any."""
    kinds = {"suppression_overridden": "consent_override", "quiet_hours": "quiet_hours_deferred"}
    if verdict.status is Status.SUPPRESSED:
        return "consent_blocked", {"reason": verdict.reason}
    if verdict.reason in kinds:
        return kinds[verdict.reason], {"until": verdict.next_attempt_at.isoformat()}
    return None


def _block_columns(reason: str | None) -> dict[str, Any]:
    return {
        "error_code": reason,
        "error_message": BLOCK_MESSAGES.get(reason or "", "blocked by consent rules"),
        "error_more_info": None,
        "error_details": {"reason": reason},
    }


async def enforce_at_dispatch(
    connection: AsyncConnection, row: RowMapping, now: datetime
) -> Decision:
    """The check again, just before the provider call, for one claimed outbox row."""
    (decision,) = await enforce_at_dispatch_batch(connection, [row], now)
    return decision


async def enforce_at_dispatch_batch(
    connection: AsyncConnection, rows: Sequence[RowMapping], now: datetime
) -> list[Decision]:
    """`enforce_at_dispatch` for a claimed batch, in a few queries per tenant."""
    facts: dict[tuple[str, str], Facts] = {}
    for tenant_id in {row["tenant_id"] for row in rows}:
        own = [row for row in rows if row["tenant_id"] == tenant_id]
        phones = [row["recipient"] for row in own]
        marketing = any(row["category"] == MARKETING for row in own)
        found = await gather_facts(connection, tenant_id, phones, marketing=marketing)
        facts.update({(tenant_id, phone): item for phone, item in found.items()})
    decisions = []
    for row in rows:
        key = (row["tenant_id"], row["recipient"])
        decision = decide(facts[key], row["recipient"], row["category"], False, now)
        decisions.append(await _with_override(connection, row, decision))
    return decisions


async def _with_override(
    connection: AsyncConnection, row: RowMapping, decision: Decision
) -> Decision:
    """A transactional message submitted with overrideSuppression goes despite a suppression."""
    if decision.reason not in _SUPPRESSION_BLOCKS or row["category"] != TRANSACTIONAL:
        return decision
    events = await OutboxRepository(connection).events(row["id"])
    if any(event.kind == "consent_override" for event in events):
        return replace(decision, verdict=Verdict.ALLOW, overridden=True)
    return decision


async def record_dispatch_decision(
    connection: AsyncConnection, row: RowMapping, decision: Decision, now: datetime
) -> None:
    """Put a claimed message aside: `suppressed` (cost 0) when blocked, `pending` when deferred."""
    outbox = OutboxRepository(connection)
    released = {"lease_owner": None, "lease_expires_at": None, "updated_at": now}
    if decision.verdict is Verdict.DEFER:
        to, kind = Status.PENDING, "quiet_hours_deferred"
        values = {"next_attempt_at": decision.until, "attempt_count": row["attempt_count"] - 1}
    else:
        to, kind = Status.SUPPRESSED, "consent_blocked"
        values = {"total_cost": "0", **_block_columns(decision.reason)}
    moved = await outbox.update_if_status(
        row["id"], Status.SENDING, status=to.value, **values, **released
    )
    if moved:
        data = decision.event_data()
        await outbox.add_event(
            row["id"], kind, now, from_status=Status.SENDING.value, to_status=to.value, data=data
        )


# --- paging ------------------------------------------------------------------------------------


def encode_cursor(at: datetime, key: str) -> str:
    raw = json.dumps([at.isoformat(), key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    refused = InvalidRequest("cursor", "is not a cursor this API gave out")
    try:
        at, key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment, key = datetime.fromisoformat(at), str(key)
    except (ValueError, TypeError, binascii.Error):
        raise refused from None
    # Never one we gave out, and PostgreSQL refuses both (a NUL; naive against timestamptz).
    if moment.tzinfo is None or "\x00" in key:
        raise refused
    return moment, key


def paged(
    rows: list[RowMapping], limit: int, at: str, key: str
) -> tuple[list[RowMapping], str | None]:
    page = rows[:limit]
    more = len(rows) > limit and page
    return page, encode_cursor(page[-1][at], page[-1][key]) if more else None


def _masked(phone: str) -> str:
    return f"…{phone[-4:]}" if len(phone) > 4 else phone
