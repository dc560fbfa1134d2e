"""Listing the outbox: newest first, filters, and cursor pagination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.conftest import Api


async def _send_many(api: Api, count: int, **extra: Any) -> list[str]:
    ids = []
    for index in range(count):
        response = await api.send(to="+15005550006", message=f"Hello {index}", **extra)
        assert response.status_code == 202
        ids.append(response.json()["outboxId"])
    return ids


async def _list(api: Api, query: str = "") -> dict[str, Any]:
    response = await api.client.get(f"/api/sms/outbox?{query}", headers=api.auth())
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_lists_newest_first(api: Api) -> None:
    ids = await _send_many(api, 3)
    page = await _list(api)
    assert [item["outboxId"] for item in page["items"]] == list(reversed(ids))
    assert page["nextCursor"] is None


async def test_cursor_pages_cover_everything_once(api: Api) -> None:
    ids = await _send_many(api, 7)
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        page = await _list(api, f"limit=3{cursor}")
        seen += [item["outboxId"] for item in page["items"]]
        if page["nextCursor"] is None:
            break
        cursor = f"&cursor={page['nextCursor']}"
    assert seen == list(reversed(ids))


async def test_filters_by_tag_status_and_recipient(api: Api) -> None:
    tagged = await _send_many(api, 2, tags=["otp", "eu"])
    await _send_many(api, 1, tags=["news"])
    other = (await api.send(to="+14155552671", message="Hi")).json()["outboxId"]
    assert {i["outboxId"] for i in (await _list(api, "tag=otp"))["items"]} == set(tagged)
    by_recipient = await _list(api, "recipient=%2B1%20415%20555%202671")
    assert [i["outboxId"] for i in by_recipient["items"]] == [other]
    assert len((await _list(api, "status=pending"))["items"]) == 4
    assert (await _list(api, "status=delivered"))["items"] == []


async def test_filters_by_created_range(api: Api) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    await _send_many(api, 2)
    after = datetime.now(UTC) + timedelta(seconds=1)
    inside = await api.client.get(
        "/api/sms/outbox",
        params={"createdFrom": before.isoformat(), "createdTo": after.isoformat()},
        headers=api.auth(),
    )
    assert len(inside.json()["items"]) == 2
    later = await api.client.get(
        "/api/sms/outbox", params={"createdFrom": after.isoformat()}, headers=api.auth()
    )
    assert later.json()["items"] == []


async def test_entry_has_every_contract_field(api: Api) -> None:
    entry = (
        await api.send(
            to="+15005550006",
            message="Hello",
            tags=["a"],
            customData={"orderId": 42},
            templateKey="welcome",
        )
    ).json()
    expected = {
        "outboxId",
        "tenantId",
        "userId",
        "recipientPhoneNumber",
        "message",
        "senderId",
        "provider",
        "messageId",
        "category",
        "encoding",
        "smsUnitsUsed",
        "costPerUnit",
        "totalCost",
        "currency",
        "status",
        "timestamps",
        "retryCount",
        "errorDetails",
        "tags",
        "customData",
        "templateKey",
        "events",
    }
    assert expected <= set(entry)
    assert set(entry["timestamps"]) == {
        "createdAt",
        "sentAt",
        "lastAttemptAt",
        "deliveredAt",
        "scheduledAt",
    }
    assert entry["tenantId"] == api.tenant_id
    assert entry["encoding"] == "GSM-7" and entry["smsUnitsUsed"] == 1
    assert entry["category"] == "transactional"
    assert entry["customData"] == {"orderId": 42} and entry["templateKey"] == "welcome"
    assert entry["totalCost"] == entry["costPerUnit"] and entry["currency"] == "USD"
    assert entry["errorDetails"] is None and entry["retryCount"] == 0


async def test_unicode_message_is_ucs2_and_costs_per_segment(api: Api) -> None:
    entry = (await api.send(to="+15005550006", message="Привет " * 12)).json()
    assert entry["encoding"] == "UCS-2"
    assert entry["smsUnitsUsed"] == 2
    assert float(entry["totalCost"]) == 2 * float(entry["costPerUnit"])
