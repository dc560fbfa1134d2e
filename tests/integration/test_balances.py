"""Per-tenant balances: exact debits at submit, refunds of sends that never went, hard stop."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from smsrelay.dispatch.dispatcher import DispatchConfig
from smsrelay.dispatch.retry import RetryPolicy
from smsrelay.domain.status import Status
from smsrelay.providers.base import Outcome, ProviderError, SendResult
from smsrelay.services import balances
from smsrelay.services.alerts import AlertNetwork, AlertSettingsInput, save_alert_settings
from smsrelay.services.delivery import StatusUpdate, apply_status_update
from smsrelay.services.resend import ResendRefused, resend_message
from smsrelay.store.database import Database
from smsrelay.store.tables import alerts, balance_ledger, balance_watch, messages
from tests.integration.conftest import Api
from tests.integration.world import Clock, World

# The simulator is priced as Twilio: 0.0083 USD per segment to the US (domain/data/prices.json).
SEGMENT = Decimal("0.0083")
# The fake provider has no price in the table: the fallback, 0.05 USD per segment.
FAKE_SEGMENT = Decimal("0.05")


@pytest.fixture
async def world(db: Database) -> World:
    config = DispatchConfig(lease_seconds=30, reconcile_after_seconds=5)
    policy = RetryPolicy(max_attempts=3, base_delay=1, max_delay=10)
    return await World.create(db, Clock(), config=config, policy=policy)


async def _ledger(db: Database, tenant_id: str) -> list[tuple[str, int, str | None]]:
    async with db.reading() as connection:
        rows = await connection.execute(
            select(
                balance_ledger.c.kind, balance_ledger.c.amount_micros, balance_ledger.c.message_id
            )
            .where(balance_ledger.c.tenant_id == tenant_id)
            .order_by(balance_ledger.c.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def _count(db: Database, table: Any, *where: Any) -> int:
    async with db.reading() as connection:
        return int(await connection.scalar(select(func.count()).select_from(table).where(*where)))


async def _balance(db: Database, tenant_id: str) -> Decimal:
    view = await balances.show(db, tenant_id)
    assert view.balance is not None
    return Decimal(view.balance)


async def _settle(world: World) -> int:
    return await balances.settle_finished(world.db, world.clock.now)


# -- not metered -----------------------------------------------------------------------------


async def test_a_tenant_without_an_account_is_not_metered(api: Api) -> None:
    assert (await api.send(to="+15005550006", message="Hello")).status_code == 202
    answer = (await api.client.get("/api/balance", headers=api.auth())).json()
    assert answer["metered"] is False and answer["balance"] is None and answer["movements"] == []
    db = api.container.db
    assert await _count(db, balance_ledger) == 0
    assert await _count(db, balance_watch) == 0


# -- debits ----------------------------------------------------------------------------------


async def test_each_send_debits_its_exact_cost(api: Api) -> None:
    db = api.container.db
    await balances.credit(db, api.tenant_id, "1.00", _now(), note="first top-up")
    one = await api.send(to="+15005550006", message="Hello")
    two = await api.send(to="+15005550006", message="x" * 161)  # 2 GSM-7 segments
    assert one.status_code == two.status_code == 202
    assert two.json()["totalCost"] == "0.0166"
    assert await _balance(db, api.tenant_id) == Decimal("1.00") - 3 * SEGMENT
    answer = (await api.client.get("/api/balance", headers=api.auth())).json()
    assert answer["balance"] == "0.9751" and answer["currency"] == "USD"
    kinds = [(m["kind"], m["amount"], m["outboxId"]) for m in answer["movements"]]
    assert kinds == [
        ("debit", "-0.0166", two.json()["outboxId"]),
        ("debit", "-0.0083", one.json()["outboxId"]),
        ("credit", "1", None),
    ]
    assert answer["movements"][2]["note"] == "first top-up"


async def test_an_idempotent_replay_debits_once(api: Api) -> None:
    await balances.credit(api.container.db, api.tenant_id, "1", _now())
    headers = {**api.auth(), "Idempotency-Key": "order-42"}
    body = {"to": "+15005550006", "message": "Hello"}
    first = await api.client.post("/api/sms/send", json=body, headers=headers)
    again = await api.client.post("/api/sms/send", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["outboxId"] == again.json()["outboxId"]
    assert await _balance(api.container.db, api.tenant_id) == 1 - SEGMENT
    assert [k for k, _, _ in await _ledger(api.container.db, api.tenant_id)] == ["credit", "debit"]


async def test_a_suppressed_send_costs_nothing(api: Api) -> None:
    await balances.credit(api.container.db, api.tenant_id, "1", _now())
    marketing = await api.send(to="+15005550006", message="Sale", category="marketing")
    assert marketing.json()["status"] == "suppressed"  # no opt-in on record
    assert await _balance(api.container.db, api.tenant_id) == 1


async def test_a_message_priced_in_another_currency_is_refused(api: Api) -> None:
    await balances.credit(api.container.db, api.tenant_id, "10", _now(), currency="EUR")
    answer = await api.send(to="+15005550006", message="Hello")
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "currency_mismatch"
    assert "priced in USD but the balance is in EUR" in error["message"]
    assert await _count(api.container.db, messages) == 0
    assert await _balance(api.container.db, api.tenant_id) == 10


# -- hard stop -------------------------------------------------------------------------------


async def _hard_stop(api: Api, **extra: Any) -> None:
    api.container.alert_network = AlertNetwork(allow_http=True, allow_loopback_for_tests=True)
    body = {"hardStop": True, **extra}
    answer = await api.client.put("/api/alerts", json=body, headers=api.auth())
    assert answer.status_code == 200, answer.text


async def test_hard_stop_refuses_a_send_the_balance_cannot_pay_and_stores_nothing(
    api: Api,
) -> None:
    await balances.credit(api.container.db, api.tenant_id, "0.01", _now())
    await _hard_stop(api)
    assert (await api.send(to="+15005550006", message="Hello")).status_code == 202
    refused = await api.send(to="+15005550006", message="Hello")
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert error["code"] == "insufficient_balance"
    assert error["details"] == {"balance": "0.0017", "cost": "0.0083", "currency": "USD"}
    assert "balance is 0.0017 USD" in error["message"] and "credit" in error["message"]
    assert await _count(api.container.db, messages) == 1
    assert await _balance(api.container.db, api.tenant_id) == Decimal("0.0017")


async def test_without_the_hard_stop_the_balance_may_go_negative(api: Api) -> None:
    await balances.credit(api.container.db, api.tenant_id, "0.01", _now())
    for _ in range(2):
        assert (await api.send(to="+15005550006", message="Hello")).status_code == 202
    assert await _balance(api.container.db, api.tenant_id) == Decimal("-0.0066")


async def test_concurrent_sends_never_overdraw_with_the_hard_stop(api: Api) -> None:
    await balances.credit(api.container.db, api.tenant_id, str(3 * SEGMENT), _now())
    await _hard_stop(api)
    answers = await asyncio.gather(
        *(api.send(to="+15005550006", message="Hello") for _ in range(8))
    )
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [202] * 3 + [402] * 5
    assert await _balance(api.container.db, api.tenant_id) == 0
    assert await _count(api.container.db, messages) == 3


# -- refunds ---------------------------------------------------------------------------------


async def test_an_expired_message_is_refunded_once(world: World) -> None:
    tenant = world.principal.tenant_id
    await balances.credit(world.db, tenant, "1", world.clock.now)
    outbox_id = await world.submit(validity_seconds=60)
    assert await _balance(world.db, tenant) == 1 - FAKE_SEGMENT
    world.clock.advance(61)
    await world.dispatcher().process_all()
    assert (await world.row(outbox_id))["status"] == "expired"
    assert await _settle(world) == 1
    assert await _settle(world) == 0
    assert await _balance(world.db, tenant) == 1
    ledger = await _ledger(world.db, tenant)
    assert ledger[1:] == [("debit", -50000, outbox_id), ("refund", 50000, outbox_id)]


async def test_a_send_refused_by_the_provider_is_refunded(world: World) -> None:
    tenant = world.principal.tenant_id
    await balances.credit(world.db, tenant, "1", world.clock.now)
    world.provider.then(SendResult(Outcome.PERMANENT, error=ProviderError("bad", code=21211)))
    outbox_id = await world.submit()
    await world.dispatcher().process_all()
    row = await world.row(outbox_id)
    assert row["status"] == "failed" and row["provider_message_id"] is None
    await _settle(world)
    assert await _balance(world.db, tenant) == 1


async def test_an_undelivered_message_the_provider_accepted_is_not_refunded(world: World) -> None:
    tenant = world.principal.tenant_id
    await balances.credit(world.db, tenant, "1", world.clock.now)
    world.provider.then(SendResult(Outcome.ACCEPTED, provider_message_id="SM1"))
    outbox_id = await world.submit()
    await world.dispatcher().process_all()
    await _fail(world, outbox_id, "SM1", Status.UNDELIVERED)
    assert await _settle(world) == 1
    assert await _balance(world.db, tenant) == 1 - FAKE_SEGMENT


async def test_a_resend_is_debited_again_after_the_refund(world: World) -> None:
    tenant = world.principal.tenant_id
    await balances.credit(world.db, tenant, "1", world.clock.now)
    world.provider.then(SendResult(Outcome.PERMANENT, error=ProviderError("bad", code=21211)))
    outbox_id = await world.submit()
    await world.dispatcher().process_all()
    # Resent before the loop settled the failure: the resend settles it first, then debits.
    await resend_message(world.db, tenant, outbox_id, cap=3, now=world.clock.now)
    await world.dispatcher().process_all()
    await _settle(world)
    kinds = [k for k, _, _ in await _ledger(world.db, tenant)]
    assert kinds == ["credit", "debit", "refund", "debit"]
    assert await _balance(world.db, tenant) == 1 - FAKE_SEGMENT


async def test_concurrent_resends_debit_once_and_the_others_are_refused(world: World) -> None:
    tenant = world.principal.tenant_id
    await balances.credit(world.db, tenant, "1", world.clock.now)
    world.provider.then(SendResult(Outcome.PERMANENT, error=ProviderError("bad", code=21211)))
    outbox_id = await world.submit()
    await world.dispatcher().process_all()
    results = await asyncio.gather(
        *[resend_message(world.db, tenant, outbox_id, cap=3, now=world.clock.now) for _ in "abc"],
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 2 and all(isinstance(r, ResendRefused) for r in refused), results
    assert (await world.row(outbox_id))["resend_count"] == 1
    kinds = [k for k, _, _ in await _ledger(world.db, tenant)]
    assert kinds == ["credit", "debit", "refund", "debit"]


async def test_a_resend_the_balance_cannot_pay_is_refused_with_the_hard_stop(world: World) -> None:
    tenant = world.principal.tenant_id
    await balances.credit(world.db, tenant, str(FAKE_SEGMENT), world.clock.now)
    given = AlertSettingsInput(hard_stop=True)
    await save_alert_settings(
        world.db,
        tenant,
        given,
        world.clock.now,
        network=AlertNetwork(allow_http=False),
        secret_keys=None,
        email_enabled=False,
    )
    world.provider.then(SendResult(Outcome.ACCEPTED, provider_message_id="SM1"))
    outbox_id = await world.submit()
    await world.dispatcher().process_all()
    await _fail(world, outbox_id, "SM1", Status.UNDELIVERED)  # billed: no refund
    with pytest.raises(balances.InsufficientBalance):
        await resend_message(world.db, tenant, outbox_id, cap=3, now=world.clock.now)
    assert (await world.row(outbox_id))["status"] == "undelivered"
    assert [k for k, _, _ in await _ledger(world.db, tenant)] == ["credit", "debit"]


async def test_a_tenant_without_an_account_is_neither_watched_nor_refunded(world: World) -> None:
    await world.submit(validity_seconds=1)
    world.clock.advance(2)
    await world.dispatcher().process_all()
    assert await _settle(world) == 0
    assert await _count(world.db, balance_ledger) == 0
    assert await _count(world.db, alerts) == 0


async def _fail(world: World, outbox_id: str, sid: str, status: Status) -> None:
    update = StatusUpdate(
        sid,
        status,
        status.value,
        f"k-{sid}",
        world.clock.now,
        outbox_id=outbox_id,
        error=ProviderError("carrier said no", code=30003),
    )
    assert await apply_status_update(world.db, update) == "applied"


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
