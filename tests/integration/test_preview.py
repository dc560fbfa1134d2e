"""POST /api/sms/preview explains a message before sending and writes nothing; senders at send."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from smsrelay.cli_preview import preview
from smsrelay.domain.pricing import Price
from smsrelay.services.errors import InvalidRequest
from smsrelay.services.submit import NewMessage, Principal, SubmitPolicy, build_row, plan_message
from tests.integration.conftest import Api

SID = "MG" + "0123456789abcdef" * 2
QUOTED = "“Hi” " + "x" * 100  # 105 characters: 2 UCS-2 segments, 1 GSM-7 segment once straightened


async def _preview(api: Api, **body: Any) -> httpx.Response:
    return await api.client.post("/api/sms/preview", json=body, headers=api.auth())


async def _outbox(api: Api) -> list[dict[str, Any]]:
    response = await api.client.get("/api/sms/outbox", headers=api.auth())
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    error: dict[str, Any] = body["error"]
    return error


async def test_preview_explains_number_sender_encoding_and_cost(api: Api) -> None:
    response = await _preview(api, to="+1 500 555 0006", message="Hello")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "to",
        "country",
        "countryCallingCode",
        "numberType",
        "provider",
        "category",
        "sender",
        "message",
        "smartEncoding",
        "encoding",
        "nonGsmCharacters",
        "characters",
        "units",
        "segments",
        "costPerUnit",
        "totalCost",
        "currency",
        "priceSource",
        "withoutSmartEncoding",
        "withSmartEncoding",
        "notes",
        "consent",
    }
    assert body["consent"]["verdict"] == "allow"
    assert body["to"] == "+15005550006"
    assert (body["country"], body["countryCallingCode"]) == ("US", 1)
    assert (body["provider"], body["category"]) == ("simulator", "transactional")
    assert body["sender"]["id"] is None and body["sender"]["source"] == "provider_default"
    assert "alphanumeric" not in body["sender"]["allowedKinds"]
    assert (body["encoding"], body["nonGsmCharacters"], body["segments"]) == ("GSM-7", [], 1)
    assert (body["costPerUnit"], body["totalCost"], body["currency"]) == ("0.0083", "0.0083", "USD")
    assert "Twilio" in body["priceSource"]


async def test_smart_encoding_difference_is_shown_both_ways(api: Api) -> None:
    body = (await _preview(api, to="+15005550006", message=QUOTED)).json()
    without, with_smart = body["withoutSmartEncoding"], body["withSmartEncoding"]
    assert without == {
        "textChanged": False,
        "encoding": "UCS-2",
        "nonGsmCharacters": ["“", "”"],
        "characters": 105,
        "units": 105,
        "segments": 2,
        "costPerUnit": "0.0083",
        "totalCost": "0.0166",
        "currency": "USD",
    }
    assert with_smart["textChanged"] is True
    assert (with_smart["encoding"], with_smart["segments"]) == ("GSM-7", 1)
    assert (with_smart["nonGsmCharacters"], with_smart["totalCost"]) == ([], "0.0083")
    assert (body["smartEncoding"], body["encoding"], body["segments"]) == (False, "UCS-2", 2)
    assert body["message"] == QUOTED
    assert any("Smart Encoding would send 1 segment(s) instead of 2" in n for n in body["notes"])


async def test_smart_encoding_requested_is_what_would_be_sent(api: Api) -> None:
    body = (await _preview(api, to="+15005550006", message=QUOTED, smartEncoding=True)).json()
    assert (body["smartEncoding"], body["encoding"], body["segments"]) == (True, "GSM-7", 1)
    assert body["message"].startswith('"Hi" ')
    assert (body["nonGsmCharacters"], body["totalCost"]) == ([], "0.0083")


@pytest.mark.parametrize(
    ("sender", "kind", "stored"),
    [
        ("+1 500 555 0001", "long_code", "+15005550001"),
        ("+18005550199", "toll_free", "+18005550199"),
        ("12345", "short_code", "12345"),
        (SID, "messaging_service", SID),
    ],
)
async def test_sender_kind_is_reported(api: Api, sender: str, kind: str, stored: str) -> None:
    body = (await _preview(api, to="+15005550006", message="Hi", senderId=sender)).json()
    assert body["sender"]["id"] == stored
    assert (body["sender"]["kind"], body["sender"]["source"]) == (kind, "request")


async def test_india_needs_a_registered_six_character_header(api: Api) -> None:
    body = (await _preview(api, to="+918123456789", message="OTP 1234", senderId="ACMEIN")).json()
    assert (body["country"], body["sender"]["kind"]) == ("IN", "alphanumeric")
    assert body["sender"]["registrationRequired"] is True
    assert "DLT" in body["sender"]["registration"]
    assert any("msg91" in note for note in body["notes"])
    assert body["costPerUnit"] == "0.0500" and "placeholder" in body["priceSource"]


async def test_national_number_uses_the_default_region(api: Api) -> None:
    settings = api.container.settings
    api.container.settings = settings.model_copy(update={"default_region": "GB"})
    body = (await _preview(api, to="07400 123456", message="Hi", senderId="ACME")).json()
    assert (body["to"], body["country"], body["numberType"]) == ("+447400123456", "GB", "MOBILE")
    assert body["sender"]["kind"] == "alphanumeric"


@pytest.mark.parametrize(
    ("body", "field", "phrase"),
    [
        ({"message": "Hi"}, "to", "Field required"),
        ({"to": "+15005550006"}, "message", "Field required"),
        ({"to": "4155552671", "message": "Hi"}, "to", "no country code"),
        ({"to": "+442071838750", "message": "Hi"}, "to", "fixed-line"),
        ({"to": "+19005550123", "message": "Hi"}, "to", "premium-rate"),
        ({"to": "+1415555", "message": "Hi"}, "to", "short code"),
        ({"to": "+15005550006", "message": "  "}, "message", "must not be empty"),
        ({"to": "+15005550006", "message": "x" * 1601}, "message", "the limit is 1600"),
        ({"to": "+15005550006", "message": "Hi", "senderId": "ACME"}, "senderId", "United"),
        ({"to": "+447400123456", "message": "Hi", "senderId": "+15005550006"}, "senderId", "GB"),
        ({"to": "+918123456789", "message": "Hi", "senderId": "ACME"}, "senderId", "6 char"),
        ({"to": "+15005550006", "message": "Hi", "senderId": "AC!ME"}, "senderId", "not a"),
        ({"to": "+15005550006", "message": "Hi", "category": "spam"}, "category", "category"),
        ({"to": "+15005550006", "message": "Hi", "smartEncoding": [1]}, "smartEncoding", "bool"),
        ({"to": "+15005550006", "message": "Hi", "colour": "red"}, "colour", "not a known"),
    ],
)
async def test_bad_preview_is_422_naming_the_field(
    api: Api, body: dict[str, Any], field: str, phrase: str
) -> None:
    response = await _preview(api, **body)
    assert response.status_code == 422, response.text
    error = _error(response)
    assert field in error["message"] and phrase in error["message"]
    assert await _outbox(api) == []


async def test_preview_needs_a_key_and_json(api: Api) -> None:
    unauthenticated = await api.client.post(
        "/api/sms/preview", json={"to": "+15005550006", "message": "Hi"}
    )
    assert unauthenticated.status_code == 401
    _error(unauthenticated)
    wrong_type = await api.client.post(
        "/api/sms/preview",
        content=b'{"to": "+15005550006", "message": "Hi"}',
        headers={**api.auth(), "Content-Type": "text/plain"},
    )
    assert wrong_type.status_code == 415
    _error(wrong_type)


async def test_preview_writes_nothing_and_agrees_with_send(api: Api) -> None:
    body = {"to": "+15005550006", "message": QUOTED, "senderId": "+15005550001"}
    for _ in range(3):
        assert (await _preview(api, **body)).status_code == 200
    assert await _outbox(api) == []
    shown = (await _preview(api, **body)).json()
    sent = (await api.send(**body)).json()
    assert sent["recipientPhoneNumber"] == shown["to"]
    assert sent["senderId"] == shown["sender"]["id"]
    assert (sent["encoding"], sent["smsUnitsUsed"]) == (shown["encoding"], shown["segments"])
    assert (sent["costPerUnit"], sent["totalCost"]) == (shown["costPerUnit"], shown["totalCost"])
    assert [item["outboxId"] for item in await _outbox(api)] == [sent["outboxId"]]


@pytest.mark.parametrize(
    ("to", "sender", "phrase"),
    [
        ("+15005550006", "ACME", "alphanumeric sender ID, which cannot send"),
        ("+15005550006", "+447400123456", "is a number from GB"),
        ("+447400123456", "+15005550006", "long code (phone number), which cannot send"),
        ("+447400123456", "+18005550199", "toll-free number, which cannot send"),
        ("+918123456789", "ACMEINDIA", "exactly 6 characters"),
        ("+918123456789", "56161", "short code, which cannot send"),
        ("+2348031234567", "+15005550006", "Nigeria"),
        ("+254712345678", "12345", "Kenya"),
        ("+15005550006", "MG" + "0" * 31, "Messaging Service SID"),
        ("+15005550006", "123456789", "short code (3 to 8 digits)"),
    ],
)
async def test_send_refuses_a_sender_the_destination_does_not_allow(
    api: Api, to: str, sender: str, phrase: str
) -> None:
    response = await api.send(to=to, message="Hi", senderId=sender)
    assert response.status_code == 422, response.text
    error = _error(response)
    assert error["message"].startswith("senderId: ") and phrase in error["message"]
    assert error["details"]["field"] == "senderId"
    assert await _outbox(api) == []


@pytest.mark.parametrize(
    ("to", "sender", "stored"),
    [
        ("+15005550006", "+1 (500) 555-0001", "+15005550001"),
        ("+15005550006", SID, SID),
        ("+447400123456", "ACME", "ACME"),
        ("+918123456789", "ACMEIN", "ACMEIN"),
        ("+15005550006", None, None),
    ],
)
async def test_send_stores_the_canonical_sender(
    api: Api, to: str, sender: str | None, stored: str | None
) -> None:
    response = await api.send(to=to, message="Hi", senderId=sender)
    assert response.status_code == 202, response.text
    assert response.json()["senderId"] == stored


# The service rules behind both endpoints, for settings the API fixture does not expose.

NOW = datetime(2026, 11, 1, tzinfo=UTC)
PRINCIPAL = Principal(tenant_id="t1", key_id="k1")


def test_segment_cap_is_off_by_default_and_says_limit_and_size_when_set() -> None:
    long_text = NewMessage(to="+15005550006", message="x" * 1600)
    assert plan_message(SubmitPolicy(provider="twilio"), long_text).segments.segments == 11
    with pytest.raises(InvalidRequest) as caught:
        plan_message(SubmitPolicy(provider="twilio", max_segments=10), long_text)
    assert caught.value.field == "message"
    assert "is 11 segments (GSM-7); the limit is 10 segments" in caught.value.message
    assert caught.value.details == {
        "field": "message",
        "segmentLimit": 10,
        "segments": 11,
        "encoding": "GSM-7",
    }


def test_segment_cap_counts_what_is_sent() -> None:
    policy = SubmitPolicy(provider="twilio", max_segments=1)
    with pytest.raises(InvalidRequest, match="UCS-2"):
        plan_message(policy, NewMessage(to="+15005550006", message=QUOTED))
    smart = NewMessage(to="+15005550006", message=QUOTED, smart_encoding=True)
    assert plan_message(policy, smart).segments.segments == 1


def test_row_carries_smart_encoded_text_and_override_price() -> None:
    policy = SubmitPolicy(
        provider="twilio", price_overrides={("twilio", "US"): Price(Decimal("0.0040"), "USD")}
    )
    new = NewMessage(to="+15005550006", message=QUOTED, smart_encoding=True)
    row = build_row(policy, PRINCIPAL, new, NOW)
    assert row["body"].startswith('"Hi" ') and row["encoding"] == "GSM-7"
    assert (row["cost_per_unit"], row["total_cost"], row["currency"]) == ("0.0040", "0.0040", "USD")


def test_preview_warns_when_the_providers_default_sender_cannot_reach_the_country() -> None:
    from smsrelay.services.preview import preview_message

    policy = SubmitPolicy(provider="twilio", default_sender="+15005550006")
    result = preview_message(policy, NewMessage(to="+447400123456", message="Hi"))
    assert any("default sender will be refused" in note for note in result.notes)
    fine = preview_message(policy, NewMessage(to="+15005550006", message="Hi"))
    assert not any("refused" in note for note in fine.notes)


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(preview)
    return app


def test_cli_prints_the_preview_as_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSRELAY_PROVIDER", "simulator")
    result = CliRunner().invoke(_cli(), ["--to", "+15005550006", QUOTED], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for shown in ("+15005550006", "UCS-2", "GSM-7", "U+201C", "0.0166 USD", "0.0083 USD"):
        assert shown in result.output


def test_cli_reports_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSRELAY_PROVIDER", "simulator")
    result = CliRunner().invoke(_cli(), ["--to", "+442071838750", "Hi"])
    assert result.exit_code == 1
    assert "to: " in result.output and "fixed-line" in result.output
