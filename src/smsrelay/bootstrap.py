"""Compose smsrelay from one `Settings`: database, providers, dispatcher, limiters."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from smsrelay.config import Settings
from smsrelay.dispatch.dispatcher import DispatchConfig, Dispatcher
from smsrelay.dispatch.retry import RetryPolicy
from smsrelay.logs import get_logger
from smsrelay.providers.base import Provider, ProviderConfigError
from smsrelay.providers.registry import ProviderSetup, build_provider
from smsrelay.services.ratelimit import RateLimiter
from smsrelay.services.submit import SubmitPolicy
from smsrelay.store.database import Database

log = get_logger("smsrelay.bootstrap")


@dataclass
class Container:
    """Everything a process needs, built once; API, CLI, worker and tests share it."""

    settings: Settings
    db: Database
    provider_name: str
    setup: ProviderSetup | None = None
    dispatcher: Dispatcher | None = None
    test_sms_limiter: RateLimiter | None = None
    api_key_limiter: RateLimiter | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def provider(self) -> Provider:
        if self.setup is None:
            raise RuntimeError("container not started")
        return self.setup.provider

    @property
    def webhook_auth_tokens(self) -> list[str]:
        return [] if self.setup is None else list(self.setup.webhook_auth_tokens)

    @property
    def submit_policy(self) -> SubmitPolicy:
        return submit_policy(self.settings)

    async def start(self, *, migrate: bool | None = None, dispatch: bool = False) -> None:
        """Migrate (SQLite by default), build the provider, optionally run the dispatcher."""
        if migrate if migrate is not None else self.db.is_sqlite:
            await self.db.migrate()
        self.setup = await start_provider(self.settings, self.provider_name)
        self.dispatcher = build_dispatcher(self)
        if dispatch:
            self._tasks.append(asyncio.create_task(self.dispatcher.run()))

    async def stop(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=15)
        if self.setup is not None:
            await self.setup.close()
        for limiter in (self.test_sms_limiter, self.api_key_limiter):
            if limiter is not None:
                await limiter.close()
        await self.db.dispose()


def submit_policy(settings: Settings) -> SubmitPolicy:
    """The rules every new message is checked against, from settings."""
    return SubmitPolicy(
        provider=settings.effective_provider,
        default_region=settings.default_region,
        max_characters=settings.max_message_chars,
        max_segments=settings.max_message_segments,
        default_sender=settings.twilio_messaging_service_sid or settings.twilio_from_phone_number,
    )


def bootstrap(settings: Settings) -> Container:
    """Build (but do not start) the container for `settings`."""
    return Container(
        settings=settings,
        db=Database(settings.database_url),
        provider_name=settings.effective_provider,
        test_sms_limiter=RateLimiter(settings.test_sms_limit, settings.redis_url),
        api_key_limiter=RateLimiter(settings.api_key_rate_limit, settings.redis_url),
    )


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
        {container.provider_name: container.provider},
        config=config,
        policy=RetryPolicy(max_attempts=settings.max_attempts),
    )
