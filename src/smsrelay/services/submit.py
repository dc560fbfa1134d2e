"""Submitting one SMS: validate, normalise, price, and write it to the outbox."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay import metrics
from smsrelay.domain import phones, pricing, senders
from smsrelay.domain.ids import new_id
from smsrelay.domain.messages import MessageEvent, OutboxEntry
from smsrelay.domain.segments import SegmentInfo, analyze
from smsrelay.domain.status import Status
from smsrelay.services import balances, consent, idempotency
from smsrelay.services.errors import InvalidRequest
from smsrelay.store.database import Database
from smsrelay.store.outbox import OutboxRepository, event_of, event_row, to_entry


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant and the API key acting for it."""

    tenant_id: str
    key_id: str | None


@dataclass(frozen=True, slots=True)
class SubmitPolicy:
    """Deployment-wide rules for new messages.

    ``max_characters`` is Twilio's 1600-character limit (UTF-16 code units). ``max_segments`` is
    an optional cost cap, off by default: 1600 GSM-7 characters are already 11 segments.
    ``sender_rules`` and ``price_overrides`` default to the shipped tables; ``default_sender``
    is the provider's configured sender, shown by previews.
    """

    provider: str
    default_region: str | None = None
    max_characters: int = 1600
    max_segments: int | None = None
    sender_rules: senders.SenderRules | None = None
    price_overrides: Mapping[pricing.PriceKey, pricing.Price] | None = None
    default_sender: str | None = None
    routes: Mapping[str, str] = field(default_factory=dict)  # region -> provider, else `provider`


@dataclass(frozen=True, slots=True)
class NewMessage:
    to: str
    message: str
    sender_id: str | None = None
    category: str = "transactional"
    tags: list[str] = field(default_factory=list)
    custom_data: dict[str, Any] = field(default_factory=dict)
    template_key: str | None = None
    override_suppression: bool = False
    scheduled_at: datetime | None = None
    validity_seconds: int | None = None
    smart_encoding: bool = False


@dataclass(frozen=True, slots=True)
class MessagePlan:
    """A validated message: where it goes, from whom, how it is encoded and what it costs."""

    number: phones.PhoneNumber
    segments: SegmentInfo
    sender: senders.SenderChoice
    price: pricing.Price
    provider: str

    @property
    def sender_id(self) -> str | None:
        return None if self.sender.sender is None else self.sender.sender.value

    @property
    def total_cost(self) -> Decimal:
        return pricing.total_cost(self.price, self.segments.segments)


def utcnow() -> datetime:
    return datetime.now(UTC)


async def submit_message(
    db: Database,
    policy: SubmitPolicy,
    principal: Principal,
    new: NewMessage,
    clock: Callable[[], datetime] = utcnow,
) -> OutboxEntry:
    """Validate and store one message as `pending`; the dispatcher sends it."""
    now = clock()
    row = build_row(policy, principal, new, now)
    async with db.transaction() as connection:
        return await add_message(connection, row, now, new.override_suppression)


async def add_message(
    connection: AsyncConnection, row: dict[str, Any], now: datetime, override: bool = False
) -> OutboxEntry:
    """`store_submissions` for one message."""
    (entry,) = await store_submissions(connection, [Submission(row, override)], now)
    return entry


@dataclass(frozen=True, slots=True)
class Submission:
    """A built outbox row waiting to be stored, and whether it may override a suppression."""

    row: dict[str, Any]
    override: bool = False


async def store_submissions(
    connection: AsyncConnection, submissions: Sequence[Submission], now: datetime
) -> list[OutboxEntry]:
    """Check consent, then store built rows and their history in the caller's transaction.

    A few statements for any number of messages (the API's group commit stores every send
    that arrived while the last batch committed). A suppressed recipient's message is stored
    too (status `suppressed`, cost 0): every request leaves a record. Quiet hours for
    marketing defer it instead.
    """
    # Copies: a batch that fails is written again item by item from the rows as built.
    rows = [dict(submission.row) for submission in submissions]
    events = await decide_consent(connection, rows, [s.override for s in submissions])
    stored = await OutboxRepository(connection).add_many(rows, events, returning=True)
    # Last, so a metered tenant's balance row stays locked only until the commit; a 402 or a
    # currency mismatch rolls the messages back with it.
    for tenant_rows in _by_tenant(rows).values():
        await balances.debit_messages(connection, tenant_rows, now)
    history: dict[str, list[MessageEvent]] = {}
    for event in events:
        history.setdefault(event["message_id"], []).append(event_of(event))
    for row in rows:
        metrics.MESSAGES_SUBMITTED.labels(row["status"]).inc()
    return [to_entry(row, history[row["id"]]) for row in stored]


