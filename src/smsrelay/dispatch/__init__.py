"""Outbox dispatch: claim loop, leases and the pure retry policy."""
