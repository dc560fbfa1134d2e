"""`/api/providers`: a tenant's own accounts saved encrypted, shown without secrets, verified."""

from __future__ import annotations

from typing import Any

import pytest

from smsrelay.services.tenants import create_key, create_tenant
from tests.integration.conftest import Api
from tests.integration.provider_accounts import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    MSG91,
    SERVICE_SID,
    Accounts,
    twilio_body,
)
from tests.integration.test_security import dump_database
from tests.providers.msg91_fake import AUTH_KEY
from tests.providers.wire import Canned

PATH = "/api/providers"


async def put(api: Api, provider: str, body: Any, key: str | None = None) -> Any:
    return await api.client.put(f"{PATH}/{provider}", json=body, headers=api.auth(key))


async def test_a_saved_twilio_config_shows_no_secret_and_is_not_verified(keyed_api: Api) -> None:
    response = await put(keyed_api, "twilio", twilio_body(messagingServiceSid=SERVICE_SID))
    assert response.status_code == 200, response.text
    saved = response.json()
    assert saved["provider"] == "twilio" and saved["verified"] is False
    assert saved["settings"] == {
        "accountSid": ACCOUNT_SID,
        "fromNumber": "+15005550006",
        "messagingServiceSid": SERVICE_SID,
    }
    assert saved["secrets"] == {"authToken": {"set": True, "last4": AUTH_TOKEN[-4:]}}
    assert saved["webhookToken"] is None and saved["version"] == 1
    listed = (await keyed_api.client.get(PATH, headers=keyed_api.auth())).json()
    assert [item["provider"] for item in listed["items"]] == ["twilio"]
    assert listed["providers"] == ["msg91", "twilio"]
    shown = await keyed_api.client.get(f"{PATH}/twilio", headers=keyed_api.auth())
    for text in (response.text, shown.text, str(listed)):
        assert AUTH_TOKEN not in text


async def test_saving_again_replaces_the_config_and_resets_verified(keyed_api: Api) -> None:
    await put(keyed_api, "twilio", twilio_body())
    verified = await keyed_api.client.post(f"{PATH}/twilio/verify", headers=keyed_api.auth())
    assert verified.status_code == 200, verified.text
    assert verified.json()["verified"] is True and verified.json()["verifiedAt"]
    again = (await put(keyed_api, "twilio", twilio_body(fromNumber="+15005550007"))).json()
    assert again["verified"] is False and again["verifiedAt"] is None
    assert again["version"] == 2 and again["settings"]["fromNumber"] == "+15005550007"
    assert again["configId"] == verified.json()["configId"]


BAD_TWILIO = [
    (twilio_body(accountSid="AC123"), "accountSid", "AC followed by 32 hex digits"),
    (twilio_body(accountSid="MG" + "1a" * 16), "accountSid", "AC followed by 32 hex"),
    (twilio_body(authToken=None), "authToken", "is required"),
    (twilio_body(authToken="has space in it"), "authToken", "without spaces"),
    (twilio_body(authToken="x" * 201), "authToken", "at most 200"),
    (twilio_body(fromNumber=None), "messagingServiceSid", "or fromNumber"),
    (twilio_body(fromNumber="5550006"), "fromNumber", "E.164"),
    (twilio_body(messagingServiceSid="MG12"), "messagingServiceSid", "MG followed by 32"),
    (twilio_body(region="us1"), "region", "not a known field"),
    ({}, "accountSid", "is required"),
]


