"""Log lines never carry a full phone number, a message body or a secret."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from smsrelay.logs import configure_logging, mask_phone, mask_text


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("+15005550006", "+1******0006"),
        ("+447911123456", "+4*******3456"),
        ("4155552671", "******2671"),
        ("123", "***"),
    ],
)
def test_mask_phone_keeps_only_the_last_four_digits(raw: str, masked: str) -> None:
    assert mask_phone(raw) == masked


def test_mask_text_masks_numbers_inside_free_text() -> None:
    assert mask_text("To +14155552671 failed") == "To +1******2671 failed"


def test_rendered_lines_mask_numbers_bodies_and_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging(json=True)
    structlog.get_logger().info(
        "notifications.sms.delivery_failed",
        recipient="+14155552671",
        body="secret text",
        auth_token="tok123",
        details={"To": "+14155552671"},
        note="call +14155552671",
    )
    configure_logging(json=True)
    line = stream.getvalue()
    event = json.loads(line)
    assert "4155552671" not in line and "secret text" not in line and "tok123" not in line
    assert event["recipient"] == "+1******2671"
    assert event["body"] == "[redacted]" and event["auth_token"] == "[redacted]"
    assert event["details"]["To"] == "+1******2671"
    assert event["event"] == "notifications.sms.delivery_failed"


def test_ids_and_timestamps_are_left_readable() -> None:
    text = "sms_01a201b49793ca35f5e9af4e941f at 2026-11-22T05:22:33.123Z code 21211"
    assert mask_text(text) == text


def test_exceptions_and_lists_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging(json=True)
    try:
        raise RuntimeError("could not reach +14155552671")
    except RuntimeError as exc:
        structlog.get_logger().error("boom", exc_info=exc, numbers=["+14155552671"])
    configure_logging(json=True)
    line = stream.getvalue()
    assert "4155552671" not in line
    assert "could not reach +1******2671" in json.loads(line)["exception"]
