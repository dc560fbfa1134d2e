"""Compose smsrelay from one `Settings`: database, providers, dispatcher, limiters."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from smsrelay.config import Settings
from smsrelay.dispatch.alerts import AlertLoop
from smsrelay.dispatch.buckets import Buckets, RedisBuckets
from smsrelay.dispatch.bulk_expander import BulkExpander, ExpanderConfig
from smsrelay.dispatch.dispatcher import DispatchConfig, Dispatcher
from smsrelay.dispatch.pacing import PacingConfig, ProviderSenders, SenderPacer, horizon_for
from smsrelay.dispatch.retry import RetryPolicy
from smsrelay.domain import routing, throughput
from smsrelay.domain.messages import OutboxEntry
from smsrelay.logs import get_logger
from smsrelay.providers.base import Provider, ProviderConfigError
from smsrelay.providers.registry import ProviderSetup, build_provider, configured_providers
from smsrelay.services.alert_delivery import AlertDelivery, smtp_target
from smsrelay.services.alerts import AlertNetwork
from smsrelay.services.balances import debit_messages
from smsrelay.services.delivery import StatusUpdate, status_update_group
from smsrelay.services.prices import TenantPolicies, tenant_policy
from smsrelay.services.provider_configs import ProviderConfigs
from smsrelay.services.provider_pool import ProviderPool
from smsrelay.services.ratelimit import RateLimiter
from smsrelay.services.secrets import SecretBox
from smsrelay.services.submit import Submission, SubmitPolicy, write_submissions
from smsrelay.services.tenants import KeyCache
from smsrelay.store.database import Database
from smsrelay.store.group_commit import GroupCommit
from smsrelay.store.pacing import DatabaseBuckets

log = get_logger("smsrelay.bootstrap")


@dataclass
class Container:
    """Everything a process needs, built once; API, CLI, worker and tests share it."""

    settings: Settings
    db: Database
    provider_name: str
    provider_configs: ProviderConfigs
    pool: ProviderPool
    setup: ProviderSetup | None = None
    routed_setups: dict[str, ProviderSetup] = field(default_factory=dict)
    dispatcher: Dispatcher | None = None
    bulk_expander: BulkExpander | None = None
    test_sms_limiter: RateLimiter | None = None
    api_key_limiter: RateLimiter | None = None
    alert_network: AlertNetwork | None = None
    alert_loop: AlertLoop | None = None
    key_cache: KeyCache = field(default_factory=KeyCache)
    # Single sends accepted together are stored in one transaction (store/group_commit.py).
    submissions: GroupCommit[Submission, OutboxEntry] = field(init=False)
    # Status callbacks that arrive together are applied in one transaction (services/delivery.py).
    status_updates: GroupCommit[StatusUpdate, str] = field(init=False)
    # Each tenant's prices and provider accounts, read once every few seconds, not per send.
    policies: TenantPolicies = field(init=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.submissions = GroupCommit(self.db, write_submissions)
        self.status_updates = status_update_group(self.db)
        self.policies = TenantPolicies(self.db)
        self.provider_configs.changed.append(self.policies.forget)

    async def policy_for(self, tenant_id: str) -> SubmitPolicy:
        """The submit policy for `tenant_id`'s messages (its terms at most seconds old)."""
        return await self.policies.policy(self.submit_policy, tenant_id)

    @property
    def provider(self) -> Provider:
        if self.setup is None:
            raise RuntimeError("container not started")
        return self.setup.provider

    @property
    def providers(self) -> dict[str, Provider]:
        """Every provider messages may be routed to, by name (the main one first)."""
        return {self.provider_name: self.provider} | {
            name: setup.provider for name, setup in self.routed_setups.items()
        }

    @property
    def webhook_auth_tokens(self) -> list[str]:
        return [token for setup in self._setups() for token in setup.webhook_auth_tokens]

    def setups_by_name(self) -> dict[str, ProviderSetup]:
        main = {} if self.setup is None else {self.provider_name: self.setup}
        return main | self.routed_setups

    def _setups(self) -> list[ProviderSetup]:
        main = [] if self.setup is None else [self.setup]
        return main + list(self.routed_setups.values())

    @property
    def submit_policy(self) -> SubmitPolicy:
        return submit_policy(self.settings)

    async def start(
        self, *, migrate: bool | None = None, dispatch: bool = False, alerts: bool | None = None
    ) -> None:
        """Migrate (SQLite by default), build the provider, optionally run the dispatcher and
        (with it, unless `alerts` says otherwise) the balance and alert loop."""
        if migrate if migrate is not None else self.db.is_sqlite:
            await self.db.migrate()
        self.setup = await start_provider(self.settings, self.provider_name)
        await self._start_routed_providers()
        self.pool.platform = self.providers
        self.dispatcher = build_dispatcher(self)
        if dispatch:
            self._tasks.append(asyncio.create_task(self.dispatcher.run()))
        self.bulk_expander = build_bulk_expander(self)
        if dispatch:
            self.run_bulk_expander()
        self.alert_loop = build_alert_loop(self)
        if dispatch if alerts is None else alerts:
            self._tasks.append(asyncio.create_task(self.alert_loop.run()))

    async def _start_routed_providers(self) -> None:
        """The providers that routes name besides the main one; none left running on failure."""
        try:
            for name in set(self.submit_policy.routes.values()) - {self.provider_name}:
                self.routed_setups[name] = await start_provider(self.settings, name)
        except BaseException:
            for setup in self._setups():
                await setup.close()
            raise

    def run_bulk_expander(self) -> None:
        """Expand accepted bulks into outbox rows in the background (serve and worker)."""
        assert self.bulk_expander is not None, "container not started"
        self._tasks.append(asyncio.create_task(self.bulk_expander.run()))

    async def stop(self) -> None:
        await self.submissions.close()
        await self.status_updates.close()
        if self.bulk_expander is not None:
            await self.bulk_expander.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
            await self.dispatcher.pacer.close()
        if self.alert_loop is not None:
            self.alert_loop.stop()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=15)
        if self.alert_loop is not None:
            await self.alert_loop.delivery.close()
        await self.pool.close()
        for setup in self._setups():
            await setup.close()
        for limiter in (self.test_sms_limiter, self.api_key_limiter):
            if limiter is not None:
                await limiter.close()
        await self.db.dispose()


