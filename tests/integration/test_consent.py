"""The consent ledger, suppressions, settings, the CLI, and enforcement before each send."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from smsrelay.cli_consent import consents_app
from smsrelay.domain.status import Status
from smsrelay.providers.base import Outcome, ProviderError, SendResult
from smsrelay.services.consent import (
    ConsentInput,
    enforce_at_submit,
    record_consents,
    suppress,
    verdict_columns,
    verdict_event,
)
from smsrelay.services.errors import InvalidRequest
from smsrelay.services.tenants import create_tenant
from smsrelay.store.consent import ConsentLedger
from smsrelay.store.database import Database
from smsrelay.store.outbox import OutboxRepository
from smsrelay.store.tables import consent_records
from tests.integration.conftest import Api
from tests.integration.world import Clock, World

PHONE = "+12125550100"  # New York
CONSENT: dict[str, Any] = {
    "phone": PHONE,
    "status": "opted_in",
    "category": "marketing",
    "source": "https://acme.example/signup",
    "method": "web_form",
    "consentText": "Yes, text me offers from Acme. Up to 4 msgs/month. Reply STOP to end.",
    "ip": "203.0.113.7",
    "userAgent": "Mozilla/5.0",
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- the HTTP API ------------------------------------------------------------------------------


async def test_a_consent_is_recorded_with_its_evidence(api: Api) -> None:
    response = await api.client.post("/api/consents", json=CONSENT, headers=api.auth())
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["consentId"].startswith("cns_")
    assert record["consentText"] == CONSENT["consentText"]
    assert record["ip"] == "203.0.113.7" and record["userAgent"] == "Mozilla/5.0"
    assert record["occurredAt"] == record["recordedAt"]
    history = await api.client.get("/api/consents?phone=%2B1 212 555 0100", headers=api.auth())
    body = history.json()
    assert body["phone"] == PHONE and body["marketingConsent"] == "opted_in"
    assert body["suppression"] is None
    assert [r["consentId"] for r in body["items"]] == [record["consentId"]]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"phone": "12"}, "phone"),
        ({"phone": "+44 20 7946 0000"}, "phone"),  # a landline cannot receive SMS
        ({"status": "maybe"}, "status"),
        ({"method": "telepathy"}, "method"),
        ({"category": "promotional"}, "category"),
        ({"consentText": ""}, "consentText"),
        ({"source": ""}, "source"),
        ({"ip": "not-an-ip"}, "ip"),
        ({"occurredAt": "2026-01-01T09:00:00"}, "occurredAt"),
        ({"occurredAt": "2999-01-01T09:00:00Z"}, "occurredAt"),
        ({"surprise": True}, "surprise"),
        ({"consentText": None}, "consentText"),
    ],
)
async def test_bad_consents_are_refused_naming_the_field(
    api: Api, change: dict[str, Any], field: str
) -> None:
    response = await api.client.post("/api/consents", json=CONSENT | change, headers=api.auth())
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and field in error["message"]
    history = await api.client.get("/api/consents", params={"phone": PHONE}, headers=api.auth())
    assert history.json()["items"] == []


async def test_other_mistakes_are_4xx_json(api: Api) -> None:
    missing = await api.client.get("/api/consents", headers=api.auth())
    assert missing.status_code == 422 and "phone" in missing.json()["error"]["message"]
    form = await api.client.post("/api/consents", data={"phone": PHONE}, headers=api.auth())
    assert form.status_code == 415
    anonymous = await api.client.post("/api/consents", json=CONSENT)
    assert anonymous.status_code == 401
    cursor = await api.client.get("/api/suppressions?cursor=nonsense", headers=api.auth())
    assert cursor.status_code == 422 and "cursor" in cursor.json()["error"]["message"]
    for response in (missing, form, anonymous, cursor):
        assert set(response.json()["error"]) == {"code", "message", "details"}


async def test_opting_out_of_every_category_also_suppresses(api: Api) -> None:
    opt_out = CONSENT | {"status": "opted_out", "category": None, "method": "verbal"}
    response = await api.client.post("/api/consents", json=opt_out, headers=api.auth())
    assert response.status_code == 201
    history = (
        await api.client.get("/api/consents", params={"phone": PHONE}, headers=api.auth())
    ).json()
    assert history["suppression"]["reason"] == "manual"
    assert history["marketingConsent"] == "opted_out"


async def test_the_ledger_is_append_only(api: Api) -> None:
    await api.client.post("/api/consents", json=CONSENT, headers=api.auth())
    writers = [n for n in dir(ConsentLedger) if n.startswith(("update", "delete", "remove"))]
    assert writers == []
    db = api.container.db
    statements = [
        update(consent_records).values(status="opted_out"),
        delete(consent_records),
        text("UPDATE consent_records SET consent_text = 'rewritten'"),
    ]
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.transaction() as connection:
                await connection.execute(statement)
    history = (
        await api.client.get("/api/consents", params={"phone": PHONE}, headers=api.auth())
    ).json()
    (record,) = history["items"]
    assert record["status"] == "opted_in" and record["consentText"] == CONSENT["consentText"]


async def test_suppressions_are_listed_added_and_lifted_with_ledger_records(api: Api) -> None:
    add = {"phone": PHONE, "reason": "manual", "note": "asked by phone"}
    first = await api.client.post("/api/suppressions", json=add, headers=api.auth())
    again = await api.client.post("/api/suppressions", json=add, headers=api.auth())
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["reason"] == "manual" and first.json()["note"] == "asked by phone"
    for other in ("+14155552671", "+14155552672"):
        body = {"phone": other, "reason": "import"}
        await api.client.post("/api/suppressions", json=body, headers=api.auth())
    page = (await api.client.get("/api/suppressions?limit=2", headers=api.auth())).json()
    rest = await api.client.get(
        f"/api/suppressions?limit=2&cursor={page['nextCursor']}", headers=api.auth()
    )
    phones = [i["phone"] for i in page["items"] + rest.json()["items"]]
    assert sorted(phones) == sorted([PHONE, "+14155552671", "+14155552672"])
    assert rest.json()["nextCursor"] is None
    lifted = await api.client.delete(f"/api/suppressions/{PHONE}", headers=api.auth())
    assert lifted.status_code == 204
    gone = await api.client.delete(f"/api/suppressions/{PHONE}", headers=api.auth())
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    history = (
        await api.client.get("/api/consents", params={"phone": PHONE}, headers=api.auth())
    ).json()
    assert [r["status"] for r in history["items"]] == ["opted_out", "suppression_lifted"]
    assert history["items"][0]["evidence"] == {"suppressionReason": "manual"}
    bad = await api.client.post(
        "/api/suppressions", json={"phone": PHONE, "reason": "whim"}, headers=api.auth()
    )
    assert bad.status_code == 422 and "reason" in bad.json()["error"]["message"]


async def test_tenants_see_only_their_own_consents_and_suppressions(api: Api) -> None:
    other = await create_tenant(api.container.db, "beta")
    await api.client.post("/api/consents", json=CONSENT, headers=api.auth())
    await api.client.post("/api/suppressions", json={"phone": PHONE}, headers=api.auth())
    theirs = await api.client.get(
        "/api/consents", params={"phone": PHONE}, headers=api.auth(other.api_key)
    )
    assert theirs.json()["items"] == [] and theirs.json()["suppression"] is None
    listed = await api.client.get("/api/suppressions", headers=api.auth(other.api_key))
    assert listed.json()["items"] == []
    lift = await api.client.delete(f"/api/suppressions/{PHONE}", headers=api.auth(other.api_key))
    assert lift.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quietHoursStart": "09:00"}, "quietHoursEnd"),
        ({"quietHoursStart": "9am", "quietHoursEnd": "17:00"}, "quietHoursStart"),
        ({"quietHoursStart": "18:00", "quietHoursEnd": "09:00"}, "quietHoursStart"),
        ({"optOutReply": "x" * 1601}, "optOutReply"),
    ],
)
async def test_bad_settings_are_refused_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    response = await api.client.put("/api/consent-settings", json=body, headers=api.auth())
    assert response.status_code == 422 and field in response.json()["error"]["message"]


async def test_settings_default_and_change(api: Api) -> None:
    shown = (await api.client.get("/api/consent-settings", headers=api.auth())).json()
    assert (shown["quietHoursStart"], shown["quietHoursEnd"]) == ("08:00", "21:00")
    hours = {"quietHoursStart": "10:00", "quietHoursEnd": "24:00"}
    changed = await api.client.put("/api/consent-settings", json=hours, headers=api.auth())
    assert changed.status_code == 200
    assert (changed.json()["quietHoursStart"], changed.json()["quietHoursEnd"]) == (
        "10:00",
        "24:00",
    )


# --- enforcement at submit and at dispatch -----------------------------------------------------


class ConsentWorld(World):
    """The dispatcher's world, where the number can also be opted in as a web form would."""

    async def opt_in(self, status: str = "opted_in", category: str | None = "marketing") -> None:
        entry = ConsentInput(
            phone=self.phone,
            status=status,
            category=category,
            source="https://acme.example/signup",
            method="web_form",
            consent_text="Yes, text me offers",
        )
        await record_consents(self.db, self.principal.tenant_id, None, [entry], self.clock())


