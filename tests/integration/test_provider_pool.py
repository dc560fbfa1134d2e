"""ProviderPool: the account a message records is the one asked later; configs cached per TTL."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from smsrelay.providers.base import Outcome, SendRequest
from smsrelay.providers.fake import FakeProvider
from smsrelay.services.provider_pool import ProviderPool, Unavailable
from tests.integration.conftest import Api
from tests.integration.provider_accounts import Accounts, twilio_body
from tests.integration.test_provider_config_use import configure


@dataclass
class Ticks:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_an_ambiguous_send_is_reconciled_with_the_tenants_own_account(
    keyed_api: Api, accounts: Accounts
) -> None:
    await configure(keyed_api, "twilio", twilio_body())
    dispatcher = keyed_api.container.dispatcher
    assert dispatcher is not None
    dispatcher.config = replace(dispatcher.config, reconcile_after_seconds=0.05)
    accounts.twilio.faults.error_5xx_after_accept_rate = 1.0  # accepted, then a 500

    sent = (await keyed_api.send(to="+15005550006", message="maybe sent")).json()
    await dispatcher.process_all()
    await asyncio.sleep(0.1)  # the ambiguous attempt's check is due
    await dispatcher.process_all()

    entry = (
        await keyed_api.client.get(f"/api/sms/outbox/{sent['outboxId']}", headers=keyed_api.auth())
    ).json()
    (accepted,) = accounts.twilio.state.accepted  # asked, found, and never sent twice
    assert entry["status"] == "sent" and entry["messageId"] == accepted.sid
    assert "attempt_ambiguous" in [event["kind"] for event in entry["events"]]
    assert keyed_api.container.setup is not None
    assert keyed_api.container.setup.simulator is not None
    assert keyed_api.container.setup.simulator.state.accepted == []


def message_row(api: Api, config_id: str | None = None) -> dict[str, Any]:
    return {
        "id": "sms_not_stored",
        "tenant_id": api.tenant_id,
        "provider": "twilio",
        "provider_config_id": config_id,
    }


async def test_configs_are_cached_for_the_ttl_and_rebuilt_per_version(keyed_api: Api) -> None:
    ticks = Ticks()
    platform = FakeProvider(name="twilio")
    configs = keyed_api.container.provider_configs
    pool = ProviderPool(
        configs, {"twilio": platform}, ttl_seconds=5, linger_seconds=30, clock=ticks
    )
    row = message_row(keyed_api)
    assert await pool.for_send(row, "w1") is platform  # no config yet

    saved = await configure(keyed_api, "twilio", twilio_body())  # another "process" saves
    assert await pool.for_send(row, "w1") is platform  # not seen within the TTL
    ticks.now += 6
    first = await pool.for_send(row, "w1")
    assert first is not platform and first.name == "twilio"
    await first.verify()  # opens its HTTP session
    assert await pool.for_send(row, "w1") is first  # built once per version

    await configure(keyed_api, "twilio", twilio_body(fromNumber="+15005550007"))
    ticks.now += 6
    second = await pool.for_message(message_row(keyed_api, saved["configId"]))
    assert second is not first  # version 2: a new instance; the first lingers, then closes
    ticks.now += 31
    await pool.for_send(row, "w1")
    assert first._http is None  # type: ignore[attr-defined]
    await pool.close()


async def test_a_message_whose_config_is_gone_is_not_asked_of_another_account(
    keyed_api: Api,
) -> None:
    pool = ProviderPool(keyed_api.container.provider_configs, {"twilio": FakeProvider()})
    gone = await pool.for_message(message_row(keyed_api, "pcf_deleted"))
    assert isinstance(gone, Unavailable) and not gone.can_look_up_messages
    assert await gone.fetch("SM1") is None
    missing = await pool.for_send({**message_row(keyed_api), "provider": "msg91"}, "w1")
    result = await missing.send(SendRequest(to="+919876543210", body="x"))
    assert result.outcome is Outcome.PERMANENT and result.error is not None
    assert "no msg91 account" in result.error.message
    assert await missing.find_sent("+919876543210", "x", datetime.now(UTC)) is None