async def write_submissions(
    connection: AsyncConnection, submissions: Sequence[Submission]
) -> list[OutboxEntry]:
    """`store_submissions` now: the writer behind the API's group commit of single sends."""
    return await store_submissions(connection, submissions, utcnow())


async def decide_consent(
    connection: AsyncConnection,
    rows: Sequence[dict[str, Any]],
    overrides: Sequence[bool] | None = None,
) -> list[dict[str, Any]]:
    """Apply the submit-time consent verdict to each pending row; the history events to add.

    The facts for every recipient of a tenant are read in a few queries. `overrides[i]` lets
    transactional row `i` go to a suppressed number (its history says so).
    """
    overridden = {
        row["id"] for row, flag in zip(rows, overrides or [False] * len(rows), strict=True) if flag
    }
    pending = [row for row in rows if row["status"] == Status.PENDING.value]
    extra_events = []
    for tenant_id, own in _by_tenant(pending).items():
        phones = [row["recipient"] for row in own]
        marketing = any(row["category"] == consent.MARKETING for row in own)
        facts = await consent.gather_facts(connection, tenant_id, phones, marketing=marketing)
        for row in own:
            when, phone = row["next_attempt_at"], row["recipient"]
            override = row["id"] in overridden
            decision = consent.decide(facts[phone], phone, row["category"], override, when)
            verdict = consent.submit_verdict(decision, when)
            row.update(consent.verdict_columns(verdict))
            extra = consent.verdict_event(verdict)
            if extra is not None:
                kind, data = extra
                extra_events.append(_event(row, kind, data))
    return [_event(row, "created") for row in rows] + extra_events


