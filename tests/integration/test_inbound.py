"""The inbound SMS webhook: signatures, keywords, TwiML replies, idempotency, ownership, inbox."""

from __future__ import annotations

import io
import itertools
import json
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from smsrelay.domain.keywords import KEYWORDS, Keyword
from smsrelay.logs import configure_logging
from smsrelay.providers.twilio.signature import compute_signature
from smsrelay.services.inbound import DEFAULT_REPLIES, set_default_inbound_tenant
from smsrelay.services.tenants import create_tenant
from tests.conftest import VECTORS
from tests.integration.conftest import Api

PATH = "/api/webhooks/twilio/inbound"
PHONE = "+14155552671"
OUR_NUMBER = "+15005550006"
WEBHOOKS: dict[str, Any] = json.loads((VECTORS / "twilio_webhooks.json").read_text("utf-8"))
_sids = itertools.count(1)


def new_sid() -> str:
    return f"SM{next(_sids):032x}"


async def post_inbound(
    api: Api, body: str, *, sid: str | None = None, token: str | None = None, **extra: str
) -> httpx.Response:
    """Post a form the way Twilio does, signed with the account's auth token."""
    params = {
        "MessageSid": sid or new_sid(),
        "AccountSid": "AC" + "0" * 32,
        "From": PHONE,
        "To": OUR_NUMBER,
        "Body": body,
        "NumMedia": "0",
        **extra,
    }
    params = {k: v for k, v in params.items() if v != ""}
    signature = compute_signature(
        f"http://testserver{PATH}", params, token or api.container.webhook_auth_tokens[0]
    )
    return await api.client.post(PATH, data=params, headers={"X-Twilio-Signature": signature})


def reply_of(response: httpx.Response) -> str | None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    root = ElementTree.fromstring(response.text)  # noqa: S314  # our own server's TwiML
    assert root.tag == "Response"
    messages = [m.text for m in root.findall("Message")]
    assert len(messages) <= 1 and len(root) == len(messages)
    return messages[0] if messages else None


async def suppression(api: Api, key: str | None = None) -> dict[str, Any] | None:
    response = await api.client.get(
        "/api/suppressions", params={"phone": PHONE}, headers=api.auth(key)
    )
    items: list[dict[str, Any]] = response.json()["items"]
    return items[0] if items else None


async def history(api: Api) -> dict[str, Any]:
    response = await api.client.get("/api/consents", params={"phone": PHONE}, headers=api.auth())
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_requests_without_a_valid_signature_are_refused(api: Api) -> None:
    response = await post_inbound(api, "STOP", token="not-the-token")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_signature"
    unsigned = await api.client.post(PATH, data={"MessageSid": new_sid(), "From": PHONE})
    assert unsigned.status_code == 403
    assert await suppression(api) is None


@pytest.mark.parametrize("word", WEBHOOKS["keywords"]["opt_out_current_default"])
async def test_every_opt_out_keyword_suppresses_and_confirms_once(api: Api, word: str) -> None:
    response = await post_inbound(api, f"  {word.lower()}. ")
    assert reply_of(response) == DEFAULT_REPLIES[Keyword.OPT_OUT]
    assert response.text.count("<Message>") == 1
    found = await suppression(api)
    assert found is not None and found["reason"] == "keyword"
    (record,) = (await history(api))["items"]
    assert record["status"] == "opted_out" and record["method"] == "keyword"
    assert record["consentText"] == f"  {word.lower()}. "  # the exact words, as evidence
    assert record["category"] is None
    assert record["evidence"]["messageSid"].startswith("SM")


async def test_opt_in_keywords_lift_the_suppression(api: Api) -> None:
    await post_inbound(api, "STOP")
    assert await suppression(api) is not None
    for word in WEBHOOKS["keywords"]["opt_in"]:
        response = await post_inbound(api, word)
        assert reply_of(response) == DEFAULT_REPLIES[Keyword.OPT_IN]
        assert await suppression(api) is None
    statuses = [r["status"] for r in (await history(api))["items"]]
    assert statuses == ["opted_out", "opted_in", "opted_in", "opted_in"]
    # A keyword opt-in restores; it is not by itself consent to marketing.
    assert (await history(api))["marketingConsent"] == "none"


async def test_an_opt_in_keyword_leaves_an_operators_suppression_alone(api: Api) -> None:
    added = await api.client.post(
        "/api/suppressions", json={"phone": PHONE, "reason": "manual"}, headers=api.auth()
    )
    assert added.status_code == 201
    assert reply_of(await post_inbound(api, "START")) == DEFAULT_REPLIES[Keyword.OPT_IN]
    found = await suppression(api)
    assert found is not None and found["reason"] == "manual"


async def test_help_keywords_answer_with_the_help_text_only(api: Api) -> None:
    for word in WEBHOOKS["keywords"]["help"]:
        assert reply_of(await post_inbound(api, word)) == DEFAULT_REPLIES[Keyword.HELP]
    assert await suppression(api) is None
    assert (await history(api))["items"] == []


