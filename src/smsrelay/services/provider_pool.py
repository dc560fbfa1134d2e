"""Which provider instance serves a message: the tenant's own verified account, else the platform's.

A send goes through the tenant's verified config for the message's provider when there is one,
and the message records that config (`provider_config_id`, None for the platform) before the
request goes out; every later question about the message (reconciliation, status checks,
prices) goes to the account it records. Configs are read at most once per `ttl_seconds` per
tenant; built providers are kept per (config id, version), so a saved change (which bumps the
version) takes effect in every process within the TTL, and replaced instances are closed once
no send can still be using them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import RowMapping

from smsrelay.logs import get_logger
from smsrelay.providers.base import (
    Outcome,
    Provider,
    ProviderError,
    ProviderMessage,
    SendRequest,
    SendResult,
)
from smsrelay.services.errors import ServiceError
from smsrelay.services.provider_configs import ProviderConfigs
from smsrelay.services.secrets import SecretDecryptError
from smsrelay.store.outbox import OutboxRepository
from smsrelay.store.provider_configs import ProviderConfigRepository

log = get_logger("smsrelay.provider_pool")


@dataclass
class Unavailable:
    """Stands in for a provider that cannot be used: sends get `outcome`, look-ups no answer."""

    name: str
    outcome: Outcome
    message: str
    can_look_up_messages: bool = False

    async def send(self, request: SendRequest) -> SendResult:
        return SendResult(self.outcome, error=ProviderError(self.message))

    async def fetch(self, provider_message_id: str) -> ProviderMessage | None:
        return None

    async def find_sent(self, to: str, body: str, since: datetime) -> ProviderMessage | None:
        return None

    async def verify(self) -> None:
        return None

    async def close(self) -> None:
        return None


@dataclass
class _Cached:
    expires: float
    rows: dict[str, RowMapping]


@dataclass
class ProviderPool(Mapping[str, Provider]):
    """The platform's providers by name, and tenants' own providers per message."""

    configs: ProviderConfigs
    platform: Mapping[str, Provider] = field(default_factory=dict)
    ttl_seconds: float = 5.0
    linger_seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _tenants: dict[str, _Cached] = field(default_factory=dict)
    _by_id: dict[str, tuple[float, RowMapping | None]] = field(default_factory=dict)
    _built: dict[str, tuple[int, Provider]] = field(default_factory=dict)
    _retired: list[tuple[float, Provider]] = field(default_factory=list)

    def __getitem__(self, name: str) -> Provider:
        return self.platform[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.platform)

    def __len__(self) -> int:
        return len(self.platform)

    def askable(self) -> list[str]:
        """Provider names whose messages can be looked up (platform's and tenants' kinds)."""
        names = {name for name, p in self.platform.items() if p.can_look_up_messages}
        own = {name for name, spec in self.configs.specs.items() if spec.can_look_up_messages}
        return sorted(names | own)

    async def prepare(self, rows: Sequence[RowMapping]) -> None:
        """Load the verified configs of the rows' tenants not cached yet, in one query, so
        that `for_send` finds them without I/O (paced sends must not wait on the database)."""
        await self._load({row["tenant_id"] for row in rows})

    async def for_send(self, row: RowMapping, worker: str) -> Provider:
        """The provider for this attempt; records its config on the message first."""
        await self._close_retired()
        config = await self._verified(row["tenant_id"], row["provider"])
        config_id = None if config is None else config["id"]
        if row["provider_config_id"] != config_id:
            async with self.configs.db.transaction() as connection:
                await OutboxRepository(connection).update_if_owned(
                    row["id"], worker, provider_config_id=config_id
                )
        if config is None:
            return self._platform(row["provider"])
        return self._provider(config)

    async def for_message(self, row: RowMapping) -> Provider:
        """The provider that sent the message: the account recorded on it."""
        config_id = row["provider_config_id"]
        if config_id is None:
            return self._platform(row["provider"])
        config = await self._config(config_id)
        if config is None:
            return Unavailable(
                row["provider"],
                Outcome.PERMANENT,
                "the tenant's provider config that sent this message was deleted",
            )
        return self._provider(config)

    def forget(self, tenant_id: str) -> None:
        """Drop what is cached for a tenant (its configs just changed in this process)."""
        self._tenants.pop(tenant_id, None)
        self._by_id = {
            k: v for k, v in self._by_id.items() if v[1] is None or v[1]["tenant_id"] != tenant_id
        }

    async def close(self) -> None:
        for _, provider in self._built.values():
            await provider.close()
        for _, provider in self._retired:
            await provider.close()
        self._built.clear()
        self._retired.clear()

    def _platform(self, name: str) -> Provider:
        provider = self.platform.get(name)
        if provider is not None:
            return provider
        return Unavailable(
            name,
            Outcome.PERMANENT,
            f"no {name} account for this message: the tenant's config is gone or unverified "
            "and the platform has none",
        )

    async def _verified(self, tenant_id: str, provider: str) -> RowMapping | None:
        cached = self._tenants.get(tenant_id)
        if cached is None or cached.expires <= self.clock():
            await self._load({tenant_id})
            cached = self._tenants[tenant_id]
        return cached.rows.get(provider)

    async def _load(self, tenants: set[str]) -> None:
        now = self.clock()
        stale = {t for t in tenants if t not in self._tenants or self._tenants[t].expires <= now}
        if not stale:
            return
        async with self.configs.db.reading() as connection:
            found = await ProviderConfigRepository(connection).verified_of(stale)
        for tenant in stale:
            own = {row["provider"]: row for row in found if row["tenant_id"] == tenant}
            self._tenants[tenant] = _Cached(now + self.ttl_seconds, own)

    async def _config(self, config_id: str) -> RowMapping | None:
        now = self.clock()
        cached = self._by_id.get(config_id)
        if cached is None or cached[0] <= now:
            async with self.configs.db.reading() as connection:
                row = await ProviderConfigRepository(connection).get_by_id(config_id)
            cached = (now + self.ttl_seconds, row)
            self._by_id[config_id] = cached
            self._retire_deleted(config_id, row)
        return cached[1]

    def _retire_deleted(self, config_id: str, row: RowMapping | None) -> None:
        """A deleted config's client is closed like a replaced one."""
        built = self._built.pop(config_id, None) if row is None else None
        if built is not None:
            self._retired.append((self.clock() + self.linger_seconds, built[1]))

    def _provider(self, config: RowMapping) -> Provider:
        built = self._built.get(config["id"])
        if built is not None and built[0] == config["version"]:
            return built[1]
        try:
            provider = self.configs.build(self.configs.specs[config["provider"]], config)
        except (ServiceError, SecretDecryptError) as exc:
            log.error(
                "provider_config.unusable",
                configId=config["id"],
                tenantId=config["tenant_id"],
                error=type(exc).__name__,
            )
            return Unavailable(config["provider"], Outcome.RETRYABLE, _unusable(exc))
        if built is not None:
            self._retired.append((self.clock() + self.linger_seconds, built[1]))
        self._built[config["id"]] = (config["version"], provider)
        return provider

    async def _close_retired(self) -> None:
        """Close replaced providers once no send started before the change can be running."""
        if not self._retired:
            return
        now = self.clock()
        due = [provider for when, provider in self._retired if when <= now]
        self._retired = [(when, p) for when, p in self._retired if when > now]
        for provider in due:
            await provider.close()


def _unusable(exc: Exception) -> str:
    reason = exc.message if isinstance(exc, ServiceError) else str(exc)
    return f"the tenant's provider config cannot be used: {reason}"
