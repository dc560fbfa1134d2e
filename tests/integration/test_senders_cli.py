"""`smsrelay senders`: an operator sets, shows, lists and clears a tenant's sender rates."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from smsrelay.cli import app
from smsrelay.store.database import Database

SENDER = "+15005550006"


def _cli(database_url: str, *args: str, **env: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"SMSRELAY_DATABASE_URL": database_url, **env})


def _tenant(database_url: str) -> str:
    created = _cli(database_url, "tenants", "create", "acme")
    return str(json.loads(created.stdout)["tenantId"])


def test_a_rate_is_set_shown_listed_and_cleared(database_url: str, db: Database) -> None:
    tenant = _tenant(database_url)
    made = _cli(database_url, "senders", "set-throughput", tenant, "+1 500 555 0006", "20")
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["segmentsPerSecond"] == 20
    shown = json.loads(_cli(database_url, "senders", "throughput", tenant, SENDER).stdout)
    assert (shown["sender"], shown["origin"]) == (SENDER, "tenant")
    listed = _cli(database_url, "senders", "list", tenant).stdout.splitlines()
    assert [json.loads(line)["sender"] for line in listed] == [SENDER]
    assert _cli(database_url, "senders", "clear-throughput", tenant, SENDER).exit_code == 0
    again = json.loads(_cli(database_url, "senders", "throughput", tenant, SENDER).stdout)
    assert (again["origin"], again["segmentsPerSecond"]) == ("default", 1)


def test_the_deployment_rate_shows_when_the_tenant_has_none(
    database_url: str, db: Database
) -> None:
    tenant = _tenant(database_url)
    shown = _cli(
        database_url,
        "senders",
        "throughput",
        tenant,
        "ACME",
        SMSRELAY_SENDER_THROUGHPUT="ACME=7",
    )
    assert json.loads(shown.stdout) | {"source": None} == {
        "sender": "ACME",
        "kind": "alphanumeric",
        "segmentsPerSecond": 7,
        "origin": "deployment",
        "source": None,
        "updatedAt": None,
    }


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["set-throughput", "TENANT", SENDER, "0"], "from 1 to 10000"),
        (["set-throughput", "TENANT", "bad!", "5"], "sender:"),
        (["set-throughput", "ten_unknown", SENDER, "5"], "no tenant"),
        (["clear-throughput", "TENANT", SENDER], "nothing to remove"),
    ],
)
def test_bad_input_exits_1_saying_what_to_change(
    database_url: str, db: Database, args: list[str], problem: str
) -> None:
    tenant = _tenant(database_url)
    result = _cli(database_url, "senders", *[tenant if a == "TENANT" else a for a in args])
    assert result.exit_code == 1
    assert problem in result.output


def test_a_bad_deployment_setting_names_the_variable(database_url: str, db: Database) -> None:
    result = _cli(
        database_url, "senders", "list", "t", SMSRELAY_SENDER_THROUGHPUT="+15005550006=fast"
    )
    assert result.exit_code == 2
    assert "SMSRELAY_SENDER_THROUGHPUT" in result.output