@pytest.mark.parametrize(("body", "field", "says"), BAD_TWILIO)
async def test_every_bad_twilio_field_is_named(
    keyed_api: Api, body: dict[str, Any], field: str, says: str
) -> None:
    response = await put(keyed_api, "twilio", body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["details"]["field"] == field
    assert says in error["message"]
    assert (await keyed_api.client.get(PATH, headers=keyed_api.auth())).json()["items"] == []


BAD_MSG91 = [
    ({**MSG91, "senderId": "SMSRELAY"}, "senderId", "exactly 6 letters or digits"),
    ({**MSG91, "senderId": "SMS-RL"}, "senderId", "exactly 6 letters or digits"),
    ({**MSG91, "dltEntityId": "12011A"}, "dltEntityId", "numeric PE ID"),
    ({**MSG91, "templateId": "a/b"}, "templateId", "MSG91's id"),
    ({k: v for k, v in MSG91.items() if k != "authKey"}, "authKey", "is required"),
]


@pytest.mark.parametrize(("body", "field", "says"), BAD_MSG91)
async def test_every_bad_msg91_field_is_named(
    keyed_api: Api, body: dict[str, Any], field: str, says: str
) -> None:
    response = await put(keyed_api, "msg91", body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["field"] == field
    assert says in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"accountSid": 12}, 422),  # not a string
        ([ACCOUNT_SID], 422),  # not an object
        ("text", 422),
    ],
)
async def test_bodies_of_the_wrong_shape_are_refused(
    keyed_api: Api, body: Any, status: int
) -> None:
    response = await put(keyed_api, "twilio", body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"\\ud800": "x"}',  # an unpaired surrogate in a name
        b'{"authToken": "abc\\udfffdefghijk"}',  # ... or in a value
        b'{"authToken": "abc\\u0000def"}',  # NUL
        b'{"accountSid": ""}',
    ],
)
async def test_text_no_database_can_store_is_422(keyed_api: Api, raw: bytes) -> None:
    headers = keyed_api.auth() | {"Content-Type": "application/json"}
    response = await keyed_api.client.put(f"{PATH}/twilio", content=raw, headers=headers)
    assert response.status_code == 422, response.text


async def test_a_body_of_many_unknown_fields_lists_a_few(keyed_api: Api) -> None:
    response = await put(keyed_api, "twilio", {f"field{n}": "x" for n in range(500)})
    assert response.status_code == 422
    assert len(response.json()["error"]["details"]["problems"]) == 20


async def test_malformed_json_and_other_content_types_are_refused(keyed_api: Api) -> None:
    headers = keyed_api.auth() | {"Content-Type": "application/json"}
    broken = await keyed_api.client.put(f"{PATH}/twilio", content=b"{", headers=headers)
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "malformed_json"
    form = await keyed_api.client.put(
        f"{PATH}/twilio", data=twilio_body(), headers=keyed_api.auth()
    )
    assert form.status_code == 415


@pytest.mark.parametrize("method", ["get", "put", "delete", "post"])
async def test_an_unknown_provider_is_404_naming_the_known_ones(
    keyed_api: Api, method: str
) -> None:
    path = f"{PATH}/twillio" + ("/verify" if method == "post" else "")
    response = await keyed_api.client.request(
        method.upper(), path, json=twilio_body(), headers=keyed_api.auth()
    )
    assert response.status_code == 404, response.text
    assert "msg91, twilio" in response.json()["error"]["message"]


async def test_a_missing_config_is_404_saying_how_to_create_it(keyed_api: Api) -> None:
    for method, path in (("GET", "/twilio"), ("DELETE", "/msg91"), ("POST", "/twilio/verify")):
        response = await keyed_api.client.request(method, PATH + path, headers=keyed_api.auth())
        assert response.status_code == 404, response.text
        assert "PUT /api/providers/" in response.json()["error"]["message"]


async def test_without_secret_keys_saving_is_409_naming_the_variable(keyed_api: Api) -> None:
    keyed_api.container.provider_configs.box = None
    response = await put(keyed_api, "twilio", twilio_body())
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "secret_keys_not_configured"
    assert "SMSRELAY_SECRET_KEYS" in error["message"]
    assert "smsrelay secrets generate-key" in error["message"]


async def test_the_admin_scope_is_needed(keyed_api: Api) -> None:
    reader = await create_key(
        keyed_api.container.db, keyed_api.tenant_id, name="ro", scopes=frozenset({"send", "read"})
    )
    for method in ("GET", "PUT", "DELETE"):
        response = await keyed_api.client.request(
            method, f"{PATH}/twilio", json=twilio_body(), headers=keyed_api.auth(reader.api_key)
        )
        assert response.status_code == 403, (method, response.text)


async def test_deleting_removes_the_config(keyed_api: Api) -> None:
    await put(keyed_api, "twilio", twilio_body())
    deleted = await keyed_api.client.delete(f"{PATH}/twilio", headers=keyed_api.auth())
    assert deleted.status_code == 204
    gone = await keyed_api.client.get(f"{PATH}/twilio", headers=keyed_api.auth())
    assert gone.status_code == 404


# -- verify, against the tenant's simulator and fake MSG91 on the wire -------------------------


