"""Per-tenant price overrides at send and preview; the billed price beside the estimate."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest

from smsrelay.dispatch.dispatcher import DispatchConfig
from smsrelay.domain.status import Status
from smsrelay.services.delivery import StatusUpdate, apply_status_update
from smsrelay.services.outbox_queries import get_entry
from smsrelay.services.tenants import create_key, create_tenant
from smsrelay.store.database import Database
from tests.integration.conftest import Api, LiveApp
from tests.integration.world import Clock, World

US = "+15005550006"


async def _put(api: Api, path: str, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    return await api.client.put(f"/api/prices/{path}", json=body, headers=api.auth(key))


async def _key(api: Api, *scopes: str) -> str:
    return (await create_key(api.container.db, api.tenant_id, scopes=frozenset(scopes))).api_key


def _provider(api: Api) -> str:
    return api.container.submit_policy.provider


async def test_override_changes_cost_at_send_and_preview(api: Api) -> None:
    path = f"{_provider(api)}/US"
    response = await _put(api, path, {"perSegment": "0.05", "currency": "usd", "source": "deal"})
    assert response.status_code == 200, response.text
    assert response.json() | {"updatedAt": None} == {
        "provider": _provider(api),
        "country": "US",
        "perSegment": "0.05",
        "currency": "USD",
        "source": "deal",
        "updatedAt": None,
    }
    sent = (await api.send(to=US, message="x" * 200)).json()  # 2 GSM-7 segments
    assert (sent["costPerUnit"], sent["totalCost"], sent["currency"]) == ("0.05", "0.10", "USD")
    assert sent["providerCost"] is None and sent["costDifference"] is None
    preview = await api.client.post(
        "/api/sms/preview", json={"to": US, "message": "Hi"}, headers=api.auth()
    )
    assert preview.status_code == 200, preview.text
    assert (preview.json()["costPerUnit"], preview.json()["totalCost"]) == ("0.05", "0.05")
    listed = await api.client.get("/api/prices", headers=api.auth())
    assert [p["perSegment"] for p in listed.json()["items"]] == ["0.05"]


async def test_override_is_the_tenants_own_and_can_be_removed(api: Api) -> None:
    path = f"{_provider(api)}/US"
    shipped = (await api.send(to=US, message="Hi")).json()["costPerUnit"]
    assert (await _put(api, path, {"perSegment": "0.5", "currency": "USD"})).status_code == 200
    other = await create_tenant(api.container.db, "other")
    theirs = (
        await api.client.post(
            "/api/sms/send", json={"to": US, "message": "Hi"}, headers=api.auth(other.api_key)
        )
    ).json()
    assert theirs["costPerUnit"] == shipped != "0.5"
    assert (await api.client.get("/api/prices", headers=api.auth(other.api_key))).json() == {
        "items": []
    }
    intruder = await api.client.delete(f"/api/prices/{path}", headers=api.auth(other.api_key))
    assert intruder.status_code == 404
    assert (await api.send(to=US, message="Hi")).json()["costPerUnit"] == "0.5"
    deleted = await api.client.delete(f"/api/prices/{path}", headers=api.auth())
    assert deleted.status_code == 204
    assert (await api.send(to=US, message="Hi")).json()["costPerUnit"] == shipped
    again = await api.client.delete(f"/api/prices/{path}", headers=api.auth())
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("twilio/US", {"perSegment": "-0.01", "currency": "USD"}, "perSegment"),
        ("twilio/US", {"perSegment": "0.0000001", "currency": "USD"}, "perSegment"),
        ("twilio/US", {"perSegment": "1e-3", "currency": "USD"}, "perSegment"),
        ("twilio/US", {"perSegment": "abc", "currency": "USD"}, "perSegment"),
        ("twilio/US", {"perSegment": "0.01", "currency": "US"}, "currency"),
        ("twilio/US", {"perSegment": "0.01", "currency": "US1"}, "currency"),
        ("twilio/XX", {"perSegment": "0.01", "currency": "USD"}, "country"),
        ("twilio/USA", {"perSegment": "0.01", "currency": "USD"}, "country"),
    ],
)
async def test_bad_price_is_422_naming_the_field(
    api: Api, path: str, body: dict[str, Any], field: str
) -> None:
    response = await _put(api, path, body)
    assert response.status_code == 422, response.text
    assert field in response.text


async def test_unknown_provider_is_404(api: Api) -> None:
    response = await _put(api, "nosuch/US", {"perSegment": "0.01", "currency": "USD"})
    assert response.status_code == 404 and "twilio" in response.text
    deleted = await api.client.delete("/api/prices/nosuch/US", headers=api.auth())
    assert deleted.status_code == 404


async def test_six_decimal_places_are_accepted(api: Api) -> None:
    response = await _put(api, "twilio/GB", {"perSegment": "0.000001", "currency": "GBP"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("scopes", "method", "expected"),
    [
        (("read",), "PUT", 403),
        (("send",), "PUT", 403),
        (("send", "read"), "DELETE", 403),
        (("send",), "GET", 403),
        (("read",), "GET", 200),
        (("admin",), "PUT", 200),
    ],
)
async def test_scopes_are_enforced(
    api: Api, scopes: tuple[str, ...], method: str, expected: int
) -> None:
    key = await _key(api, *scopes)
    url = "/api/prices" if method == "GET" else "/api/prices/twilio/US"
    body = {"perSegment": "0.01", "currency": "USD"} if method == "PUT" else None
    response = await api.client.request(method, url, json=body, headers=api.auth(key))
    assert response.status_code == expected, response.text


@pytest.fixture
async def world(db: Database) -> World:
    return await World.create(db, Clock(), config=DispatchConfig(status_check_after_seconds=600))


async def _deliver(world: World, outbox_id: str) -> str:
    sid = str((await world.row(outbox_id))["provider_message_id"])
    update = StatusUpdate(
        provider_message_id=sid,
        status=Status.DELIVERED,
        provider_status="delivered",
        dedupe_key=f"test:{sid}",
        received_at=world.clock.now,
        outbox_id=outbox_id,
    )
    await apply_status_update(world.db, update)
    return sid


async def test_price_pass_records_the_providers_price_and_the_difference(world: World) -> None:
    outbox_id = await world.submit()
    dispatcher = world.dispatcher()
    await dispatcher.process_all()
    sid = await _deliver(world, outbox_id)
    assert await dispatcher.check_prices() == 0  # the provider has not billed it yet
    world.clock.advance(601)
    assert await dispatcher.check_prices() == 1  # asked; no price reported
    world.provider.report(sid, "delivered", price="-0.00790", price_unit="USD")
    assert await dispatcher.check_prices() == 0  # asked a moment ago
    world.clock.advance(601)
    assert await dispatcher.check_prices() == 1
    entry = await get_entry(world.db, world.principal.tenant_id, outbox_id)
    assert (entry.provider_cost, entry.provider_currency) == ("0.00790", "USD")
    assert entry.cost_difference == str(Decimal("0.00790") - Decimal(entry.total_cost))
    world.clock.advance(601)
    assert await dispatcher.check_prices() == 0  # priced: never asked again


async def test_status_check_records_the_price_too(world: World) -> None:
    outbox_id = await world.submit()
    dispatcher = world.dispatcher()
    await dispatcher.process_all()
    sid = str((await world.row(outbox_id))["provider_message_id"])
    world.provider.report(sid, "delivered", price="-0.0158", price_unit="usd")
    world.clock.advance(601)
    assert await dispatcher.check_unconfirmed() == 1
    row = await world.row(outbox_id)
    assert (row["status"], row["provider_price"], row["provider_price_unit"]) == (
        "delivered",
        "0.0158",
        "USD",
    )


async def test_difference_is_null_across_currencies(world: World) -> None:
    outbox_id = await world.submit()
    dispatcher = world.dispatcher()
    await dispatcher.process_all()
    sid = await _deliver(world, outbox_id)
    world.provider.report(sid, "delivered", price="-0.5", price_unit="EUR")
    world.clock.advance(601)
    await dispatcher.check_prices()
    entry = await get_entry(world.db, world.principal.tenant_id, outbox_id)
    assert entry.provider_cost == "0.5" and entry.cost_difference is None


async def test_live_simulator_price_shows_beside_the_estimate(start_app: Any) -> None:
    app: LiveApp = await start_app(status_check_after_seconds=0.2)
    entry = (await app.send(to=US, message="Hello")).json()
    await app.wait_for_status(entry["outboxId"], "delivered")
    async with asyncio.timeout(10):
        while True:
            got = (
                await app.client.get(f"/api/sms/outbox/{entry['outboxId']}", headers=app.auth())
            ).json()
            if got["providerCost"] is not None:
                break
            await asyncio.sleep(0.05)
    assert got["providerCost"] == "0.00790" and got["providerCurrency"] == "USD"
    expected = Decimal("0.00790") - Decimal(got["totalCost"])
    assert got["costDifference"] == str(expected)
