"""The sender-kind throughput table and the SMSRELAY_SENDER_THROUGHPUT format."""

from __future__ import annotations

import pytest

from smsrelay.domain import throughput


@pytest.mark.parametrize(
    ("sender", "kind", "rate"),
    [
        ("+15005550006", "long_code", 1),
        ("+14155550100", "long_code", 1),
        ("+447700900123", "long_code", 1),
        ("+18005550100", "toll_free", 3),
        ("+18335550100", "toll_free", 3),
        ("+18445550100", "toll_free", 3),
        ("+18555550100", "toll_free", 3),
        ("+18665550100", "toll_free", 3),
        ("+18775550100", "toll_free", 3),
        ("+18885550100", "toll_free", 3),
        ("+18995550100", "long_code", 1),  # 899 is not a toll-free prefix
        ("12345", "short_code", 100),
        ("123456", "short_code", 100),
        ("ACME", "alphanumeric", 10),
        ("My Shop-1", "alphanumeric", 10),
        ("MG" + "0123456789abcdef" * 2, "messaging_service", 1),
        ("1234", "other", 1),
    ],
)
def test_each_kind_has_its_default_rate(sender: str, kind: str, rate: int) -> None:
    found = throughput.default_throughput(sender)
    assert (found.kind, found.segments_per_second) == (kind, rate)


def test_every_entry_says_where_its_figure_comes_from() -> None:
    for entry in throughput.shipped_kinds():
        assert entry.source.endswith(")") and len(entry.source) > 30, entry.kind


def test_the_table_must_end_with_a_catch_all() -> None:
    data = {
        "kinds": [
            {"kind": "x", "pattern": "[0-9]+", "segmentsPerSecond": 1, "source": "s", "date": "d"}
        ]
    }
    with pytest.raises(ValueError, match="catch-all"):
        throughput.kinds_from(data)


def test_overrides_are_parsed_to_canonical_senders() -> None:
    parsed = throughput.parse_overrides(" +1 800 555 0100=25, ACME=5,,")
    assert parsed == {"+18005550100": 25, "ACME": 5}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("+15005550006", "SENDER=SEGMENTS_PER_SECOND"),
        ("=5", "SENDER=SEGMENTS_PER_SECOND"),
        ("+15005550006=0", "from 1 to 10000"),
        ("+15005550006=2.5", "whole number"),
        ("+15005550006=10001", "from 1 to 10000"),
        ("bad!=3", "is not a sender"),
    ],
)
def test_bad_overrides_say_what_to_fix(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        throughput.parse_overrides(text)
