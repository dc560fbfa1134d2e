"""Inbound SMS: store each message once, act on STOP/START/HELP, reply, and list the inbox.

A STOP first places a hold on the number, which blocks new sends at once; then it waits for the
sends already handed to the provider to come back, and only then commits the suppression and
its ledger record. So every message the provider took for that number precedes the suppression.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.domain import keywords, phones, quiet_hours
from smsrelay.domain.ids import new_id
from smsrelay.domain.keywords import Keyword
from smsrelay.logs import get_logger
from smsrelay.services.consent import (
    ConsentInput,
    decode_cursor,
    insert_suppression,
    ledger_record,
    paged,
    utcnow,
)
from smsrelay.services.errors import InvalidRequest, NotFound
from smsrelay.store.consent import (
    ConsentLedger,
    InboundRepository,
    SuppressionRepository,
    TenantSettingsRepository,
)
from smsrelay.store.database import Database
from smsrelay.store.tenants import TenantRepository

log = get_logger("smsrelay.inbound")

# Replies used until a tenant sets its own (an empty text sends none). Our wording, after the
# CTIA Messaging Principles: confirm the opt-out, say how to come back, name the costs.
DEFAULT_REPLIES: dict[Keyword, str] = {
    Keyword.OPT_OUT: "You are unsubscribed and will get no more texts from us. "
    "Reply START to subscribe again.",
    Keyword.OPT_IN: "You are subscribed again. Reply HELP for help or STOP to unsubscribe. "
    "Msg & data rates may apply.",
    Keyword.HELP: "Reply STOP to unsubscribe or START to subscribe again. "
    "Msg & data rates may apply.",
}
DRAIN_POLL_SECONDS = 0.02
# Suppressions a START/YES/UNSTOP reply reverses: its own STOP's, and the provider's (Twilio
# unblocks the number on START too). Manual and imported ones stay until an operator lifts them.
LIFTED_BY_KEYWORD = frozenset({"keyword", "provider_21610"})


# --- inbound messages --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message a person sent to one of our numbers, as the provider's webhook gave it."""

    sid: str
    from_phone: str
    body: str
    received_at: datetime
    to_phone: str | None = None
    opt_out_type: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # Signed with these tenants' own keys (not the platform's): one of their numbers got it,
    # so it is theirs alone. None: signed by the platform's account; ownership is looked up.
    tenant_ids: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class InboundOutcome:
    keyword: Keyword
    reply: str | None
    duplicate: bool = False
    tenant_ids: tuple[str, ...] = ()


async def receive_inbound(
    db: Database,
    inbound: Inbound,
    *,
    drain_seconds: float = 10.0,
    clock: Callable[[], datetime] = utcnow,
) -> InboundOutcome:
    """Store an inbound message once per MessageSid and act on its keyword.

    Ownership: the tenants whose own account's key signed it; else the tenant whose outbox
    most recently addressed the sender, else the tenant marked as the inbound default, else
    the only tenant; a STOP (or START) nobody owns applies to every tenant, and other unowned
    messages are stored for no tenant.
    """
    phone = _inbound_phone(inbound.from_phone)
    keyword = keywords.classify_inbound(inbound.body, inbound.opt_out_type)
    async with db.transaction() as connection:
        if await InboundRepository(connection).get_by_sid(inbound.sid) is not None:
            return InboundOutcome(keyword, None, duplicate=True)
        owners = (
            tuple(sorted(inbound.tenant_ids))
            if inbound.tenant_ids is not None
            else await _owners(connection, phone, keyword)
        )
        if keyword is Keyword.OPT_OUT:
            for tenant_id in owners:
                await SuppressionRepository(connection).hold(tenant_id, phone, clock())
    if keyword is Keyword.OPT_OUT:
        await _drain(db, owners, phone, drain_seconds, clock)
    async with db.transaction() as connection:
        return await _record_inbound(connection, inbound, phone, keyword, owners, clock())


