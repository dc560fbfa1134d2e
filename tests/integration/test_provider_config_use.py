"""A tenant's verified account sends its messages; its webhooks are checked with its own keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select

from smsrelay.providers.twilio.signature import compute_signature
from smsrelay.services import balances
from smsrelay.services.delivery import MessageScope
from smsrelay.services.secrets import SecretBox, generate_key
from smsrelay.services.tenants import create_tenant
from smsrelay.store.consent import SuppressionRepository
from smsrelay.store.tables import messages
from tests.integration.conftest import Api, LiveApp
from tests.integration.provider_accounts import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    MSG91,
    Accounts,
    twilio_body,
)
from tests.integration.test_msg91_routing import report
from tests.providers.msg91_fake import AUTH_KEY

StartApp = Callable[..., Awaitable[LiveApp]]
US_NUMBER = "+15005550006"
INDIAN_NUMBER = "+919876543210"
STATUS_PATH = "/api/webhooks/twilio/status"
OTHER_SID = "AC" + "3c" * 16
OTHER_TOKEN = "7d" * 16


async def configure(
    app: Api | LiveApp, provider: str, body: dict[str, Any], key: str | None = None
) -> dict[str, Any]:
    """Save and verify a tenant's account; the save's answer (with any webhook token)."""
    saved = await app.client.put(f"/api/providers/{provider}", json=body, headers=app.auth(key))
    assert saved.status_code == 200, saved.text
    verified = await app.client.post(f"/api/providers/{provider}/verify", headers=app.auth(key))
    assert verified.status_code == 200, verified.text
    answer: dict[str, Any] = saved.json()
    return answer


async def config_of(app: Api | LiveApp, outbox_id: str) -> str | None:
    async with app.container.db.reading() as connection:
        query = select(messages.c.provider_config_id).where(messages.c.id == outbox_id)
        found: str | None = await connection.scalar(query)
    return found


async def test_a_verified_twilio_account_sends_the_tenants_messages(
    start_app: StartApp, accounts: Accounts
) -> None:
    app = await start_app(**accounts.settings())
    saved = await configure(app, "twilio", twilio_body())
    sent = (await app.send(to=US_NUMBER, message="From the tenant's own account")).json()
    assert sent["provider"] == "twilio"
    # Delivered through callbacks the tenant's account signed with the tenant's auth token.
    delivered = await app.wait_for_status(sent["outboxId"], "delivered")
    (accepted,) = accounts.twilio.state.accepted
    assert accepted.account_sid == ACCOUNT_SID and accepted.sid == delivered["messageId"]
    assert accepted.from_ == "+15005550006"
    assert app.simulator.state.accepted == []  # the platform's account sent nothing
    assert await config_of(app, sent["outboxId"]) == saved["configId"]


async def test_an_unverified_or_deleted_account_is_not_used(
    start_app: StartApp, accounts: Accounts
) -> None:
    app = await start_app(**accounts.settings())
    await app.client.put("/api/providers/twilio", json=twilio_body(), headers=app.auth())
    unverified = (await app.send(to=US_NUMBER, message="unverified")).json()
    assert unverified["provider"] == "simulator"
    await app.wait_for_status(unverified["outboxId"], "delivered")

    await configure(app, "twilio", twilio_body())
    await app.client.delete("/api/providers/twilio", headers=app.auth())
    deleted = (await app.send(to=US_NUMBER, message="deleted")).json()
    await app.wait_for_status(deleted["outboxId"], "delivered")
    assert accounts.twilio.state.accepted == []
    assert [m.body for m in app.simulator.state.accepted] == ["unverified", "deleted"]
    assert await config_of(app, deleted["outboxId"]) is None


async def test_another_tenant_without_an_account_uses_the_platform(
    start_app: StartApp, accounts: Accounts
) -> None:
    app = await start_app(**accounts.settings())
    await configure(app, "twilio", twilio_body())
    other = await create_tenant(app.container.db, "globex")
    as_other = replace(app, api_key=other.api_key)
    sent = await as_other.send(to=US_NUMBER, message="platform")
    entry = await as_other.wait_for_status(sent.json()["outboxId"], "delivered")
    assert entry["provider"] == "simulator" and accounts.twilio.state.accepted == []


# -- Twilio callbacks: the signing key decides whose messages may change -----------------------


async def sent_with_own_account(api: Api) -> dict[str, Any]:
    """A message of tenant "acme" sent (not yet delivered) through its own Twilio account."""
    await configure(api, "twilio", twilio_body())
    sent = (await api.send(to=US_NUMBER, message="Hello")).json()
    await api.container.dispatcher.process_all()  # type: ignore[union-attr]
    entry = (await api.client.get(f"/api/sms/outbox/{sent['outboxId']}", headers=api.auth())).json()
    assert entry["status"] == "sent", entry
    return dict(entry)


async def post_status(
    api: Api, sid: str, account: str, token: str, status: str = "delivered"
) -> httpx.Response:
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": account}
    signature = compute_signature(f"http://testserver{STATUS_PATH}", params, token)
    return await api.client.post(
        STATUS_PATH, data=params, headers={"X-Twilio-Signature": signature}
    )


async def status_of(api: Api, outbox_id: str) -> str:
    entry = (await api.client.get(f"/api/sms/outbox/{outbox_id}", headers=api.auth())).json()
    return str(entry["status"])


async def test_a_callback_signed_with_another_tenants_token_is_refused(keyed_api: Api) -> None:
    entry = await sent_with_own_account(keyed_api)
    other = await create_tenant(keyed_api.container.db, "globex")
    other_body = twilio_body(accountSid=OTHER_SID, authToken=OTHER_TOKEN)
    await keyed_api.client.put(
        "/api/providers/twilio", json=other_body, headers=keyed_api.auth(other.api_key)
    )

    forged = await post_status(keyed_api, entry["messageId"], ACCOUNT_SID, OTHER_TOKEN)
    assert forged.status_code == 403, forged.text
    platform_token = keyed_api.container.webhook_auth_tokens[0]
    unsigned = await post_status(keyed_api, entry["messageId"], ACCOUNT_SID, "not-a-token")
    assert unsigned.status_code == 403
    # Signed by the other tenant (or the platform) as itself: accepted, but not applied to a
    # message its account did not send.
    for account, token in ((OTHER_SID, OTHER_TOKEN), (ACCOUNT_SID, platform_token)):
        response = await post_status(keyed_api, entry["messageId"], account, token)
        assert response.status_code == 200, response.text
        assert await status_of(keyed_api, entry["outboxId"]) == "sent"

    genuine = await post_status(keyed_api, entry["messageId"], ACCOUNT_SID, AUTH_TOKEN)
    assert genuine.status_code == 200, genuine.text
    assert await status_of(keyed_api, entry["outboxId"]) == "delivered"


async def test_a_tenants_token_cannot_change_what_the_platforms_account_sent(
    keyed_api: Api,
) -> None:
    """A tenant chooses its config's token: a callback it signs must not cancel (and so refund)
    a message the platform's account sent for it."""
    await balances.credit(keyed_api.container.db, keyed_api.tenant_id, "1", datetime.now(UTC))
    sent = (await keyed_api.send(to=US_NUMBER, message="Hello")).json()
    await keyed_api.container.dispatcher.process_all()  # type: ignore[union-attr]
    entry = (
        await keyed_api.client.get(f"/api/sms/outbox/{sent['outboxId']}", headers=keyed_api.auth())
    ).json()
    assert entry["status"] == "sent" and entry["provider"] == "simulator", entry
    saved = await keyed_api.client.put(
        "/api/providers/twilio", json=twilio_body(), headers=keyed_api.auth()
    )
    assert saved.status_code == 200, saved.text

    forged = await post_status(
        keyed_api, entry["messageId"], ACCOUNT_SID, AUTH_TOKEN, status="canceled"
    )
    assert forged.status_code == 200, forged.text
    assert await status_of(keyed_api, entry["outboxId"]) == "sent"
    await balances.settle_finished(keyed_api.container.db, datetime.now(UTC))
    view = await balances.show(keyed_api.container.db, keyed_api.tenant_id)
    assert [m.kind for m in view.movements] == ["debit", "credit"]


