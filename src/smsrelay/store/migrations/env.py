"""Alembic environment: runs on the connection smsrelay hands over (SQLite or PostgreSQL)."""

from __future__ import annotations

from alembic import context

from smsrelay.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `smsrelay migrate`, which supplies the connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
