"""`smsrelay providers …` and `smsrelay secrets rotate` on a real database, in-process."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import select
from typer.testing import CliRunner, Result

from smsrelay.cli import app
from smsrelay.services.secrets import SecretBox, SecretDecryptError, generate_key
from smsrelay.store.tables import tenant_provider_configs
from tests.integration.conftest import Api
from tests.integration.provider_accounts import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    MSG91,
    Accounts,
    twilio_body,
)
from tests.providers.msg91_fake import AUTH_KEY


async def smsrelay(api: Api, *args: str, **env: str) -> Result:
    """Run the CLI in a thread (it runs its own event loop) against the test's database."""
    settings = api.container.settings
    assert settings.secret_keys is not None
    base = {
        "SMSRELAY_DATABASE_URL": settings.database_url,
        "SMSRELAY_SECRET_KEYS": settings.secret_keys.get_secret_value(),
        "TWILIO_API_BASE_URL": settings.twilio_api_base_url,
    }
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app, list(args), env=base | env)


async def sealed_secrets(api: Api) -> list[str]:
    async with api.container.db.reading() as connection:
        return list(await connection.scalars(select(tenant_provider_configs.c.secrets)))


async def test_providers_set_list_verify_delete(keyed_api: Api, accounts: Accounts) -> None:
    tenant = keyed_api.tenant_id
    options = ["--account-sid", ACCOUNT_SID, "--from-number=+15005550006"]
    saved = await smsrelay(
        keyed_api, "providers", "set", tenant, "twilio", *options,
        SMSRELAY_PROVIDER_AUTH_TOKEN=AUTH_TOKEN,
    )  # fmt: skip
    assert saved.exit_code == 0, saved.output
    shown = json.loads(saved.stdout)
    assert shown["settings"]["accountSid"] == ACCOUNT_SID and shown["verified"] is False
    assert AUTH_TOKEN not in saved.output

    listed = await smsrelay(keyed_api, "providers", "list", tenant)
    assert [json.loads(line)["provider"] for line in listed.stdout.splitlines()] == ["twilio"]
    verified = await smsrelay(keyed_api, "providers", "verify", tenant, "twilio")
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["verified"] is True
    api_view = await keyed_api.client.get("/api/providers/twilio", headers=keyed_api.auth())
    assert api_view.json()["verified"] is True

    deleted = await smsrelay(keyed_api, "providers", "delete", tenant, "twilio")
    assert deleted.exit_code == 0, deleted.output
    again = await smsrelay(keyed_api, "providers", "delete", tenant, "twilio")
    assert again.exit_code == 1 and "no twilio config" in again.output


async def test_providers_set_refusals_name_what_to_change(keyed_api: Api) -> None:
    tenant = keyed_api.tenant_id
    no_secret = await smsrelay(keyed_api, "providers", "set", tenant, "msg91", "--sender-id", "X")
    assert no_secret.exit_code == 2 and "SMSRELAY_PROVIDER_AUTH_KEY" in no_secret.output
    unknown = await smsrelay(keyed_api, "providers", "set", tenant, "twilio", "--region", "us1")
    assert unknown.exit_code == 2 and "--account-sid" in unknown.output
    bad = await smsrelay(
        keyed_api, "providers", "set", tenant, "msg91", "--auth-key", AUTH_KEY,
        "--sender-id", "TOOLONG", "--dlt-entity-id", "1", "--template-id", "t1",
    )  # fmt: skip
    assert bad.exit_code == 1 and "senderId: must be exactly 6" in bad.output
    nobody = await smsrelay(keyed_api, "providers", "list", "ten_nobody")
    assert nobody.exit_code == 0 and nobody.stdout == ""
    stranger = await smsrelay(
        keyed_api, "providers", "set", "ten_nobody", "twilio", "--account-sid", ACCOUNT_SID,
        "--auth-token", AUTH_TOKEN, "--from-number", "+15005550006",
    )  # fmt: skip
    assert stranger.exit_code == 1 and "no tenant" in stranger.output
    unknown_provider = await smsrelay(keyed_api, "providers", "verify", tenant, "twillio")
    assert unknown_provider.exit_code == 1 and "msg91, twilio" in unknown_provider.output


async def test_rotate_reencrypts_everything_so_the_old_key_can_go(keyed_api: Api) -> None:
    await keyed_api.client.put(
        "/api/providers/twilio", json=twilio_body(), headers=keyed_api.auth()
    )
    await keyed_api.client.put("/api/providers/msg91", json=MSG91, headers=keyed_api.auth())
    settings = keyed_api.container.settings
    assert settings.secret_keys is not None
    old, new = settings.secret_keys.get_secret_value(), generate_key()
    before = await sealed_secrets(keyed_api)

    rotated = await smsrelay(keyed_api, "secrets", "rotate", SMSRELAY_SECRET_KEYS=f"{new},{old}")
    assert rotated.exit_code == 0, rotated.output
    assert "re-encrypted 2 stored secret(s)" in rotated.stdout

    after = await sealed_secrets(keyed_api)
    assert set(after).isdisjoint(before)
    only_new, only_old = SecretBox(new), SecretBox(old)
    plaintexts = {only_new.decrypt(token) for token in after}
    assert any(AUTH_TOKEN in text for text in plaintexts)
    assert any(AUTH_KEY in text for text in plaintexts)
    for token in after:
        try:
            only_old.decrypt(token)
        except SecretDecryptError:
            continue
        raise AssertionError("a secret is still readable with the old key only")

    keyed_api.container.provider_configs.box = only_new  # the old key dropped
    verified = await keyed_api.client.post("/api/providers/twilio/verify", headers=keyed_api.auth())
    assert verified.status_code == 200, verified.text


async def test_rotate_without_the_old_key_changes_nothing(keyed_api: Api) -> None:
    await keyed_api.client.put(
        "/api/providers/twilio", json=twilio_body(), headers=keyed_api.auth()
    )
    before = await sealed_secrets(keyed_api)
    refused = await smsrelay(keyed_api, "secrets", "rotate", SMSRELAY_SECRET_KEYS=generate_key())
    assert refused.exit_code == 1
    assert "put the old key back" in refused.output
    assert await sealed_secrets(keyed_api) == before
