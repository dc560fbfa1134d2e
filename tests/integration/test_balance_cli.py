"""`smsrelay balance credit` and `show`: the operator's side of balances, and every bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from smsrelay.cli import app
from smsrelay.store.database import Database


def _cli(database_url: str, *args: str, **env: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"SMSRELAY_DATABASE_URL": database_url, **env})


def _tenant(database_url: str) -> str:
    created = _cli(database_url, "tenants", "create", "acme")
    return str(json.loads(created.stdout)["tenantId"])


def test_credit_opens_the_account_and_show_lists_the_ledger(
    database_url: str, db: Database
) -> None:
    tenant = _tenant(database_url)
    before = json.loads(_cli(database_url, "balance", "show", tenant).stdout)
    assert before["metered"] is False and before["balance"] is None
    first = _cli(database_url, "balance", "credit", tenant, "10.50", "--note", "invoice 7")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["balance"] == "10.5"
    second = _cli(database_url, "balance", "credit", tenant, "0.000001", "--currency", "usd")
    assert json.loads(second.stdout)["balance"] == "10.500001"
    shown = json.loads(_cli(database_url, "balance", "show", tenant, "--limit", "1").stdout)
    assert shown["metered"] is True and shown["currency"] == "USD"
    assert [m["amount"] for m in shown["movements"]] == ["0.000001"]
    assert shown["nextCursor"] is not None


def test_the_first_credit_sets_the_currency(database_url: str, db: Database) -> None:
    tenant = _tenant(database_url)
    first = _cli(database_url, "balance", "credit", tenant, "100", "--currency", "INR")
    assert json.loads(first.stdout)["currency"] == "INR"
    other = _cli(database_url, "balance", "credit", tenant, "1", "--currency", "USD")
    assert other.exit_code == 1 and "the balance is in INR" in other.output


def test_default_currency_comes_from_the_setting(database_url: str, db: Database) -> None:
    tenant = _tenant(database_url)
    made = _cli(database_url, "balance", "credit", tenant, "1", SMSRELAY_DEFAULT_CURRENCY="GBP")
    assert json.loads(made.stdout)["currency"] == "GBP"


@pytest.mark.parametrize(
    ("amount", "problem"),
    [
        ("abc", "not a decimal number"),
        ("0", "must be positive"),
        ("1.0000001", "more than 6 decimals"),
        ("Infinity", "not a finite number"),
        ("1e13", "too large"),
    ],
)
def test_bad_amounts_are_refused(
    database_url: str, db: Database, amount: str, problem: str
) -> None:
    tenant = _tenant(database_url)
    result = _cli(database_url, "balance", "credit", tenant, amount)
    assert result.exit_code == 1 and problem in result.output
    shown = json.loads(_cli(database_url, "balance", "show", tenant).stdout)
    assert shown["metered"] is False


def test_negative_amounts_and_bad_options_are_usage_errors(database_url: str, db: Database) -> None:
    tenant = _tenant(database_url)
    assert _cli(database_url, "balance", "credit", tenant, "-5").exit_code == 2
    assert _cli(database_url, "balance", "show", tenant, "--limit", "0").exit_code == 2
    bad = _cli(database_url, "balance", "credit", tenant, "1", "--currency", "dollars")
    assert bad.exit_code == 1 and "ISO 4217" in bad.output
    long_note = _cli(database_url, "balance", "credit", tenant, "1", "--note", "x" * 501)
    assert long_note.exit_code == 1 and "note" in long_note.output


def test_unknown_tenants_are_named(database_url: str, db: Database) -> None:
    for args in (("credit", "ten_nope", "5"), ("show", "ten_nope")):
        result = _cli(database_url, "balance", *args)
        assert result.exit_code == 1 and "no tenant 'ten_nope'" in result.output