@pytest.fixture
async def world(db: Database) -> ConsentWorld:
    return await ConsentWorld.create(db, Clock(utc(2026, 7, 1, 16)), phone=PHONE)  # NY noon


async def test_a_suppression_after_submit_stops_the_send_at_dispatch(world: ConsentWorld) -> None:
    outbox_id = await world.submit()
    await suppress(world.db, world.principal.tenant_id, PHONE, "manual", None, world.clock())
    await world.dispatcher().process_all()
    row = await world.row(outbox_id)
    assert row["status"] == "suppressed" and row["total_cost"] == "0"
    assert row["error_code"] == "opted_out" and "opted out" in row["error_message"]
    assert "consent_blocked" in await world.kinds(outbox_id)
    assert world.provider.requests == []


async def test_marketing_needs_an_opt_in(world: ConsentWorld) -> None:
    refused = await world.submit(category="marketing")
    await world.dispatcher().process_all()
    row = await world.row(refused)
    assert row["status"] == "suppressed" and row["error_code"] == "no_marketing_consent"
    await world.opt_in()
    allowed = await world.submit(category="marketing")
    await world.dispatcher().process_all()
    assert (await world.row(allowed))["status"] == "sent"
    assert len(world.provider.requests) == 1


async def test_a_marketing_opt_out_stops_marketing_only(world: ConsentWorld) -> None:
    await world.opt_in()
    await world.opt_in(status="opted_out")
    marketing, transactional = await world.submit(category="marketing"), await world.submit()
    await world.dispatcher().process_all()
    assert (await world.row(marketing))["error_code"] == "marketing_opted_out"
    assert (await world.row(transactional))["status"] == "sent"


