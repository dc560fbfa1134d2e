"""Prometheus metrics: what was accepted, what each send attempt ended as, what callbacks did."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MESSAGES_SUBMITTED = Counter(
    "smsrelay_messages_submitted_total", "Messages written to the outbox", ["status"]
)
SEND_ATTEMPTS = Counter(
    "smsrelay_send_attempts_total", "Provider send attempts by outcome", ["provider", "outcome"]
)
SEND_SECONDS = Histogram("smsrelay_send_seconds", "Time for one provider send call", ["provider"])
STATUS_UPDATES = Counter(
    "smsrelay_status_updates_total", "Provider status updates by what was done", ["result"]
)
