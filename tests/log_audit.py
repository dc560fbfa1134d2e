"""A pytest plugin that reads every log line the whole suite writes and fails it on a leak.

Each test's captured stderr and log records are scanned as they are reported: a full phone
number, an API key or the simulator's auth token in any of them fails the run at the end, with
the test that logged it. (Bodies are redacted by key in `logs.mask_event`; the per-flow check in
tests/integration/test_log_leaks.py also looks for known message texts.)
"""

from __future__ import annotations

import re

import pytest

from smsrelay.logs import mask_phone
from smsrelay.providers.simulator.config import DEFAULT_AUTH_TOKEN

PATTERNS = {
    "a full phone number": re.compile(r"(?<![\w*])\+\d{8,15}(?!\d)"),
    "an API key": re.compile(r"\bsr_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}"),
    "the simulator's auth token": re.compile(re.escape(DEFAULT_AUTH_TOKEN)),
}
LOG_SECTIONS = ("stderr", "log")  # stdout carries what tests print on purpose, not logs


class LogAudit:
    """Collects leaks from each test report; reports them and fails the session at the end."""

    def __init__(self) -> None:
        self.leaks: list[str] = []
        self.scanned = 0

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for title, content in report.sections:
            # A report repeats the earlier phases' sections: read only its own phase's.
            if not title.endswith(report.when) or not any(w in title for w in LOG_SECTIONS):
                continue
            self.scanned += len(content.splitlines())
            for kind, pattern in PATTERNS.items():
                for match in pattern.finditer(content):
                    shown = mask_phone(match.group(0))
                    self.leaks.append(f"{report.nodeid} ({title}): {kind} {shown}")

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.leaks and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        terminalreporter.write_line(
            f"log audit: {self.scanned} captured log lines scanned, {len(self.leaks)} leaks"
        )
        for leak in self.leaks[:50]:
            terminalreporter.write_line(f"LEAK {leak}", red=True)