async def test_verify_with_good_twilio_credentials(keyed_api: Api, accounts: Accounts) -> None:
    await put(keyed_api, "twilio", twilio_body())
    response = await keyed_api.client.post(f"{PATH}/twilio/verify", headers=keyed_api.auth())
    assert response.status_code == 200, response.text
    assert response.json()["verified"] is True


async def test_verify_with_a_wrong_twilio_token_is_422(keyed_api: Api) -> None:
    await put(keyed_api, "twilio", twilio_body(authToken="0" * 32))
    response = await keyed_api.client.post(f"{PATH}/twilio/verify", headers=keyed_api.auth())
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "credentials_rejected"
    assert "accountSid" in error["message"] and "authToken" in error["message"]
    assert "0" * 32 not in response.text
    shown = await keyed_api.client.get(f"{PATH}/twilio", headers=keyed_api.auth())
    assert shown.json()["verified"] is False


async def test_verify_when_the_provider_is_unreachable_is_424(
    keyed_api: Api, accounts: Accounts
) -> None:
    await put(keyed_api, "twilio", twilio_body())
    await accounts.twilio.stop()
    response = await keyed_api.client.post(f"{PATH}/twilio/verify", headers=keyed_api.auth())
    assert response.status_code == 424, response.text
    assert response.json()["error"]["code"] == "provider_unreachable"


async def test_verify_msg91_on_the_wire(keyed_api: Api, accounts: Accounts) -> None:
    saved = (await put(keyed_api, "msg91", MSG91)).json()
    assert saved["secrets"]["authKey"]["set"] is True
    good = await keyed_api.client.post(f"{PATH}/msg91/verify", headers=keyed_api.auth())
    assert good.status_code == 200, good.text
    assert accounts.msg91.requests[-1].query["authkey"] == [AUTH_KEY]

    await put(keyed_api, "msg91", {**MSG91, "authKey": "wrong-key-123"})
    bad = await keyed_api.client.post(f"{PATH}/msg91/verify", headers=keyed_api.auth())
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "credentials_rejected"

    accounts.msg91.answers.append(Canned(status=503, body="busy"))
    down = await keyed_api.client.post(f"{PATH}/msg91/verify", headers=keyed_api.auth())
    assert down.status_code == 424, down.text


async def test_an_msg91_config_gets_its_webhook_token_once(keyed_api: Api) -> None:
    first = (await put(keyed_api, "msg91", MSG91)).json()
    token = first["webhookToken"]
    assert token and len(token) >= 40
    assert first["webhookUrl"] == f"http://testserver/api/webhooks/msg91/{token}"
    again = (await put(keyed_api, "msg91", MSG91)).json()
    assert again["webhookToken"] is None  # kept, and never shown again
    shown = await keyed_api.client.get(f"{PATH}/msg91", headers=keyed_api.auth())
    assert token not in shown.text
    assert token not in await dump_database(keyed_api.container.db)


# -- nothing secret at rest, nothing across tenants --------------------------------------------


async def test_a_database_dump_holds_no_provider_secret(keyed_api: Api) -> None:
    await put(keyed_api, "twilio", twilio_body())
    await put(keyed_api, "msg91", MSG91)
    dump = await dump_database(keyed_api.container.db)
    assert ACCOUNT_SID in dump and "tenant_provider_configs" in dump
    for secret in (AUTH_TOKEN, AUTH_KEY):
        assert secret not in dump


async def test_another_tenant_sees_none_of_it(keyed_api: Api) -> None:
    await put(keyed_api, "twilio", twilio_body())
    other = (await create_tenant(keyed_api.container.db, "intruder")).api_key
    listed = await keyed_api.client.get(PATH, headers=keyed_api.auth(other))
    assert listed.json()["items"] == []
    for method, path in (("GET", "/twilio"), ("POST", "/twilio/verify"), ("DELETE", "/twilio")):
        response = await keyed_api.client.request(
            method, PATH + path, headers=keyed_api.auth(other)
        )
        assert response.status_code == 404, (method, path, response.text)
        assert ACCOUNT_SID not in response.text
    own = (await put(keyed_api, "twilio", twilio_body(fromNumber="+15005550007"), other)).json()
    mine = (await keyed_api.client.get(f"{PATH}/twilio", headers=keyed_api.auth())).json()
    assert own["configId"] != mine["configId"]
    assert mine["settings"]["fromNumber"] == "+15005550006" and mine["version"] == 1