@pytest.mark.parametrize(
    ("night", "morning"),
    [
        (utc(2026, 7, 2, 3), utc(2026, 7, 2, 12)),  # 23:00 EDT -> 08:00 EDT
        (utc(2026, 3, 8, 3), utc(2026, 3, 8, 12)),  # 22:00 EST -> 08:00 EDT (DST starts)
        (utc(2026, 11, 1, 2), utc(2026, 11, 1, 13)),  # 22:00 EDT -> 08:00 EST (DST ends)
    ],
)
async def test_quiet_hours_defer_marketing_to_the_morning(
    world: ConsentWorld, night: datetime, morning: datetime
) -> None:
    world.clock.now = night - timedelta(days=1)
    await world.opt_in()
    world.clock.now = night
    marketing, transactional = await world.submit(category="marketing"), await world.submit()
    dispatcher = world.dispatcher()
    await dispatcher.process_all()
    deferred = await world.row(marketing)
    assert deferred["status"] == "pending" and deferred["next_attempt_at"] == morning
    assert deferred["attempt_count"] == 0
    assert "quiet_hours_deferred" in await world.kinds(marketing)
    assert (await world.row(transactional))["status"] == "sent"  # not held to quiet hours
    world.clock.now = morning - timedelta(minutes=1)
    await dispatcher.process_all()
    assert (await world.row(marketing))["status"] == "pending"
    world.clock.now = morning
    await dispatcher.process_all()
    assert (await world.row(marketing))["status"] == "sent"
    assert [r.to for r in world.provider.requests] == [PHONE, PHONE]


async def test_provider_21610_suppresses_the_number(world: ConsentWorld) -> None:
    error = ProviderError(message="unsubscribed", code=21610)
    world.provider.then(SendResult(Outcome.OPTED_OUT, error=error))
    failed = await world.submit()
    await world.dispatcher().process_all()
    assert (await world.row(failed))["status"] == "failed"
    later = await world.submit()
    await world.dispatcher().process_all()
    row = await world.row(later)
    assert row["status"] == "suppressed" and row["error_details"]["reason"] == "opted_out"
    async with world.db.transaction() as connection:
        (record,) = await ConsentLedger(connection).history(world.principal.tenant_id, PHONE)
    assert record["method"] == "provider" and record["evidence"]["suppressionReason"] == (
        "provider_21610"
    )
    assert len(world.provider.requests) == 1


