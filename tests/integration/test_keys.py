"""API keys: hashed, prefixed, scoped, expiring and revocable, through the API and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from smsrelay.cli import app as cli_app
from smsrelay.cli_keys import keys_app, parse_expiry
from smsrelay.services.tenants import create_key, hash_key
from smsrelay.store.database import Database
from smsrelay.store.tables import api_keys
from tests.integration.conftest import Api

SEND = {"to": "+15005550006", "message": "Hello"}


async def _key_with(api: Api, *scopes: str, **fields: Any) -> str:
    created = await create_key(api.container.db, api.tenant_id, scopes=frozenset(scopes), **fields)
    return created.api_key


async def _key_row(api: Api, key_id: str) -> dict[str, Any]:
    async with api.container.db.transaction() as connection:
        query = select(api_keys).where(api_keys.c.id == key_id)
        row = (await connection.execute(query)).mappings().one()
    return dict(row)


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return error


async def test_first_key_has_every_scope_and_only_its_hash_is_stored(api: Api) -> None:
    (key,) = (await api.client.get("/api/keys", headers=api.auth())).json()["items"]
    assert key["scopes"] == ["send", "read", "admin"] and key["state"] == "active"
    assert api.api_key.startswith(key["prefix"] + "_")
    row = await _key_row(api, key["keyId"])
    assert row["key_hash"] == hash_key(api.api_key)
    secret = api.api_key.split("_", 2)[2]  # sr_<prefix>_<secret>; the secret may hold "_"
    assert all(secret not in str(value) for value in row.values())


@pytest.mark.parametrize(
    ("scopes", "method", "path", "needed"),
    [
        (("read",), "POST", "/api/sms/send", "send"),
        (("read",), "POST", "/api/sms/outbox/resend", "send"),
        (("send",), "GET", "/api/sms/outbox", "read"),
        (("send",), "GET", "/api/sms/outbox/sms_0", "read"),
        (("send", "read"), "GET", "/api/keys", "admin"),
        (("send", "read"), "POST", "/api/keys", "admin"),
        (("send", "read"), "DELETE", "/api/keys/key_0", "admin"),
    ],
)
async def test_key_without_the_scope_is_403_naming_it(
    api: Api, scopes: tuple[str, ...], method: str, path: str, needed: str
) -> None:
    key = await _key_with(api, *scopes)
    body = {**SEND, "outboxId": "sms_0", "name": "x"} if method == "POST" else None
    response = await api.client.request(method, path, json=body, headers=api.auth(key))
    error = _error(response, 403)
    assert error["code"] == "insufficient_scope"
    assert f"'{needed}'" in error["message"]
    assert error["details"]["requiredScope"] == needed
    listing = await api.client.get("/api/sms/outbox", headers=api.auth())
    assert listing.json()["items"] == []


async def test_keys_with_the_scope_are_let_through(api: Api) -> None:
    sender, reader = await _key_with(api, "send"), await _key_with(api, "read")
    sent = await api.client.post("/api/sms/send", json=SEND, headers=api.auth(sender))
    assert sent.status_code == 202, sent.text
    path = f"/api/sms/outbox/{sent.json()['outboxId']}"
    assert (await api.client.get(path, headers=api.auth(reader))).status_code == 200


async def test_admin_creates_lists_and_revokes_keys(api: Api) -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    created = await api.client.post(
        "/api/keys",
        json={"name": "ci", "scopes": ["read"], "expiresAt": expires},
        headers=api.auth(),
    )
    assert created.status_code == 201, created.text
    new = created.json()
    assert new["apiKey"].startswith(new["prefix"] + "_") and new["scopes"] == ["read"]
    assert datetime.fromisoformat(new["expiresAt"]) == datetime.fromisoformat(expires)
    reader = api.auth(new["apiKey"])
    assert (await api.client.get("/api/sms/outbox", headers=reader)).status_code == 200

    listing = await api.client.get("/api/keys", headers=api.auth())
    assert [k["name"] for k in listing.json()["items"]] == ["default", "ci"]
    assert new["apiKey"] not in listing.text and api.api_key not in listing.text

    revoked = await api.client.delete(f"/api/keys/{new['keyId']}", headers=api.auth())
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    error = _error(await api.client.get("/api/sms/outbox", headers=reader), 401)
    assert "revoked" in error["message"]
    again = await api.client.delete(f"/api/keys/{new['keyId']}", headers=api.auth())
    _error(again, 404)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "scopes": ["root"]},
        {"name": "x", "scopes": []},
        {"name": " "},
        {"name": "x", "expiresAt": "2001-01-01T00:00:00Z"},
        {"name": "x", "expiresAt": "2999-01-01T00:00:00"},
        {"name": "x", "expiresAt": "9999-12-31T23:59:59-23:59"},
        {"name": "a\x00b"},
    ],
)
async def test_bad_key_requests_are_422(api: Api, body: dict[str, Any]) -> None:
    response = await api.client.post("/api/keys", json=body, headers=api.auth())
    _error(response, 422)
    listing = await api.client.get("/api/keys", headers=api.auth())
    assert len(listing.json()["items"]) == 1


async def test_expired_key_is_401_saying_so(api: Api) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    created = await create_key(api.container.db, api.tenant_id, expires_at=soon)
    async with api.container.db.transaction() as connection:
        past = datetime.now(UTC) - timedelta(seconds=1)
        key_id = created.info.key_id
        await connection.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(expires_at=past)
        )
    response = await api.client.get("/api/sms/outbox", headers=api.auth(created.api_key))
    error = _error(response, 401)
    assert "expired" in error["message"] and response.headers["www-authenticate"] == "Bearer"
    listing = await api.client.get("/api/keys", headers=api.auth())
    states = {k["keyId"]: k["state"] for k in listing.json()["items"]}
    assert states[created.info.key_id] == "expired"


async def test_use_is_recorded_as_last_used(api: Api) -> None:
    before = datetime.now(UTC)
    await api.client.get("/api/sms/outbox", headers=api.auth())
    (key,) = (await api.client.get("/api/keys", headers=api.auth())).json()["items"]
    assert datetime.fromisoformat(key["lastUsedAt"]) >= before - timedelta(seconds=1)


async def test_revoking_an_impossible_key_id_is_404(api: Api) -> None:
    for key_id in ("key_" + "0" * 60, "key_unknown"):
        response = await api.client.delete(f"/api/keys/{key_id}", headers=api.auth())
        _error(response, 404)
    nul = await api.client.delete("/api/keys/a%00b", headers=api.auth())
    _error(nul, 422)


@pytest.mark.parametrize(
    "forged",
    ["sr_zzzzzzzzzzzz_x", "sr_\x00_x", "sr__", "sr_" + "a" * 40 + "_x", "Bearer", "sr_abc"],
)
async def test_malformed_keys_are_401(api: Api, forged: str) -> None:
    response = await api.client.get("/api/sms/outbox", headers=api.auth(forged))
    assert _error(response, 401)["message"] == "unknown API key"


@pytest.mark.parametrize(
    ("text", "delta"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90))],
)
def test_expiry_durations_count_from_now(text: str, delta: timedelta) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert parse_expiry(text, now) == now + delta


def test_expiry_times_without_offset_are_utc() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert parse_expiry("2031-02-03", now) == datetime(2031, 2, 3, tzinfo=UTC)
    assert parse_expiry("2031-02-03T04:05:06+02:00", now).utcoffset() == timedelta(hours=2)


# --- The command line ---


def _cli(database_url: str, app: Any, *args: str) -> Any:
    env = {"SMSRELAY_DATABASE_URL": database_url}
    return CliRunner().invoke(app, list(args), env=env)


def test_cli_creates_lists_and_revokes_keys_without_printing_secrets(
    database_url: str, db: Database
) -> None:
    tenant = json.loads(_cli(database_url, cli_app, "tenants", "create", "acme").stdout)
    assert tenant["tenantId"] and tenant["apiKey"]
    made = _cli(
        database_url, keys_app, "create", tenant["tenantId"], "--scopes", "send", "--expires", "30d"
    )
    assert made.exit_code == 0, made.output
    key = json.loads(made.stdout)
    assert key["scopes"] == ["send"] and key["apiKey"].startswith(key["prefix"] + "_")
    expires = datetime.fromisoformat(key["expiresAt"]) - datetime.now(UTC)
    assert timedelta(days=29, hours=23) < expires <= timedelta(days=30)

    listing = _cli(database_url, keys_app, "list", tenant["tenantId"])
    rows = [json.loads(line) for line in listing.stdout.splitlines()]
    assert [(r["scopes"], r["state"]) for r in rows] == [
        (["send", "read", "admin"], "active"),
        (["send"], "active"),
    ]
    assert key["apiKey"] not in listing.stdout and tenant["apiKey"] not in listing.stdout

    assert _cli(database_url, keys_app, "revoke", key["keyId"]).exit_code == 0
    listing = _cli(database_url, keys_app, "list", tenant["tenantId"])
    assert [json.loads(line)["state"] for line in listing.stdout.splitlines()][-1] == "revoked"


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["create", "{tenant}", "--scopes", "send,root"], 2, "root"),
        (["create", "{tenant}", "--expires", "soon"], 2, "soon"),
        (["create", "{tenant}", "--expires", "2001-01-01"], 1, "future"),
        (["create", "ten_unknown"], 1, "no tenant 'ten_unknown'"),
        (["list", "ten_unknown"], 1, "no tenant 'ten_unknown'"),
        (["revoke", "key_unknown"], 1, "no active API key 'key_unknown'"),
    ],
)
def test_cli_refuses_bad_input_naming_it(
    database_url: str, db: Database, args: list[str], code: int, says: str
) -> None:
    tenant = json.loads(_cli(database_url, cli_app, "tenants", "create", "acme").stdout)
    result = _cli(database_url, keys_app, *(a.format(tenant=tenant["tenantId"]) for a in args))
    assert result.exit_code == code, result.output
    assert says in result.output and result.stdout == ""
