"""POST /api/sms/bulk: screening, durable acceptance, expansion, progress and cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from smsrelay.bulk_upload import Options, chunk_body, read_chunks
from smsrelay.dispatch.bulk_expander import BulkExpander
from smsrelay.services.consent import ConsentInput, record_consents, utcnow
from smsrelay.store.tables import message_events, messages
from tests.integration.conftest import Api

OK = "+15005550006"  # Twilio's test number: accepted whatever the metadata says
MOBILES = [f"+1415555{n:04d}" for n in range(100, 140)]


async def bulk(api: Api, key: str | None = None, **body: Any) -> httpx.Response:
    headers = api.auth() | ({"Idempotency-Key": key} if key else {})
    return await api.client.post("/api/sms/bulk", json=body, headers=headers)


def expander(api: Api) -> BulkExpander:
    assert api.container.bulk_expander is not None
    return api.container.bulk_expander


async def expand_all(api: Api) -> int:
    total = 0
    while written := await expander(api).run_once():
        total += written
    return total


async def outbox_rows(api: Api, bulk_id: str) -> list[dict[str, Any]]:
    async with api.container.db.reading() as connection:
        query = select(messages).where(messages.c.bulk_id == bulk_id).order_by(messages.c.id)
        return [dict(row) for row in (await connection.execute(query)).mappings()]


async def test_accepts_reports_rejections_and_writes_one_message_per_recipient(api: Api) -> None:
    recipients = [*MOBILES[:3], "+442079460000", "not a number", MOBILES[0], "+19005550123"]
    response = await bulk(api, recipients=recipients, message="Sale starts now")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["acceptedCount"] == 3 and body["duplicateCount"] == 1
    assert body["rejectedCount"] == 4 and body["status"] == "accepting"
    reasons = {(r["index"], r["reason"]) for r in body["rejected"]}
    expected = {(3, "landline"), (4, "invalid_number"), (5, "duplicate"), (6, "not_sms_capable")}
    assert reasons == expected
    assert all(r["message"] for r in body["rejected"])

    assert await expand_all(api) == 3
    rows = await outbox_rows(api, body["bulkId"])
    assert sorted(r["recipient"] for r in rows) == sorted(MOBILES[:3])
    assert {r["status"] for r in rows} == {"pending"} and {r["body"] for r in rows} == {
        "Sale starts now"
    }
    shown = (await api.client.get(f"/api/sms/bulk/{body['bulkId']}", headers=api.auth())).json()
    assert shown["status"] == "ready" and shown["expandedCount"] == 3
    assert shown["counts"]["pending"] == 3 and shown["totalCost"] == "0"
    assert shown["estimatedCost"] != "0" and shown["currency"] == "USD"


async def test_per_recipient_variables_defaults_and_missing_ones(api: Api) -> None:
    response = await bulk(
        api,
        recipients=[
            {"to": MOBILES[0], "variables": {"firstName": "Ada"}},
            {"to": MOBILES[1]},
            {"to": MOBILES[2], "variables": {"firstName": "Bo", "code": "X9"}},
            MOBILES[3],
        ],
        variables={"code": "A1"},
        message="Hi {{firstName}}, your code is {{ code }}",
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["acceptedCount"] == 2
    missing = [r for r in body["rejected"] if r["reason"] == "missing_variable"]
    assert [r["index"] for r in missing] == [1, 3]
    assert "{{firstName}}" in missing[0]["message"]
    await expand_all(api)
    texts = {r["recipient"]: r["body"] for r in await outbox_rows(api, body["bulkId"])}
    assert texts == {
        MOBILES[0]: "Hi Ada, your code is A1",
        MOBILES[2]: "Hi Bo, your code is X9",
    }


async def test_a_blank_value_counts_as_no_value(api: Api) -> None:
    recipients = [
        {"to": MOBILES[0], "variables": {"firstName": ""}},
        {"to": MOBILES[1], "variables": {"firstName": "  "}},
        {"to": MOBILES[2], "variables": {"firstName": "Ada"}},
    ]
    with_default = await bulk(
        api, recipients=recipients, message="Hi {{firstName}}", variables={"firstName": "there"}
    )
    assert with_default.status_code == 202 and with_default.json()["acceptedCount"] == 3
    await expand_all(api)
    rows = await outbox_rows(api, with_default.json()["bulkId"])
    assert sorted(r["body"] for r in rows) == ["Hi Ada", "Hi there", "Hi there"]

    without = await bulk(api, recipients=recipients, message="Hello {{firstName}}")
    assert without.status_code == 202 and without.json()["acceptedCount"] == 1
    rejected = without.json()["rejected"]
    assert [(r["index"], r["reason"]) for r in rejected] == [
        (0, "missing_variable"),
        (1, "missing_variable"),
    ]
    assert "blank" in rejected[0]["message"]


@pytest.mark.parametrize("written", ["{{First Name}}", "{{first-name}}", "{{1st}}", "{{}}"])
async def test_a_placeholder_no_value_could_fill_is_422_not_sent_as_typed(
    api: Api, written: str
) -> None:
    recipient = {"to": MOBILES[0], "variables": {"firstName": "Ada"}}
    response = await bulk(api, recipients=[recipient], message=f"Hi {written}, {{{{firstName}}}}")
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert message.startswith(f"message: {written} is not a placeholder smsrelay fills")
    fine = await bulk(api, recipients=[recipient], message="{{ firstName }}: 50% off {today}")
    assert fine.status_code == 202, fine.text


async def test_a_rendered_text_over_the_limit_rejects_that_recipient_only(api: Api) -> None:
    response = await bulk(
        api,
        recipients=[
            {"to": MOBILES[0], "variables": {"note": "short"}},
            {"to": MOBILES[1], "variables": {"note": "x" * 1600}},
        ],
        message="Note: {{note}}",
    )
    assert response.status_code == 202
    (rejected,) = response.json()["rejected"]
    assert rejected["index"] == 1 and rejected["reason"] == "too_long"


async def test_an_empty_or_overlong_number_rejects_that_recipient_only(api: Api) -> None:
    response = await bulk(
        api,
        recipients=[MOBILES[0], "", {"to": "  "}, "1" * 300, {"to": MOBILES[1]}],
        message="hi",
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["acceptedCount"] == 2
    assert [(r["index"], r["reason"]) for r in body["rejected"]] == [
        (1, "invalid_number"),
        (2, "invalid_number"),
        (3, "invalid_number"),
    ]


async def test_a_recipient_of_the_wrong_shape_is_422_saying_what_a_recipient_is(
    api: Api,
) -> None:
    response = await bulk(api, recipients=[MOBILES[0], 12345, {"to": "1" * 1001}], message="hi")
    assert response.status_code == 422
    error = response.json()["error"]
    assert [p["field"] for p in error["details"]] == ["recipients.1", "recipients.2.recipient.to"]
    assert "a phone number string or a {to, variables} object" in error["message"]
    assert "function-after" not in error["message"] and "constrained-str" not in error["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "hi"}, "recipients"),
        ({"recipients": [], "message": "hi"}, "recipients"),
        ({"recipients": [OK], "listId": "lst_x", "message": "hi"}, "recipients"),
        ({"recipients": [OK], "message": "   "}, "message"),
        ({"recipients": [OK], "message": "x" * 1601}, "message"),
        ({"recipients": [OK], "message": "hi", "category": "spam"}, "category"),
        ({"recipients": [OK], "message": "hi", "timeZone": "Mars/Olympus"}, "timeZone"),
        (
            {"recipients": [OK], "message": "hi", "scheduledAt": "2026-05-01T09:00:00"},
            "scheduledAt",
        ),
        ({"recipients": [OK], "message": "hi", "variables": {"1bad": "x"}}, "variables"),
        ({"recipients": [{"to": OK, "extra": 1}], "message": "hi"}, "recipients"),
        ({"recipients": [OK], "message": "hi", "validitySeconds": 0}, "validitySeconds"),
        ({"recipients": ["nope", "+1"], "message": "hi"}, "recipients"),
    ],
)
async def test_a_body_wrong_as_a_whole_is_422_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    response = await bulk(api, **body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert field in error["message"] or field in str(error["details"]), error


async def test_over_100000_recipients_is_422(api: Api) -> None:
    response = await bulk(api, recipients=[OK] * 100_001, message="hi")
    assert response.status_code == 422
    assert "recipients" in response.json()["error"]["message"]


async def test_unknown_list_is_404(api: Api) -> None:
    response = await bulk(api, listId="lst_nope", message="hi")
    assert response.status_code == 404


async def test_consent_is_decided_per_recipient_in_batches(api: Api) -> None:
    db = api.container.db
    opt_in = ConsentInput(MOBILES[0], "opted_in", "https://example.test/form", "web_form", "Yes")
    await record_consents(db, api.tenant_id, "test", [opt_in], utcnow())
    await api.client.post(
        "/api/suppressions", json={"phone": MOBILES[1], "reason": "manual"}, headers=api.auth()
    )
    response = await bulk(
        api, recipients=MOBILES[:3], message="Marketing!", category="marketing", tags=["promo"]
    )
    assert response.status_code == 202
    await expand_all(api)
    rows = {r["recipient"]: r for r in await outbox_rows(api, response.json()["bulkId"])}
    assert rows[MOBILES[1]]["status"] == "suppressed" and rows[MOBILES[1]]["total_cost"] == "0"
    assert rows[MOBILES[2]]["error_code"] == "no_marketing_consent", {
        k: v for k, v in rows[MOBILES[2]].items() if "error" in k or k == "status"
    }
    assert rows[MOBILES[0]]["status"] == "pending" and rows[MOBILES[0]]["tags"] == ["promo"]


async def test_idempotency_key_replays_refuses_another_body_and_creates_nothing(api: Api) -> None:
    first = await bulk(api, "bulk-1", recipients=MOBILES[:2], message="once")
    again = await bulk(api, "bulk-1", recipients=MOBILES[:2], message="once")
    other = await bulk(api, "bulk-1", recipients=MOBILES[:3], message="once")
    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert await expand_all(api) == 2


async def test_cancel_stops_what_is_not_yet_written_or_sent(api: Api) -> None:
    expander(api).config = type(expander(api).config)(chunk_size=10)
    response = await bulk(api, recipients=MOBILES[:25], message="Stop me")
    bulk_id = response.json()["bulkId"]
    assert await expander(api).run_once(max_chunks=1) == 10
    canceled = await api.client.post(f"/api/sms/bulk/{bulk_id}/cancel", headers=api.auth())
    assert canceled.status_code == 200, canceled.text
    view = canceled.json()
    assert view["status"] == "canceled" and view["canceledCount"] == 10
    assert view["counts"]["canceled"] == 10 and view["counts"]["pending"] == 0
    assert await expand_all(api) == 0  # the 15 not yet written never become messages
    assert len(await outbox_rows(api, bulk_id)) == 10
    again = await api.client.post(f"/api/sms/bulk/{bulk_id}/cancel", headers=api.auth())
    assert again.status_code == 200 and again.json()["canceledCount"] == 0
    async with api.container.db.reading() as connection:
        kinds = await connection.scalar(
            select(func.count()).where(message_events.c.kind == "canceled")
        )
    assert kinds == 10


async def test_cancel_with_nothing_left_is_409(api: Api) -> None:
    response = await bulk(api, recipients=MOBILES[:2], message="Gone")
    bulk_id = response.json()["bulkId"]
    await expand_all(api)
    await api.client.post(f"/api/sms/bulk/{bulk_id}/cancel", headers=api.auth())
    response = await bulk(api, recipients=MOBILES[2:4], message="Sent")
    bulk_id = response.json()["bulkId"]
    await expand_all(api)
    async with api.container.db.transaction() as connection:
        await connection.execute(
            messages.update().where(messages.c.bulk_id == bulk_id).values(status="delivered")
        )
    refused = await api.client.post(f"/api/sms/bulk/{bulk_id}/cancel", headers=api.auth())
    assert refused.status_code == 409
    assert "nothing left to cancel" in refused.json()["error"]["message"]


async def test_progress_counts_and_cost_so_far(api: Api) -> None:
    response = await bulk(api, recipients=MOBILES[:4], message="Count me")
    bulk_id = response.json()["bulkId"]
    await expand_all(api)
    rows = await outbox_rows(api, bulk_id)
    async with api.container.db.transaction() as connection:
        for row, status in zip(rows, ("delivered", "sent", "failed"), strict=False):
            await connection.execute(
                messages.update().where(messages.c.id == row["id"]).values(status=status)
            )
    view = (await api.client.get(f"/api/sms/bulk/{bulk_id}", headers=api.auth())).json()
    assert {k: v for k, v in view["counts"].items() if v} == {
        "delivered": 1,
        "sent": 1,
        "failed": 1,
        "pending": 1,
    }
    unit = rows[0]["total_cost"]
    from decimal import Decimal

    assert Decimal(view["totalCost"]) == 2 * Decimal(unit)
    assert Decimal(view["estimatedCost"]) == 3 * Decimal(unit)


async def test_scopes(api: Api) -> None:
    from smsrelay.services.tenants import create_key

    reader = await create_key(api.container.db, api.tenant_id, name="r", scopes=frozenset({"read"}))
    response = await api.client.post(
        "/api/sms/bulk", json={"recipients": [OK], "message": "x"}, headers=api.auth(reader.api_key)
    )
    assert response.status_code == 403


async def test_a_key_still_in_flight_is_409_and_creates_nothing(api: Api) -> None:
    from datetime import timedelta

    from smsrelay.api.bulk_schemas import BulkSendRequest
    from smsrelay.services.idempotency import fingerprint
    from smsrelay.store.tables import bulks, idempotency_keys

    body = {"recipients": MOBILES[:2], "message": "busy"}
    now = utcnow()
    async with api.container.db.transaction() as connection:
        await connection.execute(
            idempotency_keys.insert().values(
                tenant_id=api.tenant_id,
                key="busy-1",
                request_hash=fingerprint(
                    BulkSendRequest.model_validate(body).model_dump(mode="json")
                ),
                state="in_flight",
                created_at=now,
                expires_at=now + timedelta(hours=24),
            )
        )
    response = await bulk(api, "busy-1", **body)
    assert response.status_code == 409, response.text
    async with api.container.db.reading() as connection:
        assert await connection.scalar(select(func.count()).select_from(bulks)) == 0


async def test_each_chunk_is_debited_from_a_metered_balance(api: Api) -> None:
    from decimal import Decimal

    from smsrelay.services import balances

    await balances.credit(api.container.db, api.tenant_id, "10", utcnow())
    response = await bulk(api, recipients=MOBILES[:3], message="Paid for")
    await expand_all(api)
    rows = await outbox_rows(api, response.json()["bulkId"])
    view = await balances.show(api.container.db, api.tenant_id)
    spent = sum(Decimal(r["total_cost"]) for r in rows)
    assert spent > 0 and Decimal(view.balance or "0") == Decimal("10") - spent


async def test_sender_rules_are_applied_per_recipient_country(api: Api) -> None:
    response = await bulk(
        api, recipients=[MOBILES[0], "+447911123456"], message="From the shop", senderId="MyShop"
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["acceptedCount"] == 1
    (refused,) = body["rejected"]
    assert refused["index"] == 0 and refused["reason"] == "sender_not_allowed"
    assert "United States" in refused["message"]


async def test_a_cli_chunk_sends_only_the_columns_the_message_uses(
    api: Api, tmp_path: Path
) -> None:
    """Columns the API cannot take as variables (a space in the name, a long note) are fine
    in `smsrelay bulk send`'s CSV as long as the message does not use them."""
    csv_path = tmp_path / "people.csv"
    note = "n" * 2000
    csv_path.write_text(
        f"phone,First Name,firstName,note\n{MOBILES[0]},Ada,Ada,{note}\n{MOBILES[1]},Bo,Bo,x\n"
    )
    options = Options(message="Hi {{firstName}}")
    (chunk,) = read_chunks(csv_path, 10)
    response = await api.client.post(
        "/api/sms/bulk", json=chunk_body(options, chunk), headers=api.auth()
    )
    assert response.status_code == 202, response.text
    assert response.json()["acceptedCount"] == 2
    await expand_all(api)
    rows = await outbox_rows(api, response.json()["bulkId"])
    assert sorted(r["body"] for r in rows) == ["Hi Ada", "Hi Bo"]