def _inbound_phone(raw: str) -> str:
    try:
        return phones.normalize(raw).e164
    except phones.InvalidPhoneNumber:
        return raw.strip()  # a short code or alphanumeric sender: kept as given


async def _owners(connection: AsyncConnection, phone: str, keyword: Keyword) -> tuple[str, ...]:
    owner = await InboundRepository(connection).last_sender_tenant(phone)
    owner = owner or await TenantSettingsRepository(connection).default_inbound_tenant()
    if owner is not None:
        return (owner,)
    everyone = tuple(row["id"] for row in await TenantRepository(connection).list_tenants())
    if len(everyone) == 1 or keyword in (Keyword.OPT_OUT, Keyword.OPT_IN):
        return everyone
    return ()


async def _drain(
    db: Database,
    tenant_ids: Sequence[str],
    phone: str,
    limit_seconds: float,
    clock: Callable[[], datetime],
) -> None:
    """Wait (bounded) until no send to `phone` is between its final check and the provider."""
    deadline = clock() + timedelta(seconds=limit_seconds)
    while tenant_ids:
        async with db.transaction() as connection:
            busy = await SuppressionRepository(connection).sends_in_flight(
                tenant_ids, phone, clock()
            )
        if not busy:
            return
        if clock() >= deadline:
            log.warning("consent.stop_drain_timed_out", phone=phone, inFlight=busy)
            return
        await asyncio.sleep(DRAIN_POLL_SECONDS)


async def _record_inbound(
    connection: AsyncConnection,
    inbound: Inbound,
    phone: str,
    keyword: Keyword,
    owners: tuple[str, ...],
    now: datetime,
) -> InboundOutcome:
    for tenant_id in owners:
        await SuppressionRepository(connection).release(tenant_id, phone)
    owner = owners[0] if len(owners) == 1 else None
    reply = None if _provider_replied(inbound) else await _reply(connection, owner, keyword)
    row = _inbound_row(inbound, phone, owner, keyword, reply)
    if not await InboundRepository(connection).add(row):
        return InboundOutcome(keyword, None, duplicate=True)
    for tenant_id in owners:
        await _apply_keyword(connection, tenant_id, phone, keyword, inbound, now)
    log.info("consent.inbound_received", keyword=keyword.value, sid=inbound.sid, owners=len(owners))
    return InboundOutcome(keyword, reply, tenant_ids=owners)


def _provider_replied(inbound: Inbound) -> bool:
    """Twilio Advanced Opt-Out answered the keyword itself when it sent `OptOutType`."""
    kind = (inbound.opt_out_type or "").strip().upper()
    return kind in keywords.OPT_OUT_TYPES


async def _reply(
    connection: AsyncConnection, tenant_id: str | None, keyword: Keyword
) -> str | None:
    if keyword not in DEFAULT_REPLIES:
        return None
    row = None if tenant_id is None else await TenantSettingsRepository(connection).get(tenant_id)
    return reply_text(_settings(row), keyword) or None


def _inbound_row(
    inbound: Inbound, phone: str, owner: str | None, keyword: Keyword, reply: str | None
) -> dict[str, Any]:
    return {
        "id": new_id("in"),
        "provider_message_id": inbound.sid,
        "tenant_id": owner,
        "from_phone": phone,
        "to_phone": inbound.to_phone,
        "body": inbound.body,
        "keyword": keyword.value,
        "opt_out_type": inbound.opt_out_type,
        "reply": reply,
        "received_at": inbound.received_at,
        "params": inbound.params,
    }