async def test_other_messages_are_stored_and_listed_in_the_inbox(api: Api) -> None:
    assert reply_of(await post_inbound(api, "Stop please")) is None
    assert reply_of(await post_inbound(api, "See you at 5 & bring cake")) is None
    await post_inbound(api, "HELP")
    response = await api.client.get("/api/sms/inbox", headers=api.auth())
    items = response.json()["items"]
    assert [i["body"] for i in items] == ["HELP", "See you at 5 & bring cake", "Stop please"]
    assert [i["keyword"] for i in items] == ["help", "none", "none"]
    assert items[1]["fromPhone"] == PHONE and items[1]["toPhone"] == OUR_NUMBER
    assert await suppression(api) is None
    only = await api.client.get("/api/sms/inbox?keyword=none&limit=1", headers=api.auth())
    page = only.json()
    assert [i["body"] for i in page["items"]] == ["See you at 5 & bring cake"]
    after = await api.client.get(
        f"/api/sms/inbox?keyword=none&limit=1&cursor={page['nextCursor']}", headers=api.auth()
    )
    assert [i["body"] for i in after.json()["items"]] == ["Stop please"]
    assert after.json()["nextCursor"] is None


async def test_a_repeated_message_sid_is_acted_on_and_answered_once(api: Api) -> None:
    sid = new_sid()
    first = await post_inbound(api, "STOP", sid=sid)
    again = await post_inbound(api, "STOP", sid=sid)
    assert reply_of(first) == DEFAULT_REPLIES[Keyword.OPT_OUT]
    assert reply_of(again) is None
    assert len((await history(api))["items"]) == 1
    inbox = (await api.client.get("/api/sms/inbox", headers=api.auth())).json()["items"]
    assert len(inbox) == 1


async def test_twilios_opt_out_type_is_honoured_and_not_answered_twice(api: Api) -> None:
    # Advanced Opt-Out recognised a keyword configured at Twilio and replied itself.
    response = await post_inbound(api, "ARRET", OptOutType="STOP")
    assert reply_of(response) is None
    found = await suppression(api)
    assert found is not None and found["reason"] == "keyword"
    (record,) = (await history(api))["items"]
    assert record["evidence"]["optOutType"] == "STOP"
    assert reply_of(await post_inbound(api, "please resume", OptOutType="START")) is None
    assert await suppression(api) is None


async def test_replies_are_configurable_per_tenant(api: Api) -> None:
    response = await api.client.put(
        "/api/consent-settings",
        json={"optOutReply": "Acme: unsubscribed <ok> & done", "helpReply": ""},
        headers=api.auth(),
    )
    assert response.status_code == 200, response.text
    assert response.json()["optOutReply"] == "Acme: unsubscribed <ok> & done"
    assert response.json()["optInReply"] == DEFAULT_REPLIES[Keyword.OPT_IN]
    stop = await post_inbound(api, "STOP")
    assert "<Message>Acme: unsubscribed &lt;ok&gt; &amp; done</Message>" in stop.text
    assert reply_of(await post_inbound(api, "HELP")) is None  # "" sends no reply
    reset = await api.client.put(
        "/api/consent-settings", json={"helpReply": None}, headers=api.auth()
    )
    assert reset.json()["helpReply"] == DEFAULT_REPLIES[Keyword.HELP]
    assert reply_of(await post_inbound(api, "HELP")) == DEFAULT_REPLIES[Keyword.HELP]


async def test_missing_fields_are_named(api: Api) -> None:
    response = await post_inbound(api, "STOP", From="")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["details"]["field"] == "From"


async def test_the_tenant_that_last_texted_the_number_owns_the_reply(api: Api) -> None:
    other = await create_tenant(api.container.db, "beta")
    assert (await api.send(to=PHONE, message="Hi from acme")).status_code == 202
    sent = await api.client.post(
        "/api/sms/send",
        json={"to": PHONE, "message": "Hi from beta"},
        headers=api.auth(other.api_key),
    )
    assert sent.status_code == 202
    await post_inbound(api, "STOP")
    assert await suppression(api, other.api_key) is not None
    assert await suppression(api) is None
    inbox = await api.client.get("/api/sms/inbox", headers=api.auth(other.api_key))
    assert [i["body"] for i in inbox.json()["items"]] == ["STOP"]


async def test_the_default_tenant_owns_numbers_nobody_texted(api: Api) -> None:
    other = await create_tenant(api.container.db, "beta")
    await post_inbound(api, "before a default is set")
    await set_default_inbound_tenant(api.container.db, other.tenant_id)
    await post_inbound(api, "hello?")
    inbox = await api.client.get("/api/sms/inbox", headers=api.auth(other.api_key))
    assert [i["body"] for i in inbox.json()["items"]] == ["hello?"]
    mine = await api.client.get("/api/sms/inbox", headers=api.auth())
    assert mine.json()["items"] == []  # with two tenants and no default nobody owned the first


async def test_a_stop_nobody_owns_suppresses_the_number_for_every_tenant(api: Api) -> None:
    other = await create_tenant(api.container.db, "beta")
    assert reply_of(await post_inbound(api, "STOP")) == DEFAULT_REPLIES[Keyword.OPT_OUT]
    assert await suppression(api) is not None
    assert await suppression(api, other.api_key) is not None


async def test_logs_never_carry_the_number_or_the_text(
    monkeypatch: pytest.MonkeyPatch, api: Api
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging(json=True)
    try:
        await post_inbound(api, "STOP")
        await post_inbound(api, "my secret words")
        await post_inbound(api, "STOP", token="wrong")
    finally:
        monkeypatch.undo()
        configure_logging(json=True)
    logged = stream.getvalue()
    assert "consent.inbound_received" in logged and "webhook.signature_rejected" in logged
    assert PHONE not in logged and PHONE[1:] not in logged
    assert "my secret words" not in logged


def test_every_keyword_is_known_to_the_classifier() -> None:
    assert set(KEYWORDS.values()) == {Keyword.OPT_OUT, Keyword.OPT_IN, Keyword.HELP}
