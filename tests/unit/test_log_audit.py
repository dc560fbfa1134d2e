"""The suite-wide log audit finds leaks in captured stderr and log records, once per phase."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from smsrelay.logs import mask_phone
from tests.log_audit import LogAudit


@dataclass
class Report:
    """The parts of a pytest TestReport the audit reads."""

    when: str
    sections: list[tuple[str, str]] = field(default_factory=list)
    nodeid: str = "tests/x.py::test_x"


def _audit(*reports: Report) -> LogAudit:
    audit = LogAudit()
    for report in reports:
        audit.pytest_runtest_logreport(report)  # type: ignore[arg-type]
    return audit


@pytest.mark.parametrize(
    "line",
    [
        '{"event": "sms.sent", "to": "+14155550100"}',
        "WARNING raw number +447911123456 in a stdlib record",
        '{"event": "auth", "key": "sr_0123456789ab_' + "A" * 43 + '"}',
        "Basic simulator-dev-auth-token",
    ],
)
def test_each_kind_of_leak_is_found(line: str) -> None:
    audit = _audit(Report("call", [("Captured stderr call", line)]))
    assert len(audit.leaks) == 1
    assert "tests/x.py::test_x" in audit.leaks[0]


def test_masked_numbers_and_stdout_are_not_leaks() -> None:
    masked = f'{{"event": "sms.sent", "to": "{mask_phone("+14155550100")}"}}'
    audit = _audit(
        Report("call", [("Captured stderr call", masked), ("Captured stdout call", "+14155550100")])
    )
    assert audit.leaks == []


def test_a_phase_is_read_once_though_later_reports_repeat_it() -> None:
    setup = ("Captured log setup", "raw +14155550100")
    audit = _audit(Report("setup", [setup]), Report("call", [setup]), Report("teardown", [setup]))
    assert len(audit.leaks) == 1


def test_a_leak_is_reported_without_the_full_number() -> None:
    audit = _audit(Report("call", [("Captured stderr call", "+14155550100")]))
    assert "+14155550100" not in audit.leaks[0] and "0100" in audit.leaks[0]
