"""`/api/senders/{sender}/throughput`: a tenant's rate per sender, its errors and its scope."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from smsrelay.services.tenants import create_key, create_tenant
from tests.integration.conftest import Api

SENDER = "+15005550006"


async def _put(api: Api, sender: str, body: Any, key: str | None = None) -> httpx.Response:
    return await api.client.put(
        f"/api/senders/{sender}/throughput", json=body, headers=api.auth(key)
    )


async def _get(api: Api, sender: str, key: str | None = None) -> httpx.Response:
    return await api.client.get(f"/api/senders/{sender}/throughput", headers=api.auth(key))


async def test_a_rate_is_set_shown_listed_and_removed(api: Api) -> None:
    response = await _put(api, "+1 500 555 0006", {"segmentsPerSecond": 20, "source": "bench"})
    assert response.status_code == 200, response.text
    assert response.json() | {"updatedAt": None} == {
        "sender": SENDER,
        "kind": "long_code",
        "segmentsPerSecond": 20,
        "origin": "tenant",
        "source": "bench",
        "updatedAt": None,
    }
    assert (await _get(api, SENDER)).json()["segmentsPerSecond"] == 20
    listed = await api.client.get("/api/senders/throughput", headers=api.auth())
    assert [item["sender"] for item in listed.json()["items"]] == [SENDER]
    removed = await api.client.delete(f"/api/senders/{SENDER}/throughput", headers=api.auth())
    assert removed.status_code == 204
    shown = (await _get(api, SENDER)).json()
    assert (shown["origin"], shown["segmentsPerSecond"]) == ("default", 1)


async def test_the_default_is_the_kind_table_with_its_source(api: Api) -> None:
    shown = (await _get(api, "%2B18005550100")).json()
    assert (shown["kind"], shown["segmentsPerSecond"], shown["origin"]) == (
        "toll_free",
        3,
        "default",
    )
    assert "3 MPS" in shown["source"]


async def test_a_second_put_replaces_the_first(api: Api) -> None:
    await _put(api, "ACME", {"segmentsPerSecond": 5})
    again = await _put(api, "ACME", {"segmentsPerSecond": 7})
    assert again.json()["segmentsPerSecond"] == 7 and again.json()["source"] == "tenant override"


@pytest.mark.parametrize(
    ("sender", "body", "field"),
    [
        (SENDER, {"segmentsPerSecond": 0}, "segmentsPerSecond"),
        (SENDER, {"segmentsPerSecond": 10001}, "segmentsPerSecond"),
        (SENDER, {"segmentsPerSecond": "20"}, "segmentsPerSecond"),
        (SENDER, {"segmentsPerSecond": 2.5}, "segmentsPerSecond"),
        (SENDER, {"segmentsPerSecond": True}, "segmentsPerSecond"),
        (SENDER, {}, "segmentsPerSecond"),
        (SENDER, {"segmentsPerSecond": 5, "extra": 1}, "extra"),
        ("not-a-sender!", {"segmentsPerSecond": 5}, "sender"),
        ("+1", {"segmentsPerSecond": 5}, "sender"),
    ],
)
async def test_bad_input_is_422_naming_what_to_change(
    api: Api, sender: str, body: dict[str, Any], field: str
) -> None:
    response = await _put(api, sender, body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert field in error["message"]


async def test_removing_a_rate_never_set_is_404(api: Api) -> None:
    response = await api.client.delete(f"/api/senders/{SENDER}/throughput", headers=api.auth())
    assert response.status_code == 404
    assert "nothing to remove" in response.json()["error"]["message"]


async def test_setting_a_rate_needs_the_admin_scope(api: Api) -> None:
    created = await create_key(api.container.db, api.tenant_id, scopes=frozenset({"send", "read"}))
    response = await _put(api, SENDER, {"segmentsPerSecond": 5}, key=created.api_key)
    assert response.status_code == 403
    assert (await _get(api, SENDER, key=created.api_key)).status_code == 200


async def test_a_tenant_sees_only_its_own_rates(api: Api) -> None:
    await _put(api, SENDER, {"segmentsPerSecond": 9})
    other = await create_tenant(api.container.db, "other")
    shown = (await _get(api, SENDER, key=other.api_key)).json()
    assert (shown["segmentsPerSecond"], shown["origin"]) == (1, "default")
    listed = await api.client.get("/api/senders/throughput", headers=api.auth(other.api_key))
    assert listed.json()["items"] == []
