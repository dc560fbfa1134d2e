"""Single sends that arrive together are stored in one transaction, each with its own answer;
a tenant's prices and provider accounts are read once every few seconds, not per send."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from smsrelay.services import balances, prices
from smsrelay.services.alerts import AlertNetwork
from smsrelay.store.database import Database
from smsrelay.store.tenants import TenantRepository
from tests.integration.conftest import Api
from tests.timing import PausedFirstCall, Ticks

SUPPRESSED = "+14155550123"


def _numbers(count: int) -> list[str]:
    return [f"+1415555{1000 + i:04d}" for i in range(count)]


async def _sends(api: Api, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answers = await asyncio.gather(*(api.send(**body) for body in bodies))
    assert [a.status_code for a in answers] == [202] * len(bodies), [a.text for a in answers]
    return [a.json() for a in answers]


async def test_concurrent_sends_share_transactions_and_each_answer_is_its_own(api: Api) -> None:
    numbers = _numbers(40)
    before = api.container.submissions.batches
    entries = await _sends(api, [{"to": n, "message": f"Code {n[-4:]}"} for n in numbers])
    batches = api.container.submissions.batches - before
    assert batches < len(numbers) // 2, f"{batches} transactions for {len(numbers)} sends"
    assert [e["recipientPhoneNumber"] for e in entries] == numbers
    assert [e["message"] for e in entries] == [f"Code {n[-4:]}" for n in numbers]
    assert len({e["outboxId"] for e in entries}) == len(numbers)
    for entry in entries[:5]:  # each 202 is what the outbox now holds, history included
        stored = await api.client.get(f"/api/sms/outbox/{entry['outboxId']}", headers=api.auth())
        assert stored.json() == entry


async def test_a_suppressed_recipient_in_a_batch_is_blocked_alone(api: Api) -> None:
    suppressed = await api.client.post(
        "/api/suppressions", json={"phone": SUPPRESSED, "reason": "manual"}, headers=api.auth()
    )
    assert suppressed.status_code in (200, 201), suppressed.text
    numbers = [*_numbers(5), SUPPRESSED, *_numbers(10)[5:]]
    before = api.container.submissions.batches
    entries = await _sends(api, [{"to": n, "message": "Your order shipped"} for n in numbers])
    assert api.container.submissions.batches - before < len(numbers)  # some shared a batch
    by_number = {e["recipientPhoneNumber"]: e for e in entries}
    blocked = by_number.pop(SUPPRESSED)
    assert blocked["status"] == "suppressed" and blocked["totalCost"] == "0"
    assert [e["kind"] for e in blocked["events"]] == ["created", "consent_blocked"]
    assert {e["status"] for e in by_number.values()} == {"pending"}
    assert all([e["kind"] for e in entry["events"]] == ["created"] for entry in by_number.values())


async def test_an_override_in_a_batch_applies_to_its_own_message_only(api: Api) -> None:
    await api.client.post(
        "/api/suppressions", json={"phone": SUPPRESSED, "reason": "manual"}, headers=api.auth()
    )
    plain = {"to": SUPPRESSED, "message": "Your code is 1234"}
    before = api.container.submissions.batches
    entries = await _sends(api, [plain, {**plain, "overrideSuppression": True}, plain])
    assert api.container.submissions.batches - before < 3  # they shared a batch
    assert [e["status"] for e in entries] == ["suppressed", "pending", "suppressed"]
    assert "consent_override" in [e["kind"] for e in entries[1]["events"]]


async def test_an_invalid_send_among_valid_ones_is_refused_alone(api: Api) -> None:
    bodies = [{"to": n, "message": "Hello"} for n in _numbers(6)]
    bodies[3] = {"to": "+1 not a number", "message": "Hello"}
    answers = await asyncio.gather(*(api.send(**body) for body in bodies))
    assert [a.status_code for a in answers] == [202, 202, 202, 422, 202, 202]
    assert "to" in answers[3].json()["error"]["message"]


# -- the tenant's terms, cached --------------------------------------------------------------


async def _price(api: Api, per_segment: str) -> None:
    body = {"perSegment": per_segment, "currency": "USD"}
    answer = await api.client.put("/api/prices/twilio/US", json=body, headers=api.auth())
    assert answer.status_code == 200, answer.text


async def _cost_per_unit(api: Api) -> str:
    answer = await api.send(to="+14155550100", message="Hello")
    assert answer.status_code == 202, answer.text
    value: str = answer.json()["costPerUnit"]
    return value


async def test_a_price_set_through_this_process_applies_to_the_very_next_send(api: Api) -> None:
    api.container.policies.terms.clock = Ticks()  # the cache never expires on its own here
    shipped = await _cost_per_unit(api)
    await _price(api, "0.05")
    assert await _cost_per_unit(api) == "0.05" != shipped
    removed = await api.client.delete("/api/prices/twilio/US", headers=api.auth())
    assert removed.status_code == 204
    assert await _cost_per_unit(api) == shipped


async def test_a_price_set_by_another_process_applies_once_the_terms_are_read_again(
    api: Api,
) -> None:
    ticks = Ticks()
    api.container.policies.terms.clock = ticks
    shipped = await _cost_per_unit(api)
    given = prices.PriceInput("twilio", "US", "0.07", "USD")  # as the CLI or another API would
    await prices.set_tenant_price(api.container.db, api.tenant_id, given, datetime.now(UTC))
    assert await _cost_per_unit(api) == shipped
    ticks.now += prices.TERMS_CACHE_SECONDS
    assert await _cost_per_unit(api) == "0.07"


async def test_sends_that_miss_the_cache_together_read_the_terms_and_the_key_once(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    read_terms = prices.read_tenant_terms

    async def counted_terms(db: Database, tenant_id: str) -> prices.TenantTerms:
        reads.append("terms")
        return await read_terms(db, tenant_id)

    key_by_prefix = TenantRepository.key_by_prefix

    async def counted_key(repository: TenantRepository, prefix: str) -> Any:
        reads.append("key")
        return await key_by_prefix(repository, prefix)

    monkeypatch.setattr(prices, "read_tenant_terms", counted_terms)
    monkeypatch.setattr(TenantRepository, "key_by_prefix", counted_key)
    api.container.policies.forget(api.tenant_id)
    await _sends(api, [{"to": n, "message": "Hello"} for n in _numbers(30)])
    assert sorted(reads) == ["key", "terms"]


async def test_a_price_set_while_the_terms_are_being_read_applies_to_the_next_send(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    paused = PausedFirstCall(prices.read_tenant_terms)
    monkeypatch.setattr(prices, "read_tenant_terms", paused)
    first = asyncio.create_task(_cost_per_unit(api))
    await paused.reached.wait()  # the first send has read the old terms and is paused
    await _price(api, "0.05")
    paused.release()
    await first
    assert await _cost_per_unit(api) == "0.05"


async def test_a_batch_written_again_one_by_one_keeps_each_messages_history(api: Api) -> None:
    """A 402 in a batch makes the batch be written again send by send, from the rows as built:
    the suppressed message still records why."""
    await api.client.post(
        "/api/suppressions", json={"phone": SUPPRESSED, "reason": "manual"}, headers=api.auth()
    )
    await balances.credit(api.container.db, api.tenant_id, "0.0249", datetime.now(UTC))  # 3 sends
    api.container.alert_network = AlertNetwork(allow_http=True, allow_loopback_for_tests=True)
    hard_stop = await api.client.put("/api/alerts", json={"hardStop": True}, headers=api.auth())
    assert hard_stop.status_code == 200, hard_stop.text
    bodies = [{"to": SUPPRESSED, "message": "Hello"}]
    bodies += [{"to": n, "message": "Hello"} for n in _numbers(5)]
    answers = await asyncio.gather(*(api.send(**body) for body in bodies))
    assert sorted(a.status_code for a in answers) == [202] * 4 + [402] * 2
    blocked = answers[0].json()
    stored = await api.client.get(f"/api/sms/outbox/{blocked['outboxId']}", headers=api.auth())
    assert [e["kind"] for e in stored.json()["events"]] == ["created", "consent_blocked"]
    assert stored.json()["status"] == "suppressed" and stored.json()["totalCost"] == "0"
