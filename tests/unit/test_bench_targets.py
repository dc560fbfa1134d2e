"""The benchmark harness's own arithmetic: ratios, pass/fail against targets, dispatch rates."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def harness() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module("bench_targets")
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize(
    ("key", "result", "baseline", "passed"),
    [
        ("a", 850.0, 1000.0, True),
        ("a", 849.0, 1000.0, False),
        ("c", 2100.0, 2400.0, True),  # 0.875 of the bare loop and over 2,000/s
        ("c", 1900.0, 2000.0, False),  # 0.95 of the bare loop but under 2,000/s
        ("d", 80.0, 100.0, True),
        ("d", 10.0, 0.0, False),  # no baseline, no pass
    ],
)
def test_targets_are_judged_on_the_ratio_and_any_floor(
    harness: ModuleType, key: str, result: float, baseline: float, passed: bool
) -> None:
    assert harness.judge(harness.TARGETS[key], result, baseline) is passed


def _entry(status: str, attempted: str, sent: str | None) -> dict[str, Any]:
    return {"status": status, "timestamps": {"lastAttemptAt": attempted, "sentAt": sent}}


def test_dispatch_rate_runs_from_the_first_claim_to_the_last_recorded_send(
    harness: ModuleType,
) -> None:
    entries = [
        _entry("sent", "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:01+00:00"),
        _entry("delivered", "2026-01-01T00:00:01+00:00", "2026-01-01T00:00:02+00:00"),
        _entry("failed", "2026-01-01T00:00:01+00:00", None),
    ]
    assert harness.dispatch_rate(entries) == (2, 1.0)
    assert harness.dispatch_rate([]) == (0, 0.0)


def test_the_bulk_ratio_is_raw_over_bulk(harness: ModuleType) -> None:
    summary = {
        "seconds_to_202": 1.2,
        "raw_executemany_seconds": 0.9,
        "peak_mb": 80.0,
        "raw_peak_mb": 40.0,
        "meets_target": True,
    }
    row = harness.bulk_row(summary, "(b)", "≤ 1.5 s")
    assert (row.result, row.baseline, row.passed) == (1.2, 0.9, True)
    assert row.ratio == pytest.approx(0.75)


def test_only_keeps_the_rows_asked_for(harness: ModuleType) -> None:
    assert harness.parse_options([]).only == frozenset("abcd")
    assert harness.parse_options(["--only", "d"]).only == frozenset("d")
    row = harness.measured_row("d", "(d) POST /api/webhooks/twilio/status", 80.0, 100.0)
    assert harness.row_key(row) == "d"
