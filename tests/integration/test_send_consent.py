"""POST /api/sms/send enforces consent at submit: suppressed numbers, marketing opt-ins."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Api

PHONE = "+14155550123"


async def _suppress(api: Api) -> None:
    response = await api.client.post(
        "/api/suppressions", json={"phone": PHONE, "reason": "manual"}, headers=api.auth()
    )
    assert response.status_code in (200, 201), response.text


async def _send(api: Api, **extra: Any) -> dict[str, Any]:
    response = await api.send(to=PHONE, message="Your order shipped", **extra)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_message_to_a_suppressed_number_is_recorded_suppressed_at_no_cost(
    api: Api,
) -> None:
    await _suppress(api)
    entry = await _send(api)
    assert entry["status"] == "suppressed"
    assert entry["totalCost"] == "0"
    assert entry["errorDetails"]["details"]["reason"] == "opted_out"
    assert [e["kind"] for e in entry["events"]] == ["created", "consent_blocked"]


async def test_transactional_override_is_queued_and_recorded(api: Api) -> None:
    await _suppress(api)
    entry = await _send(api, overrideSuppression=True)
    assert entry["status"] == "pending"
    assert "consent_override" in [e["kind"] for e in entry["events"]]


async def test_override_is_refused_for_marketing(api: Api) -> None:
    response = await api.send(
        to=PHONE, message="Sale!", category="marketing", overrideSuppression=True
    )
    assert response.status_code == 422
    assert "overrideSuppression" in response.json()["error"]["message"]


async def test_marketing_without_an_opt_in_is_suppressed(api: Api) -> None:
    entry = await _send(api, category="marketing")
    assert entry["status"] == "suppressed"
    assert entry["errorDetails"]["code"] == "no_marketing_consent"


async def test_marketing_with_an_opt_in_is_queued_or_deferred_to_quiet_hours_end(
    api: Api,
) -> None:
    consent = {
        "phone": PHONE,
        "status": "opted_in",
        "category": "marketing",
        "source": "checkout page",
        "method": "web_form",
        "consentText": "Yes, send me offers by SMS. Reply STOP to opt out.",
    }
    recorded = await api.client.post("/api/consents", json=consent, headers=api.auth())
    assert recorded.status_code in (200, 201), recorded.text
    entry = await _send(api, category="marketing")
    assert entry["status"] == "pending"
    kinds = [e["kind"] for e in entry["events"]]
    assert kinds in (["created"], ["created", "quiet_hours_deferred"])


async def test_preview_reports_the_consent_decision_and_writes_nothing(api: Api) -> None:
    await _suppress(api)
    preview = await api.client.post(
        "/api/sms/preview", json={"to": PHONE, "message": "Hi"}, headers=api.auth()
    )
    assert preview.status_code == 200, preview.text
    consent = preview.json()["consent"]
    assert consent["verdict"] == "block" and consent["reason"] == "opted_out"
    forced = await api.client.post(
        "/api/sms/preview",
        json={"to": PHONE, "message": "Hi", "overrideSuppression": True},
        headers=api.auth(),
    )
    assert forced.json()["consent"]["verdict"] == "allow"
    assert forced.json()["consent"]["overridden"] is True
    listing = await api.client.get("/api/sms/outbox", headers=api.auth())
    assert listing.json()["items"] == []