def _event(row: dict[str, Any], kind: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return event_row(row["id"], kind, row["created_at"], to_status=row["status"], data=data)


def _by_tenant(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["tenant_id"], []).append(row)
    return grouped


def build_row(
    policy: SubmitPolicy, principal: Principal, new: NewMessage, now: datetime
) -> dict[str, Any]:
    """The outbox row for `new`, or `InvalidRequest` naming the field at fault."""
    if new.override_suppression and new.category != "transactional":
        raise InvalidRequest("overrideSuppression", "applies to transactional messages only")
    return row_from_plan(plan_message(policy, new), principal, new, now)


def row_from_plan(
    plan: MessagePlan, principal: Principal, new: NewMessage, now: datetime
) -> dict[str, Any]:
    """The outbox row for a message already planned (bulk sends plan once per distinct text)."""
    scheduled = scheduled_time(new.scheduled_at, now)
    return {
        "id": new_id("sms"),
        "tenant_id": principal.tenant_id,
        "user_id": principal.key_id,
        "recipient": plan.number.e164,
        "body": plan.segments.text,
        "sender_id": plan.sender_id,
        "provider": plan.provider,
        "category": new.category,
        "encoding": plan.segments.encoding,
        "segments": plan.segments.segments,
        "cost_per_unit": str(plan.price.per_segment),
        "total_cost": str(plan.total_cost),
        "currency": plan.price.currency,
        "status": Status.PENDING.value,
        "created_at": now,
        "updated_at": now,
        "scheduled_at": scheduled,
        "next_attempt_at": scheduled or now,
        "expires_at": _expiry(new.validity_seconds, scheduled or now),
        "tags": list(dict.fromkeys(new.tags)),
        "custom_data": new.custom_data,
        "template_key": new.template_key,
        "attempt_count": 0,
        "retry_count": 0,
        "needs_reconcile": 0,
    }


def plan_message(policy: SubmitPolicy, new: NewMessage) -> MessagePlan:
    """Validate `new` against `policy` (number, text, size, sender) and price it; writes nothing."""
    return plan_for_number(policy, _number(new.to, policy.default_region), new)


def plan_for_number(
    policy: SubmitPolicy, number: phones.PhoneNumber, new: NewMessage
) -> MessagePlan:
    """`plan_message` for a number already normalised; `new.to` is not read."""
    _check_text(new.message, policy.max_characters)
    segments = analyze(new.message, smart_encoding=new.smart_encoding)
    _check_text(segments.text, policy.max_characters)
    _check_segments(segments, policy.max_segments)
    rules = policy.sender_rules or senders.shipped_rules()
    sender = _sender(new.sender_id, number.region, rules)
    provider = policy.routes.get(number.region or "", policy.provider)
    price = pricing.price_for(provider, number.region, policy.price_overrides)
    return MessagePlan(number, segments, sender, price, provider)


def _number(raw: str, default_region: str | None) -> phones.PhoneNumber:
    try:
        return phones.normalize(raw, default_region)
    except phones.InvalidPhoneNumber as exc:
        raise InvalidRequest("to", str(exc)) from None


def _check_text(message: str, limit: int) -> None:
    if not message.strip():
        raise InvalidRequest("message", "must not be empty")
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest("message", "contains an unpaired surrogate; send valid text") from None
    length = len(message.encode("utf-16-le")) // 2
    if length > limit:
        raise InvalidRequest(
            "message",
            f"is {length} characters; the limit is {limit}. Shorten it or split it.",
            {"limit": limit, "length": length},
        )


def _check_segments(segments: SegmentInfo, limit: int | None) -> None:
    if limit is None or segments.segments <= limit:
        return
    hint = " or remove the characters that force UCS-2" if segments.non_gsm_characters else ""
    raise InvalidRequest(
        "message",
        f"is {segments.segments} segments ({segments.encoding}); the limit is {limit} segments. "
        f"Shorten it{hint}.",
        {"segmentLimit": limit, "segments": segments.segments, "encoding": segments.encoding},
    )


def _sender(
    sender_id: str | None, region: str | None, rules: senders.SenderRules
) -> senders.SenderChoice:
    try:
        return senders.choose_sender(sender_id, region, rules)
    except senders.InvalidSender as exc:
        raise InvalidRequest("senderId", str(exc)) from None


MAX_SCHEDULE_AHEAD = timedelta(days=365)


def scheduled_time(scheduled_at: datetime | None, now: datetime) -> datetime | None:
    """`scheduledAt` in UTC (never before `now`), or `InvalidRequest` naming it."""
    if scheduled_at is None:
        return None
    if scheduled_at.tzinfo is None:
        raise InvalidRequest("scheduledAt", "needs a UTC offset, e.g. 2026-01-01T09:00:00+00:00")
    try:
        when = scheduled_at.astimezone(UTC)
    except OverflowError:
        raise InvalidRequest("scheduledAt", "is out of range") from None
    if when > now + MAX_SCHEDULE_AHEAD:
        raise InvalidRequest("scheduledAt", "may be at most 365 days ahead")
    return max(when, now)


def _expiry(validity_seconds: int | None, start: datetime) -> datetime | None:
    if validity_seconds is None:
        return None
    return start + timedelta(seconds=validity_seconds)


async def submit_once(
    db: Database,
    policy: SubmitPolicy,
    principal: Principal,
    new: NewMessage,
    *,
    key: str,
    request_hash: str,
    render: Callable[[OutboxEntry], dict[str, Any]],
) -> idempotency.Answer:
    """`submit_message` under an Idempotency-Key: a repeat replays the first answer."""
    now = utcnow()
    row = build_row(policy, principal, new, now)  # invalid input fails before the key is taken

    async def work(connection: AsyncConnection) -> tuple[int, dict[str, Any]]:
        return 202, render(await add_message(connection, row, now, new.override_suppression))

    return await idempotency.run_once(db, principal.tenant_id, key, request_hash, work)