async def test_an_override_recorded_at_submit_is_honoured_at_dispatch(world: ConsentWorld) -> None:
    forced, plain = await world.submit(), await world.submit()
    await suppress(world.db, world.principal.tenant_id, PHONE, "keyword", None, world.clock())
    async with world.db.transaction() as connection:  # what submit records for an override
        await OutboxRepository(connection).add_event(
            forced, "consent_override", world.clock(), data={"reason": "opted_out"}
        )
    await world.dispatcher().process_all()
    assert (await world.row(forced))["status"] == "sent"
    assert (await world.row(plain))["status"] == "suppressed"
    assert [r.idempotency_key for r in world.provider.requests] == [forced]


async def test_submit_time_verdicts(world: ConsentWorld) -> None:
    tenant, now = world.principal.tenant_id, world.clock()
    async with world.db.transaction() as connection:
        clear = await enforce_at_submit(connection, tenant, PHONE, "transactional", False, now)
        no_consent = await enforce_at_submit(connection, tenant, PHONE, "marketing", False, now)
        with pytest.raises(InvalidRequest, match="overrideSuppression"):
            await enforce_at_submit(connection, tenant, PHONE, "marketing", True, now)
    assert clear == (Status.PENDING, None, now) and verdict_event(clear) is None
    assert no_consent.status is Status.SUPPRESSED
    columns = verdict_columns(no_consent)
    assert columns["total_cost"] == "0" and columns["error_code"] == "no_marketing_consent"
    assert verdict_event(no_consent) == ("consent_blocked", {"reason": "no_marketing_consent"})
    await suppress(world.db, tenant, PHONE, "keyword", None, now)
    async with world.db.transaction() as connection:
        blocked = await enforce_at_submit(connection, tenant, PHONE, "transactional", False, now)
        forced = await enforce_at_submit(connection, tenant, PHONE, "transactional", True, now)
    assert blocked.status is Status.SUPPRESSED and blocked.reason == "opted_out"
    assert forced == (Status.PENDING, "suppression_overridden", now)
    assert verdict_event(forced) == ("consent_override", {"until": now.isoformat()})


# --- the CLI -----------------------------------------------------------------------------------


async def _cli(database_url: str, *args: str) -> Any:
    runner = CliRunner()
    env = {"SMSRELAY_DATABASE_URL": database_url}
    return await asyncio.to_thread(runner.invoke, consents_app, list(args), env=env)


async def test_consents_export_and_import_as_csv(
    world: ConsentWorld, database_url: str, tmp_path: Path
) -> None:
    tenant = world.principal.tenant_id
    await world.opt_in()
    source = tmp_path / "consents.csv"
    source.write_text(
        "phone,status,category,source,consent_text,occurred_at\n"
        '+14155552671,opted_in,marketing,paper form,"I agree, text me",2026-06-01T10:00:00Z\n'
        "+14155552672,opted_out,,phone call,stop texting me,\n",
        encoding="utf-8",
    )
    imported = await _cli(database_url, "import", str(source), "--tenant", tenant)
    assert imported.exit_code == 0, imported.output
    exported = await _cli(database_url, "export", "--tenant", tenant, "--since", "2000-01-01")
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [r["phone"] for r in rows] == [PHONE, "+14155552671", "+14155552672"]
    assert rows[1]["method"] == "import" and rows[1]["consent_text"] == "I agree, text me"
    assert rows[1]["occurred_at"] == "2026-06-01T10:00:00+00:00"
    assert rows[2]["status"] == "opted_out"
    one = tmp_path / "one.csv"
    alone = await _cli(database_url, "export", "--tenant", tenant, "--phone", PHONE, "-o", str(one))
    assert alone.exit_code == 0
    (only,) = list(csv.DictReader(io.StringIO(one.read_text(encoding="utf-8"))))
    assert only["source"] == "https://acme.example/signup" and only["tenant_id"] == tenant


async def test_a_bad_import_row_imports_nothing(
    world: ConsentWorld, database_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "bad.csv"
    source.write_text(
        "phone,status,source,consent_text\n"
        "+14155552671,opted_in,form,yes\n"
        "not-a-phone,opted_in,form,yes\n"
        "+14155552672,sure,form,yes\n",
        encoding="utf-8",
    )
    result = await _cli(database_url, "import", str(source), "--tenant", world.principal.tenant_id)
    assert result.exit_code == 2
    assert "line 3: phone" in result.output and "line 4: status" in result.output
    async with world.db.transaction() as connection:
        ledger = ConsentLedger(connection)
        assert await ledger.export(world.principal.tenant_id, None, None) == []
    usage = await _cli(database_url, "export", "--tenant", world.principal.tenant_id)
    assert usage.exit_code == 2 and "--phone or --since" in usage.output
