"""Sender throughput: the segments per second a sender may send, by kind (data) or override."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

from smsrelay.domain import senders

__all__ = [
    "MAX_SEGMENTS_PER_SECOND",
    "Throughput",
    "ThroughputKind",
    "canonical_sender",
    "default_throughput",
    "kinds_from",
    "parse_overrides",
    "shipped_kinds",
]

# Well above any carrier's per-sender rate (high-throughput short codes reach the hundreds).
MAX_SEGMENTS_PER_SECOND: Final = 10_000


@dataclass(frozen=True, slots=True)
class ThroughputKind:
    """One row of ``data/throughput.json``: a sender pattern and its default rate."""

    kind: str
    pattern: re.Pattern[str]
    segments_per_second: int
    source: str


@dataclass(frozen=True, slots=True)
class Throughput:
    """The rate that applies to one sender, and where the figure comes from."""

    sender: str
    kind: str
    segments_per_second: int
    source: str


def kinds_from(data: Mapping[str, Any]) -> tuple[ThroughputKind, ...]:
    """The kind table from its JSON form; the last entry must match any sender."""
    kinds = tuple(
        ThroughputKind(
            kind=entry["kind"],
            pattern=re.compile(entry["pattern"]),
            segments_per_second=_checked_rate(entry["segmentsPerSecond"], entry["kind"]),
            source=f"{entry['source']} ({entry['date']})",
        )
        for entry in data["kinds"]
    )
    if not kinds or kinds[-1].pattern.pattern != ".+":
        raise ValueError("throughput table: the last kind must be the catch-all pattern '.+'")
    return kinds


@cache
def shipped_kinds() -> tuple[ThroughputKind, ...]:
    """The table shipped in ``data/throughput.json``."""
    text = resources.files("smsrelay.domain").joinpath("data", "throughput.json").read_text("utf-8")
    return kinds_from(json.loads(text))


def default_throughput(sender: str, kinds: tuple[ThroughputKind, ...] | None = None) -> Throughput:
    """The shipped rate for `sender`'s kind (the first pattern matching the whole string)."""
    table = kinds or shipped_kinds()
    found = next(k for k in table if k.pattern.fullmatch(sender))
    return Throughput(sender, found.kind, found.segments_per_second, found.source)


def canonical_sender(value: str) -> str:
    """`value` in the form messages store it (E.164 for numbers); `InvalidSender` if no sender."""
    return senders.classify_sender(value).value


def parse_overrides(text: str) -> dict[str, int]:
    """``SENDER=RATE,SENDER=RATE`` (e.g. ``+15005550006=20,MG…=30``) as {canonical sender: rate}.

    Raises `ValueError` saying which entry to fix.
    """
    overrides: dict[str, int] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        sender, separator, rate = entry.rpartition("=")
        if not separator or not sender.strip():
            raise ValueError(f"{entry!r} is not SENDER=SEGMENTS_PER_SECOND")
        try:
            overrides[canonical_sender(sender)] = _checked_rate(rate.strip(), sender.strip())
        except senders.InvalidSender as exc:
            raise ValueError(str(exc)) from None
    return overrides


def _checked_rate(value: object, what: str) -> int:
    text = str(value)
    if not text.isdigit() or not 1 <= int(text) <= MAX_SEGMENTS_PER_SECOND:
        raise ValueError(
            f"the rate for {what!r} must be a whole number of segments per second "
            f"from 1 to {MAX_SEGMENTS_PER_SECOND}, not {text!r}"
        )
    return int(text)