async def _apply_keyword(
    connection: AsyncConnection,
    tenant_id: str,
    phone: str,
    keyword: Keyword,
    inbound: Inbound,
    now: datetime,
) -> None:
    """An opt-out suppresses, an opt-in lifts what a STOP did; both are ledger records."""
    statuses = {Keyword.OPT_OUT: "opted_out", Keyword.OPT_IN: "opted_in"}
    if keyword not in statuses:
        return
    entry = ConsentInput(
        phone=phone,
        status=statuses[keyword],
        source="inbound_sms",
        method="keyword",
        consent_text=inbound.body,
        occurred_at=inbound.received_at,
    )
    evidence = {
        "messageSid": inbound.sid,
        "to": inbound.to_phone,
        "optOutType": inbound.opt_out_type,
    }
    await ConsentLedger(connection).append(
        ledger_record(tenant_id, entry, "inbound", now, **evidence)
    )
    if keyword is Keyword.OPT_OUT:
        await insert_suppression(
            connection, tenant_id, phone, "keyword", "inbound", now, inbound.sid
        )
        return
    repository = SuppressionRepository(connection)
    existing = await repository.get(tenant_id, phone)
    if existing is not None and existing["reason"] in LIFTED_BY_KEYWORD:
        await repository.remove(tenant_id, phone)


async def list_inbox(
    db: Database, tenant_id: str, keyword: str | None, cursor: str | None, limit: int
) -> tuple[list[RowMapping], str | None]:
    """The tenant's inbound messages, newest first."""
    async with db.transaction() as connection:
        rows = await InboundRepository(connection).page(
            tenant_id, keyword, decode_cursor(cursor), limit + 1
        )
    return paged(rows, limit, "received_at", "id")


# --- per-tenant settings -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsentSettings:
    """Reply texts (None = the default, "" = no reply) and the tenant's sending hours."""

    opt_out_reply: str | None = None
    opt_in_reply: str | None = None
    help_reply: str | None = None
    quiet_start: str | None = None
    quiet_end: str | None = None

    @property
    def hours(self) -> tuple[str, str]:
        """The sending hours in force, "HH:MM" each (the product default when unset)."""
        if self.quiet_start and self.quiet_end:
            return self.quiet_start, self.quiet_end
        window = quiet_hours.DEFAULT_RULE[0]
        end = "24:00" if window.end is None else window.end.strftime("%H:%M")
        return window.start.strftime("%H:%M"), end


def reply_text(settings: ConsentSettings, keyword: str) -> str:
    """The reply to a keyword: the tenant's own text, else the default ("" = send none)."""
    own: str | None = getattr(settings, f"{keyword}_reply")
    return DEFAULT_REPLIES[Keyword(keyword)] if own is None else own


def _settings(row: RowMapping | None) -> ConsentSettings:
    if row is None:
        return ConsentSettings()
    return ConsentSettings(**{name: row[name] for name in ConsentSettings.__dataclass_fields__})


async def get_consent_settings(db: Database, tenant_id: str) -> ConsentSettings:
    async with db.transaction() as connection:
        return _settings(await TenantSettingsRepository(connection).get(tenant_id))


async def update_consent_settings(
    db: Database, tenant_id: str, changes: dict[str, Any]
) -> ConsentSettings:
    """Change some settings; the sending hours are given as a pair of "HH:MM" times."""
    current = await get_consent_settings(db, tenant_id)
    wanted = replace(current, **changes)
    _check_hours(wanted.quiet_start, wanted.quiet_end)
    async with db.transaction() as connection:
        await TenantSettingsRepository(connection).save(tenant_id, changes, utcnow())
    return wanted


def _check_hours(start: str | None, end: str | None) -> None:
    if (start is None) != (end is None):
        raise InvalidRequest("quietHoursEnd" if end is None else "quietHoursStart", "set both")
    if start is None or end is None:
        return
    try:
        quiet_hours.parse_window(start, end)
    except ValueError as exc:
        raise InvalidRequest("quietHoursStart", f"{exc}; use HH:MM, end 24:00 at most") from None


async def set_default_inbound_tenant(db: Database, tenant_id: str) -> None:
    """Make `tenant_id` own inbound messages from numbers no tenant has texted."""
    now = utcnow()
    async with db.transaction() as connection:
        known = {row["id"] for row in await TenantRepository(connection).list_tenants()}
        if tenant_id not in known:
            raise NotFound(f"no tenant {tenant_id!r}")
        settings = TenantSettingsRepository(connection)
        await settings.clear_default_inbound(now)
        await settings.save(tenant_id, {"inbound_default": 1}, now)