def submit_policy(settings: Settings) -> SubmitPolicy:
    """The rules every new message is checked against, from settings."""
    return SubmitPolicy(
        provider=settings.effective_provider,
        routes=routing.routes_for(configured_providers(settings)),
        default_region=settings.default_region,
        max_characters=settings.max_message_chars,
        max_segments=settings.max_message_segments,
        default_sender=settings.twilio_messaging_service_sid or settings.twilio_from_phone_number,
    )


def bootstrap(settings: Settings) -> Container:
    """Build (but do not start) the container for `settings`."""
    db = Database(settings.database_url)
    configs = build_provider_configs(settings, db)
    # A replaced tenant provider lingers until no send started on it can still be running.
    pool = ProviderPool(configs, linger_seconds=2 * settings.provider_timeout_seconds + 5)
    configs.changed.append(pool.forget)
    return Container(
        settings=settings,
        db=db,
        provider_name=settings.effective_provider,
        provider_configs=configs,
        pool=pool,
        test_sms_limiter=RateLimiter(settings.test_sms_limit, settings.redis_url),
        api_key_limiter=RateLimiter(settings.api_key_rate_limit, settings.redis_url),
        alert_network=AlertNetwork(
            allow_http=settings.is_development, timeout_seconds=settings.alert_timeout_seconds
        ),
    )


def build_provider_configs(settings: Settings, db: Database) -> ProviderConfigs:
    """Tenants' own provider accounts, their secrets sealed with SMSRELAY_SECRET_KEYS (if set)."""
    box = SecretBox(settings.secret_keys) if settings.secret_keys else None
    return ProviderConfigs(db, settings, box)


async def start_provider(settings: Settings, name: str) -> ProviderSetup:
    """Build the provider; a misconfiguration is logged with the variables to set, then raised."""
    try:
        return await build_provider(name, settings)
    except ProviderConfigError as exc:
        log.error(
            "notifications.sms.provider_misconfigured",
            provider=name,
            missingVariables=list(exc.missing),
            channel="sms",
            templateKey=None,
            recipient=None,
        )
        raise


def build_dispatcher(container: Container) -> Dispatcher:
    settings = container.settings
    config = DispatchConfig(
        batch_size=settings.dispatch_batch_size,
        concurrency=settings.dispatch_concurrency,
        lease_seconds=settings.lease_seconds,
        poll_seconds=settings.dispatch_poll_seconds,
        reconcile_after_seconds=settings.reconcile_after_seconds,
        status_callback_url=settings.status_callback_url,
        status_check_after_seconds=settings.status_check_after_seconds,
    )
    return Dispatcher(
        container.db,
        container.pool,
        config=config,
        policy=RetryPolicy(max_attempts=settings.max_attempts),
        pacer=build_pacer(container),
    )


def build_pacer(container: Container) -> SenderPacer:
    """Sender pacing shared through Redis when configured, else through the database."""
    settings = container.settings
    buckets: Buckets = (
        RedisBuckets(settings.redis_url) if settings.redis_url else DatabaseBuckets(container.db)
    )
    senders = {
        name: ProviderSenders(_canonical(setup.default_sender), setup.paced_by_default)
        for name, setup in container.setups_by_name().items()
    }
    config = PacingConfig(
        providers=senders,
        overrides=throughput.parse_overrides(settings.sender_throughput),
        guard_seconds=settings.pacing_guard_seconds,
        tolerance_seconds=settings.pacing_tolerance_seconds,
        horizon_seconds=horizon_for(settings.lease_seconds, settings.pacing_horizon_seconds),
        trace=settings.pacing_trace,
    )
    return SenderPacer(container.db, buckets, config)


def _canonical(sender: str | None) -> str | None:
    """A configured default sender as messages store senders (E.164), when it parses."""
    if not sender:
        return None
    try:
        return throughput.canonical_sender(sender)
    except ValueError:
        return sender.strip()


def build_alert_loop(container: Container) -> AlertLoop:
    """Refunds, failed-SMS alerts and alert deliveries (docs/balances-and-alerts.md)."""
    settings = container.settings
    delivery = AlertDelivery(
        container.db,
        container.alert_network or AlertNetwork(allow_http=settings.is_development),
        secret_keys=settings.secret_keys,
        smtp=smtp_target(settings.smtp_url.get_secret_value() if settings.smtp_url else None),
        email_from=settings.alert_email_from,
        max_attempts=settings.alert_max_attempts,
    )
    return AlertLoop(container.db, delivery, poll_seconds=settings.alert_poll_seconds)


def build_bulk_expander(container: Container) -> BulkExpander:
    settings = container.settings
    config = ExpanderConfig(
        chunk_size=settings.bulk_chunk_size,
        lease_seconds=settings.lease_seconds,
        poll_seconds=max(settings.dispatch_poll_seconds, 0.5),
    )

    async def policy_for(tenant_id: str) -> SubmitPolicy:
        return await tenant_policy(container.db, container.submit_policy, tenant_id)

    dispatcher = container.dispatcher
    return BulkExpander(
        container.db,
        policy_for,
        config=config,
        debit=debit_messages,
        on_written=dispatcher.wake if dispatcher is not None else None,
    )
