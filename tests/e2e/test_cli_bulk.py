"""`smsrelay bulk send` against a real server: chunks, progress, resume after Ctrl-C, errors."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Cli, Server, free_port

pytestmark = pytest.mark.e2e

ROWS = 40


def write_contacts(path: Path, count: int = ROWS, offset: int = 0) -> Path:
    lines = ["Phone,firstName"]
    lines += [f"+1415555{2000 + offset + n:04d},P{n}" for n in range(count)]
    lines += ["+442079460000,Land", f"+1415555{2000 + offset:04d},Again"]
    path.write_text("\n".join(lines) + "\n")
    return path


def outbox(server: Server, key: str, bulk_ids: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "200"} | ({"cursor": cursor} if cursor else {})
        page = server.client.get("/api/sms/outbox", params=params, headers=server.auth(key))
        found += page.json()["items"]
        cursor = page.json()["nextCursor"]
        if cursor is None:
            break
    bodies = {f"Hi P{n}" for n in range(ROWS)}
    return [entry for entry in found if entry["message"] in bodies or bulk_ids == []]


def state_of(csv_path: Path) -> dict[str, Any]:
    state_path = csv_path.with_name(csv_path.name + ".smsrelay-bulk.json")
    return dict(json.loads(state_path.read_text())) if state_path.exists() else {}


def test_send_follows_progress_until_every_message_ends(
    cli: Cli, server: Server, tenant: dict[str, Any]
) -> None:
    contacts = write_contacts(cli.workdir / "contacts.csv", 12, offset=500)
    result = cli(
        "bulk", "send", contacts.name, "--message", "Hello {{firstName}}",
        "--url", server.url, "--chunk-size", "5", "--poll", "0.2",
        env={"SMSRELAY_API_KEY": tenant["apiKey"]}, timeout=90,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "accepted 12, rejected 1" in result.stderr  # the repeated number is sent once
    assert "landline" in result.stderr and "duplicate" not in result.stderr
    assert "delivered" in result.stderr and "12/12" in result.stderr
    bulk_ids = [chunk["bulkId"] for chunk in state_of(contacts)["chunks"].values()]
    status = cli("bulk", "status", bulk_ids[0], "--url", server.url,
                 env={"SMSRELAY_API_KEY": tenant["apiKey"]})  # fmt: skip
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert shown["bulkId"] == bulk_ids[0] and shown["acceptedCount"] == 5


def test_a_run_interrupted_by_ctrl_c_resumes_without_sending_anyone_twice(
    cli: Cli, server: Server, start_process: Any
) -> None:
    tenant = cli.create_tenant("resumer")
    env = {"SMSRELAY_API_KEY": tenant["apiKey"]}
    contacts = write_contacts(cli.workdir / "resume.csv")
    args = ("bulk", "send", str(contacts), "--message", "Hi {{firstName}}", "--url", server.url,
            "--chunk-size", "1", "--no-wait")  # fmt: skip
    first = start_process(*args, **env)
    deadline = time.monotonic() + 30
    while not state_of(contacts).get("chunks"):
        assert time.monotonic() < deadline, first.describe()
        time.sleep(0.01)
    assert first.popen is not None
    first.popen.send_signal(signal.SIGINT)
    first.popen.wait(timeout=30)
    accepted_before = len(state_of(contacts)["chunks"])

    resumed = cli(*args, env=env, timeout=90)
    assert resumed.returncode == 0, resumed.stderr
    if accepted_before < ROWS + 1:
        assert "resuming" in resumed.stderr
    chunks = state_of(contacts)["chunks"]
    assert len(chunks) == ROWS + 1  # 40 numbers and the landline; the repeat is skipped

    again = cli(*args, env=env, timeout=90)  # a finished run: every chunk is skipped
    assert again.returncode == 0 and f"accepted {ROWS}, rejected 1" in again.stderr
    summary = " ".join(again.stderr.split())  # rich wraps at 80 columns
    assert f"bulk ids: {ROWS} bulks, listed in resume.csv.smsrelay-bulk.json" in summary
    assert "1 repeated number(s) sent once" in summary

    bulk_ids = [c["bulkId"] for c in chunks.values() if c["bulkId"]]
    deadline = time.monotonic() + 30
    while True:
        entries = outbox(server, tenant["apiKey"], bulk_ids)
        if len(entries) >= ROWS or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    recipients = Counter(entry["recipientPhoneNumber"] for entry in entries)
    assert len(recipients) == ROWS and max(recipients.values()) == 1


def test_clear_errors_for_file_header_key_and_server(
    cli: Cli, server: Server, tenant: dict[str, Any]
) -> None:
    key = {"SMSRELAY_API_KEY": tenant["apiKey"]}
    missing = cli("bulk", "send", "nope.csv", "--message", "x", "--url", server.url, env=key)
    assert missing.returncode == 2 and "nope.csv not found" in missing.stderr

    (cli.workdir / "names.csv").write_text("name\nAda\n")
    no_phone = cli("bulk", "send", "names.csv", "--message", "x", "--url", server.url, env=key)
    assert no_phone.returncode == 1 and "no phone column" in no_phone.stderr

    (cli.workdir / "semi.csv").write_text("phone;name\n+14155550199;Ada\n")
    semi = cli("bulk", "send", "semi.csv", "--message", "x", "--url", server.url, env=key)
    assert semi.returncode == 1 and "separated by semicolons" in semi.stderr

    (cli.workdir / "one.csv").write_text("to\n+14155550199\n")
    bad_key = cli("bulk", "send", "one.csv", "--message", "x", "--url", server.url,
                  env={"SMSRELAY_API_KEY": "sr_bad_key"})  # fmt: skip
    assert bad_key.returncode == 1 and "API key was refused (401)" in bad_key.stderr

    nowhere = f"http://127.0.0.1:{free_port()}"
    down = cli("bulk", "send", "one.csv", "--message", "x", "--url", nowhere, env=key)
    assert down.returncode == 1 and "cannot reach" in down.stderr

    no_key = cli("bulk", "send", "one.csv", "--message", "x", "--url", server.url)
    assert no_key.returncode == 2 and "SMSRELAY_API_KEY" in no_key.stderr


def test_a_file_that_would_stop_a_run_halfway_is_refused_before_anything_is_sent(
    cli: Cli, server: Server
) -> None:
    tenant = cli.create_tenant("prechecked")
    env = {"SMSRELAY_API_KEY": tenant["apiKey"]}
    args = ("--url", server.url, "--chunk-size", "1", "--no-wait")
    late = cli.workdir / "late.csv"  # a Latin-1 byte on row 30, after 28 chunks of one row
    rows = "".join(f"+1415555{2600 + n:04d},P{n}\n" for n in range(28))
    late.write_bytes(b"phone,firstName\n" + rows.encode() + b"+14155552699,J\xe9r\xf4me\n")
    result = cli("bulk", "send", late.name, "--message", "Hi {{firstName}}", *args, env=env)
    assert result.returncode == 1 and "not UTF-8 text (line 30)" in result.stderr
    assert "nothing was sent" in result.stderr and not state_of(late)

    (cli.workdir / "nul.csv").write_bytes(b"phone\n+14155552601\n+1415555\x002602\n")
    nul = cli("bulk", "send", "nul.csv", "--message", "Hi", *args, env=env)
    assert nul.returncode == 1 and "NUL character (line 3)" in nul.stderr

    (cli.workdir / "names.csv").write_text("phone,name\n+14155552603,Ann\n")
    unknown = cli("bulk", "send", "names.csv", "--message", "Hi {{firstName}}", *args, env=env)
    assert unknown.returncode == 1 and "{{firstName}}" in unknown.stderr
    assert "columns: phone, name" in unknown.stderr

    huge = cli.workdir / "huge.csv"
    huge.write_text("phone,firstName\n+14155552604,A\n+14155552605," + "y" * 200_000 + "\n")
    too_big = cli("bulk", "send", huge.name, "--message", "Hi {{firstName}}", *args, env=env)
    assert too_big.returncode == 1 and "row 3" in too_big.stderr, too_big.stderr

    empty = cli("bulk", "send", "names.csv", "--message", " ", *args, env=env)
    assert empty.returncode == 1 and "--message is empty" in empty.stderr
    assert outbox(server, tenant["apiKey"], []) == []


def test_a_row_without_a_usable_number_is_reported_by_row_and_the_run_goes_on(
    cli: Cli, server: Server
) -> None:
    tenant = cli.create_tenant("blank-cells")
    contacts = cli.workdir / "blanks.csv"
    contacts.write_text(
        "firstName,phone\nAnn,+14155552701\nBob,\nCy\nDee," + "9" * 60 + "\nEve,+14155552702\n"
    )
    result = cli(
        "bulk", "send", contacts.name, "--message", "Hi {{firstName}}", "--url", server.url,
        "--chunk-size", "2", "--no-wait", env={"SMSRELAY_API_KEY": tenant["apiKey"]},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "accepted 2, rejected 3" in result.stderr
    for row in (3, 4, 5):
        assert f"row {row} (" in result.stderr and "invalid_number" in result.stderr


def test_the_end_of_a_run_says_why_messages_count_as_failed(cli: Cli, server: Server) -> None:
    tenant = cli.create_tenant("no-consent")
    (cli.workdir / "offers.csv").write_text("phone\n+14155552801\n+14155552802\n")
    result = cli(
        "bulk", "send", "offers.csv", "--message", "Sale!", "--category", "marketing",
        "--url", server.url, "--poll", "0.2", "--patience", "60",
        env={"SMSRELAY_API_KEY": tenant["apiKey"]}, timeout=90,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = " ".join(result.stderr.split())
    assert "delivered 0; 2 suppressed (not sent: opted out, no consent for marketing" in summary


def test_the_key_s_rate_limit_is_waited_out_not_fatal(cli: Cli, start_server: Any) -> None:
    """Following 12 bulks asks 12 times a poll; at 3 requests a second that is a 429."""
    limited = start_server(SMSRELAY_API_KEY_RATE_LIMIT="3/second")
    tenant = cli.create_tenant("rate-limited")
    contacts = write_contacts(cli.workdir / "limited.csv", 12, offset=800)
    result = cli(
        "bulk", "send", contacts.name, "--message", "Hi {{firstName}}", "--url", limited.url,
        "--chunk-size", "1", "--poll", "0.2", "--patience", "60",
        env={"SMSRELAY_API_KEY": tenant["apiKey"]}, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "429" not in result.stderr and "12/12" in result.stderr