def test_the_cli_sends_a_number_written_two_ways_once(tmp_path: Path) -> None:
    """The server drops repeats within a chunk; across chunks only the CLI can."""
    csv_path = tmp_path / "people.csv"
    csv_path.write_text(f"phone\n{MOBILES[0]}\n{MOBILES[1]}\n+1 (415) 555-0100\n")
    chunks = list(read_chunks(csv_path, 2))
    assert [[r["to"] for r in chunk] for chunk in chunks] == [MOBILES[:2]]


async def test_a_recipient_the_balance_cannot_pay_in_its_currency_fails_alone(api: Api) -> None:
    """A single send priced in another currency than the balance is a 422; in a bulk that
    recipient fails (cost 0) and the others go, instead of the bulk pausing for ever."""
    from smsrelay.services import balances

    await balances.credit(api.container.db, api.tenant_id, "10", utcnow())
    price = {"perSegment": "0.04", "currency": "EUR", "source": "deal"}
    put = await api.client.put("/api/prices/simulator/FR", json=price, headers=api.auth())
    assert put.status_code == 200, put.text
    response = await bulk(api, recipients=[MOBILES[0], "+33612345678"], message="Hello")
    assert response.status_code == 202, response.text
    assert await expand_all(api) == 2
    rows = {r["recipient"]: r for r in await outbox_rows(api, response.json()["bulkId"])}
    assert rows[MOBILES[0]]["status"] == "pending"
    refused = rows["+33612345678"]
    assert refused["status"] == "failed" and refused["error_code"] == "currency_mismatch"
    assert refused["total_cost"] == "0"
    view = await balances.show(api.container.db, api.tenant_id)
    assert [m.kind for m in view.movements] == ["debit", "credit"]