def test_a_tenants_key_admits_only_its_messages_sent_through_that_providers_account() -> None:
    scope = MessageScope(tenant_ids=frozenset({"ten_a"}), provider="twilio")
    row = {"tenant_id": "ten_a", "provider": "twilio", "provider_config_id": "pcf_1"}
    assert scope.admits(row)  # type: ignore[arg-type]
    for changed in ({"provider_config_id": None}, {"provider": "msg91"}, {"tenant_id": "ten_b"}):
        assert not scope.admits(row | changed)  # type: ignore[arg-type]
    assert MessageScope(platform=True).admits(row | {"provider_config_id": None})  # type: ignore[arg-type]


async def test_an_inbound_message_signed_with_a_tenants_token_is_accepted(keyed_api: Api) -> None:
    await keyed_api.client.put(
        "/api/providers/twilio", json=twilio_body(), headers=keyed_api.auth()
    )
    params = {"MessageSid": "SM" + "9" * 32, "AccountSid": ACCOUNT_SID, "From": "+14155552671"}
    params |= {"To": US_NUMBER, "Body": "HELP"}
    url = "http://testserver/api/webhooks/twilio/inbound"
    for token, status in ((OTHER_TOKEN, 403), (AUTH_TOKEN, 200)):
        signature = compute_signature(url, params, token)
        response = await keyed_api.client.post(
            url, data=params, headers={"X-Twilio-Signature": signature}
        )
        assert response.status_code == status, response.text


