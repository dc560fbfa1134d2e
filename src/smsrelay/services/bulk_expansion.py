"""Expanding a bulk: one chunk of accepted recipients becomes outbox rows, in one transaction.

A chunk is fenced by the expander's lease and the bulk's cursor (`expanded_count`): the
transaction first renews the lease where both still match, then writes the rows and moves the
cursor. A worker that lost its lease, or a canceled bulk, writes nothing; a crash rolls the
chunk back whole. So every accepted recipient becomes exactly one outbox row.
Consent, suppression and quiet hours are decided per recipient as `submit.add_message` decides
them, with the facts for the whole chunk read in a few queries.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay import metrics
from smsrelay.domain import phones, pricing, senders
from smsrelay.domain.segments import analyze
from smsrelay.domain.templates import Template
from smsrelay.services import balances
from smsrelay.services.errors import InvalidRequest
from smsrelay.services.submit import (
    MessagePlan,
    NewMessage,
    Principal,
    SubmitPolicy,
    decide_consent,
    plan_for_number,
    row_from_plan,
)
from smsrelay.store.balances import BalanceRepository
from smsrelay.store.bulks import BulkRepository
from smsrelay.store.outbox import OutboxRepository

# Debits the stored rows of one chunk in its transaction (services/balances.py), if metered.
Debit = Callable[[AsyncConnection, Sequence[dict[str, Any]], datetime], Any]


@dataclass
class Planner:
    """Plans one bulk's messages, once per distinct (country, text)."""

    policy: SubmitPolicy
    bulk: Mapping[str, Any]
    template: Template = field(init=False)
    plans: dict[tuple[str | None, str], MessagePlan | InvalidRequest] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.template = Template.parse(self.bulk["message"])

    def message(self, text: str, to: str) -> NewMessage:
        bulk = self.bulk
        return NewMessage(
            to=to,
            message=text,
            sender_id=bulk["sender_id"],
            category=bulk["category"],
            tags=list(bulk["tags"] or []),
            custom_data=dict(bulk["custom_data"] or {}),
            template_key=bulk["template_key"],
            scheduled_at=bulk["scheduled_at"],
            validity_seconds=bulk["validity_seconds"],
            smart_encoding=bool(bulk["smart_encoding"]),
        )

    def plan(self, number: phones.PhoneNumber, text: str) -> MessagePlan | InvalidRequest:
        key = (number.region, text)
        if key not in self.plans:
            try:
                self.plans[key] = plan_for_number(self.policy, number, self.message(text, ""))
            except InvalidRequest as exc:
                self.plans[key] = exc
        found = self.plans[key]
        return found if isinstance(found, InvalidRequest) else replace(found, number=number)


def build_rows(
    planner: Planner, principal: Principal, recipients: Sequence[RowMapping], now: datetime
) -> list[dict[str, Any]]:
    """The outbox rows for recipients (status `pending` until consent is decided)."""
    rows = []
    for recipient in recipients:
        number = phones.PhoneNumber(recipient["phone"], recipient["region"], 0)
        values = json.loads(recipient["variables"]) if recipient["variables"] else {}
        text = planner.template.render(values)
        new = planner.message(text, number.e164)
        plan = planner.plan(number, text)
        if isinstance(plan, InvalidRequest):  # screened at accept; a changed rule lands here
            row = _refused_row(planner, principal, new, number, now, plan)
        else:
            row = row_from_plan(plan, principal, new, now)
        row["bulk_id"] = planner.bulk["id"]
        rows.append(row)
    return rows


def _refused_row(
    planner: Planner,
    principal: Principal,
    new: NewMessage,
    number: phones.PhoneNumber,
    now: datetime,
    error: InvalidRequest,
) -> dict[str, Any]:
    """A `failed` row (cost 0) for a recipient the rules refuse since the bulk was accepted."""
    policy = planner.policy
    provider = policy.routes.get(number.region or "", policy.provider)
    price = pricing.price_for(provider, number.region, policy.price_overrides)
    no_sender = senders.choose_sender(None, None, policy.sender_rules or senders.shipped_rules())
    plan = MessagePlan(number, analyze(new.message), no_sender, price, provider)
    row = row_from_plan(plan, principal, new, now)
    row.update(
        status="failed",
        total_cost="0",
        error_code="invalid_request",
        error_message=error.message,
        error_details=error.details,
    )
    return row


async def fail_unpayable(
    connection: AsyncConnection, tenant_id: str, rows: list[dict[str, Any]]
) -> None:
    """Fail (cost 0) each pending row the balance cannot pay in its currency, as a single
    send is refused (422), so one such recipient does not hold back the rest of the bulk."""
    state = await BalanceRepository(connection).state(tenant_id)
    for row in rows:
        error = balances.unpayable(state, row) if row["status"] == "pending" else None
        if error is not None:
            row.update(
                status="failed",
                total_cost="0",
                error_code=error.code,
                error_message=error.message,
                error_details=error.details,
            )


@dataclass(frozen=True, slots=True)
class Chunk:
    """What one chunk did: rows written, and whether the bulk is now fully expanded."""

    written: int
    done: bool
    fenced_out: bool = False


async def expand_chunk(
    connection: AsyncConnection,
    planner: Planner,
    worker: str,
    cursor: int,
    *,
    size: int,
    lease: timedelta,
    now: datetime,
    debit: Debit | None = None,
) -> Chunk:
    """Write the next `size` recipients from `cursor` as outbox rows, if `worker` holds the bulk."""
    bulk = planner.bulk
    repository = BulkRepository(connection)
    if not await repository.hold(bulk["id"], worker, cursor, now, lease):
        return Chunk(0, False, fenced_out=True)
    recipients = await repository.recipients(bulk["id"], cursor, size)
    principal = Principal(bulk["tenant_id"], bulk["user_id"])
    rows = build_rows(planner, principal, recipients, now)
    if debit is not None:
        await fail_unpayable(connection, bulk["tenant_id"], rows)
    events = await decide_consent(connection, rows)
    await OutboxRepository(connection).add_many(rows, events)
    if debit is not None and rows:
        await debit(connection, rows, now)
    done = cursor + len(rows) >= bulk["accepted_count"] or not rows
    await repository.advance(bulk["id"], cursor + len(rows), done, now)
    for status, count in Counter(row["status"] for row in rows).items():
        metrics.MESSAGES_SUBMITTED.labels(status).inc(count)
    return Chunk(len(rows), done)
