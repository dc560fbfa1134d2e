"""smsrelay: a self-hosted SMS notification service with a durable outbox."""

__version__ = "0.1.0"
