"""Security properties: forged Twilio webhooks refused, replays inert, no secret stored in clear."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from smsrelay.providers.twilio.signature import compute_signature
from smsrelay.services.secrets import SecretBox, generate_key
from smsrelay.services.tenants import create_key, create_tenant
from smsrelay.store.database import Database
from smsrelay.store.tables import (
    consent_records,
    inbound_messages,
    message_events,
    metadata,
    unmatched_callbacks,
)
from tests.integration.conftest import Api, LiveApp

StartApp = Callable[..., Awaitable[LiveApp]]

STATUS_PATH = "/api/webhooks/twilio/status"
INBOUND_PATH = "/api/webhooks/twilio/inbound"
BASE = "http://testserver"  # settings.public_url in the `api` fixture
EXAMPLES = 40  # forged requests per webhook: bounded, so the test stays a few seconds
_sids = itertools.count(1)


def new_sid() -> str:
    return f"SM{next(_sids):032x}"


def status_params() -> dict[str, str]:
    return {
        "MessageSid": new_sid(),
        "MessageStatus": "delivered",
        "AccountSid": "AC" + "0" * 32,
        "From": "+15005550006",
        "To": "+14155552671",
    }


def inbound_params() -> dict[str, str]:
    return {
        "MessageSid": new_sid(),
        "AccountSid": "AC" + "0" * 32,
        "From": "+14155552671",
        "To": "+15005550006",
        "Body": "STOP",
        "NumMedia": "0",
    }


# -- forged signatures ---------------------------------------------------------------------


@dataclass(frozen=True)
class Forgery:
    """How a correctly signed request is changed before it is sent."""

    kind: str  # signature | token | value | added | removed | signed_url | query
    text: str
    index: int


# Header values must be printable ASCII; form values anything but NUL (refused earlier, 422).
_HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
_FORM_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
_NAME = st.text(st.characters(min_codepoint=0x41, max_codepoint=0x7A), min_size=1, max_size=12)
FORGERIES = st.one_of(
    st.builds(Forgery, st.just("signature"), _HEADER_TEXT, st.integers(0, 27)),
    st.builds(Forgery, st.just("token"), _HEADER_TEXT, st.just(0)),
    st.builds(Forgery, st.just("value"), _FORM_TEXT, st.integers(0, 10)),
    st.builds(Forgery, st.just("added"), _NAME, st.integers(0, 10)),
    st.builds(Forgery, st.just("removed"), st.just(""), st.integers(0, 10)),
    st.builds(
        Forgery,
        st.just("signed_url"),
        st.sampled_from(["https://testserver", "http://example.com", "http://testserver:8080"]),
        st.just(0),
    ),
    st.builds(Forgery, st.just("signed_url"), _NAME, st.just(1)),
    st.builds(Forgery, st.just("query"), _NAME, st.just(0)),
)


def forgeries(count: int) -> list[Forgery]:
    """`count` forgeries drawn by hypothesis (collected, then replayed against the async app)."""
    drawn: list[Forgery] = []

    @settings(max_examples=count, database=None, derandomize=True, deadline=None)
    @given(FORGERIES)
    def collect(forgery: Forgery) -> None:
        drawn.append(forgery)

    collect()
    return drawn


def forged(
    path: str, params: dict[str, str], token: str, forgery: Forgery
) -> tuple[str, dict[str, str], dict[str, str]]:
    """(path+query to post, form to post, headers): a request whose signature cannot match."""
    signed_url, sent = f"{BASE}{path}", dict(params)
    names = sorted(params)
    target = names[forgery.index % len(names)]
    query = ""
    if forgery.kind == "token":
        token = token + (forgery.text or "x")
    elif forgery.kind == "value":
        changed = forgery.text if forgery.text != params[target] else forgery.text + "x"
        sent[target] = changed
    elif forgery.kind == "added":
        sent["X" + forgery.text] = "1"  # "X…": no Twilio field, so never a repeat of one
    elif forgery.kind == "removed":
        del sent[target]
    elif forgery.kind == "signed_url" and forgery.index == 0:
        signed_url = f"{forgery.text}{path}"
    elif forgery.kind == "signed_url":
        signed_url = f"{BASE}{path}/{forgery.text}"
    elif forgery.kind == "query":
        query = f"?outboxId={forgery.text}"
    signature = compute_signature(signed_url, params, token)
    if forgery.kind == "signature":
        signature = _tampered(signature, forgery.text, forgery.index)
    return path + query, sent, {"X-Twilio-Signature": signature}


def _tampered(signature: str, text: str, index: int) -> str:
    if not text:
        return signature[:index]  # truncated (empty when index is 0)
    tampered = signature[:index] + text + signature[index + len(text) :]
    return tampered if tampered != signature else signature + text


async def count_rows(db: Database, table: Any) -> int:
    async with db.transaction() as connection:
        return int(await connection.scalar(select(func.count()).select_from(table)) or 0)


@pytest.mark.parametrize(
    ("path", "make_params"), [(STATUS_PATH, status_params), (INBOUND_PATH, inbound_params)]
)
async def test_forged_twilio_webhooks_are_refused(
    api: Api, path: str, make_params: Callable[[], dict[str, str]]
) -> None:
    token = api.container.webhook_auth_tokens[0]
    for forgery in forgeries(EXAMPLES):
        target, form, headers = forged(path, make_params(), token, forgery)
        response = await api.client.post(target, data=form, headers=headers)
        assert response.status_code == 403, (forgery, response.text)
        assert response.json()["error"]["code"] == "invalid_signature"
    for table in (unmatched_callbacks, message_events, inbound_messages, consent_records):
        assert await count_rows(api.container.db, table) == 0, table.name

    genuine = make_params()  # the same request, signed properly, is accepted
    signature = compute_signature(f"{BASE}{path}", genuine, token)
    response = await api.client.post(path, data=genuine, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text


async def test_a_repeated_status_field_is_signed_with_every_value(api: Api) -> None:
    """Twilio signs each value of a repeated field (sorted, without repeats): the status webhook
    checks the signature over all of them, not over the last one alone."""
    token = api.container.webhook_auth_tokens[0]
    params = status_params()
    sent: dict[str, str | list[str]] = {**params, "Tag": ["b", "a", "b"]}
    last_only = compute_signature(f"{BASE}{STATUS_PATH}", {**params, "Tag": "b"}, token)
    response = await api.client.post(
        STATUS_PATH, data=sent, headers={"X-Twilio-Signature": last_only}
    )
    assert response.status_code == 403, response.text
    signature = compute_signature(f"{BASE}{STATUS_PATH}", sent, token)
    response = await api.client.post(
        STATUS_PATH, data=sent, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 200, response.text


# -- replays -------------------------------------------------------------------------------


async def post_status(
    app: LiveApp, sid: str, status: str, idempotency_token: str, **extra: str
) -> httpx.Response:
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "0" * 32, **extra}
    url = f"{app.url}{STATUS_PATH}"
    token = app.container.webhook_auth_tokens[0]
    headers = {
        "X-Twilio-Signature": compute_signature(url, params, token),
        "I-Twilio-Idempotency-Token": idempotency_token,
    }
    return await app.client.post(STATUS_PATH, data=params, headers=headers)


async def accepted_entry(app: LiveApp, outbox_id: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            response = await app.client.get(f"/api/sms/outbox/{outbox_id}", headers=app.auth())
            entry: dict[str, Any] = response.json()
            if entry["messageId"]:
                return entry
            await asyncio.sleep(0.05)


async def test_a_replayed_status_callback_changes_nothing(start_app: StartApp) -> None:
    app = await start_app(simulator_step_delay=120)  # the simulator's own callbacks never come
    sent = (await app.send(to="+15005550006", message="Hello")).json()
    entry = await accepted_entry(app, sent["outboxId"])
    sid = entry["messageId"]

    first = await post_status(app, sid, "delivered", "idem-1")
    delivered = await app.wait_for_status(sent["outboxId"], "delivered")
    replays = [
        await post_status(app, sid, "delivered", "idem-1"),
        await post_status(app, sid, "undelivered", "idem-1", ErrorCode="30003"),
    ]
    assert [r.status_code for r in [first, *replays]] == [200, 200, 200]
    after = await app.wait_for_status(sent["outboxId"], "delivered")
    assert after["events"] == delivered["events"]
    assert after["errorDetails"] is None
    assert after["timestamps"] == delivered["timestamps"]


async def post_inbound_stop(api: Api, sid: str) -> httpx.Response:
    params = inbound_params() | {"MessageSid": sid}
    token = api.container.webhook_auth_tokens[0]
    signature = compute_signature(f"{BASE}{INBOUND_PATH}", params, token)
    return await api.client.post(
        INBOUND_PATH, data=params, headers={"X-Twilio-Signature": signature}
    )


async def test_a_replayed_inbound_stop_records_one_opt_out(api: Api) -> None:
    sid = new_sid()
    responses = [await post_inbound_stop(api, sid) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert "<Message>" in responses[0].text
    assert all("<Message>" not in r.text for r in responses[1:])  # confirmed once
    assert await count_rows(api.container.db, consent_records) == 1
    assert await count_rows(api.container.db, inbound_messages) == 1


# -- nothing secret at rest ----------------------------------------------------------------


async def dump_database(db: Database) -> str:
    """Every column of every row of every table, as text."""
    lines: list[str] = []
    async with db.transaction() as connection:
        for table in metadata.sorted_tables:
            for row in (await connection.execute(select(table))).all():
                lines.append(f"{table.name}: " + " | ".join(str(value) for value in row))
    return "\n".join(lines)


async def test_a_database_dump_holds_no_api_key_and_no_plaintext_secret(api: Api) -> None:
    other = await create_tenant(api.container.db, "globex")
    extra = await create_key(api.container.db, other.tenant_id, name="ci")
    created = await api.client.post(
        "/api/keys", json={"name": "deploy", "scopes": ["send", "read"]}, headers=api.auth()
    )
    assert created.status_code == 201, created.text
    keys = [api.api_key, other.api_key, extra.api_key, created.json()["apiKey"]]
    assert all(key.startswith("sr_") for key in keys)

    plaintext = "twilio-auth-token-" + "7c1f" * 8
    box = SecretBox(generate_key())
    sealed = box.encrypt(plaintext)
    for number, key in enumerate(keys):
        response = await api.client.post(
            "/api/sms/send",
            json={"to": "+15005550006", "message": f"Hello {number}", "customData": {"t": sealed}},
            headers=api.auth(key) | {"Idempotency-Key": f"dump-{number}"},
        )
        assert response.status_code == 202, response.text
    await api.container.dispatcher.process_all()  # type: ignore[union-attr]

    dump = await dump_database(api.container.db)
    assert "Hello 3" in dump and sealed in dump  # the dump does see what was stored
    for key in keys:
        assert key not in dump
        assert key.split("_", 2)[2] not in dump  # sr_<prefix>_<secret>: not even the secret
    assert plaintext not in dump
    assert box.decrypt(sealed) == plaintext
