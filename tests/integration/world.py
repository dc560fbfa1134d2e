"""A dispatcher's world for integration tests: one tenant, a fake provider and a settable clock."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from sqlalchemy.engine import RowMapping

from smsrelay.config import load_settings
from smsrelay.dispatch.dispatcher import DispatchConfig, Dispatcher
from smsrelay.dispatch.retry import RetryPolicy
from smsrelay.providers.fake import FakeProvider
from smsrelay.services.provider_configs import ProviderConfigs
from smsrelay.services.provider_pool import ProviderPool
from smsrelay.services.submit import NewMessage, Principal, SubmitPolicy, submit_message
from smsrelay.services.tenants import create_tenant
from smsrelay.store.claims import claim_due
from smsrelay.store.database import Database
from smsrelay.store.outbox import OutboxRepository


@dataclass
class Clock:
    """Now, as the test sets it: the dispatcher and submit read it instead of the real time."""

    now: datetime = field(default_factory=lambda: datetime(2026, 3, 1, 12, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class World:
    """The tenant "acme" sending to `phone` through the provider "fake", on `clock`'s time."""

    db: Database
    provider: FakeProvider
    clock: Clock
    principal: Principal
    phone: str = "+15005550006"
    config: DispatchConfig = field(default_factory=DispatchConfig)
    policy: RetryPolicy | None = None

    @classmethod
    async def create(cls, db: Database, clock: Clock, **settings: Any) -> Self:
        tenant = await create_tenant(db, "acme")
        principal = Principal(tenant.tenant_id, tenant.key_id)
        return cls(db, FakeProvider(name="fake"), clock, principal, **settings)

    def dispatcher(self, name: str = "w1", **config: float) -> Dispatcher:
        """A dispatcher on `config`, with any of its fields changed."""
        return Dispatcher(
            self.db,
            ProviderPool(ProviderConfigs(self.db, load_settings(), None), {"fake": self.provider}),
            clock=self.clock,
            name=name,
            config=replace(self.config, **config),
            policy=self.policy,
        )

    async def submit(self, *, to: str | None = None, body: str = "Hello", **extra: Any) -> str:
        new = NewMessage(to=to or self.phone, message=body, **extra)
        entry = await submit_message(
            self.db, SubmitPolicy(provider="fake"), self.principal, new, clock=self.clock
        )
        return entry.outbox_id

    async def claim(self, worker: Dispatcher) -> RowMapping:
        """Claim the one due message as `worker` would, leaving the rest of its work undone."""
        async with self.db.transaction() as connection:
            (row,) = await claim_due(
                connection, worker.name, self.clock.now, timedelta(seconds=30), 5
            )
        return row

    async def row(self, outbox_id: str) -> dict[str, Any]:
        async with self.db.transaction() as connection:
            row = await OutboxRepository(connection).get_row(outbox_id)
        assert row is not None
        return dict(row)

    async def kinds(self, outbox_id: str) -> list[str]:
        async with self.db.transaction() as connection:
            return [e.kind for e in await OutboxRepository(connection).events(outbox_id)]