async def test_a_stop_signed_with_a_tenants_token_opts_out_of_that_tenant_only(
    keyed_api: Api,
) -> None:
    """A tenant's token is the tenant's own choice: what it signs reaches no other tenant."""
    other = await create_tenant(keyed_api.container.db, "globex")
    sent = await keyed_api.client.post(
        "/api/sms/send",
        json={"to": "+14155552671", "message": "Hi from globex"},
        headers=keyed_api.auth(other.api_key),
    )
    assert sent.status_code == 202, sent.text  # globex last texted the number
    await keyed_api.client.put(
        "/api/providers/twilio", json=twilio_body(), headers=keyed_api.auth()
    )
    params = {"MessageSid": "SM" + "8" * 32, "AccountSid": ACCOUNT_SID, "From": "+14155552671"}
    params |= {"To": US_NUMBER, "Body": "STOP"}
    url = "http://testserver/api/webhooks/twilio/inbound"
    signature = compute_signature(url, params, AUTH_TOKEN)
    response = await keyed_api.client.post(
        url, data=params, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 200, response.text
    async with keyed_api.container.db.reading() as connection:
        repository = SuppressionRepository(connection)
        assert await repository.get(other.tenant_id, "+14155552671") is None
        assert await repository.get(keyed_api.tenant_id, "+14155552671") is not None


# -- MSG91: routed for the tenant, reports only through the tenant's URL token -----------------


async def test_a_tenants_msg91_account_gets_its_indian_numbers_and_reports(
    keyed_api: Api, accounts: Accounts
) -> None:
    token = (await configure(keyed_api, "msg91", MSG91))["webhookToken"]
    sent = (await keyed_api.send(to=INDIAN_NUMBER, message="OTP 4815")).json()
    assert sent["provider"] == "msg91"  # the platform has no MSG91 of its own
    await keyed_api.container.dispatcher.process_all()  # type: ignore[union-attr]
    flow = accounts.msg91.requests[-1]
    assert flow.path == "/api/v5/flow" and flow.headers["authkey"] == AUTH_KEY
    entry = (
        await keyed_api.client.get(f"/api/sms/outbox/{sent['outboxId']}", headers=keyed_api.auth())
    ).json()
    request_id = entry["messageId"]

    other = await create_tenant(keyed_api.container.db, "globex")
    other_token = (await configure(keyed_api, "msg91", MSG91, other.api_key))["webhookToken"]
    client = keyed_api.client
    assert (
        await client.post(f"/api/webhooks/msg91/{token}x", json=report(request_id))
    ).status_code == 404
    foreign = await client.post(f"/api/webhooks/msg91/{other_token}", json=report(request_id))
    assert foreign.status_code == 200
    assert await status_of(keyed_api, sent["outboxId"]) == "sent"
    own = await client.post(f"/api/webhooks/msg91/{token}", json=report(request_id))
    assert own.status_code == 200
    assert await status_of(keyed_api, sent["outboxId"]) == "delivered"


async def test_the_deployment_token_reports_on_platform_messages_only(
    start_app: StartApp, accounts: Accounts
) -> None:
    platform = {
        "msg91_auth_key": AUTH_KEY,
        "msg91_sender_id": "PLATFM",
        "msg91_dlt_entity_id": "1201159543060917386",
        "msg91_template_id": "6650b0f2d6fc0517e64d3f72",
        "msg91_webhook_token": "deployment-token-0123456789",
    }
    app = await start_app(**accounts.settings(**platform))
    as_other = replace(app, api_key=(await create_tenant(app.container.db, "globex")).api_key)
    await configure(app, "msg91", MSG91)
    own = (await app.send(to=INDIAN_NUMBER, message="tenant")).json()
    plat = (await as_other.send(to=INDIAN_NUMBER, message="platform")).json()
    own_id = (await app.wait_for_status(own["outboxId"], "sent"))["messageId"]
    plat_id = (await as_other.wait_for_status(plat["outboxId"], "sent"))["messageId"]
    for request_id in (own_id, plat_id):
        response = await app.client.post(
            "/api/webhooks/msg91/deployment-token-0123456789", json=report(request_id)
        )
        assert response.status_code == 200
    await as_other.wait_for_status(plat["outboxId"], "delivered")
    assert await config_of(app, own["outboxId"]) is not None
    mine = await app.client.get(f"/api/sms/outbox/{own['outboxId']}", headers=app.auth())
    assert mine.json()["status"] == "sent"


async def test_a_tenant_key_no_configured_key_can_read_is_refused_not_a_500(keyed_api: Api) -> None:
    entry = await sent_with_own_account(keyed_api)
    keyed_api.container.provider_configs.box = SecretBox(generate_key())  # its key was dropped
    response = await post_status(keyed_api, entry["messageId"], ACCOUNT_SID, AUTH_TOKEN)
    assert response.status_code == 403, response.text
    assert await status_of(keyed_api, entry["outboxId"]) == "sent"
