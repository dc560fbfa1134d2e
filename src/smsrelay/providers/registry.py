"""The provider registry: one line per provider, mapping a name to the function that builds it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from smsrelay.config import Settings
from smsrelay.providers.base import Provider, ProviderConfigError
from smsrelay.providers.msg91 import ENV_VARS, Msg91Config, Msg91Provider
from smsrelay.providers.msg91.tenant_config import TENANT_CONFIG as MSG91_TENANT_CONFIG
from smsrelay.providers.simulator.config import SimulatorConfig
from smsrelay.providers.simulator.server import SimulatorServer
from smsrelay.providers.tenant_config import TenantConfigSpec
from smsrelay.providers.twilio.adapter import TwilioProvider
from smsrelay.providers.twilio.tenant_config import TENANT_CONFIG as TWILIO_TENANT_CONFIG


@dataclass
class ProviderSetup:
    """A ready provider, the auth tokens its webhooks are signed with, and what to shut down."""

    provider: Provider
    webhook_auth_tokens: tuple[str, ...]
    simulator: SimulatorServer | None = None
    simulator_url: str | None = None
    # For sender pacing: the sender used when a message names none, and whether the provider is
    # a carrier whose default rates per sender kind apply (the simulator is not; docs/pacing.md).
    default_sender: str | None = None
    paced_by_default: bool = True
    _closed: bool = field(default=False, repr=False)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.provider.close()
        if self.simulator is not None:
            await self.simulator.stop()


async def _twilio(settings: Settings) -> ProviderSetup:
    missing = [
        name
        for name, value in (
            ("TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
            ("TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
        )
        if not value
    ]
    if missing:
        raise ProviderConfigError(f"Twilio needs {' and '.join(missing)}", tuple(missing))
    assert settings.twilio_account_sid and settings.twilio_auth_token
    token = settings.twilio_auth_token.get_secret_value()
    provider = TwilioProvider(
        account_sid=settings.twilio_account_sid,
        auth_token=token,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        from_number=settings.twilio_from_phone_number,
        api_base_url=settings.twilio_api_base_url,
        timeout_seconds=settings.provider_timeout_seconds,
    )
    default_sender = settings.twilio_messaging_service_sid or settings.twilio_from_phone_number
    carrier = _host_within(settings.twilio_api_base_url, "twilio.com")
    return ProviderSetup(
        provider, (token,), default_sender=default_sender, paced_by_default=carrier
    )


async def _simulator(settings: Settings) -> ProviderSetup:
    """An in-process Twilio-compatible simulator, driven through the real Twilio adapter."""
    config = SimulatorConfig(step_delay=settings.simulator_step_delay)
    from_number = settings.twilio_from_phone_number or "+15005550006"
    server = SimulatorServer(config)
    url = await server.start("127.0.0.1", settings.simulator_port)
    provider = TwilioProvider(
        account_sid=config.account_sid,
        auth_token=config.auth_token,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        from_number=from_number,
        api_base_url=url,
        timeout_seconds=settings.provider_timeout_seconds,
    )
    provider.name = "simulator"
    return ProviderSetup(
        provider,
        (config.auth_token,),
        simulator=server,
        simulator_url=url,
        default_sender=settings.twilio_messaging_service_sid or from_number,
        paced_by_default=False,
    )


def _host_within(url: str, domain: str) -> bool:
    """True when `url` is the provider's own service (not a simulator or a test double)."""
    host = (urlsplit(url).hostname or "").lower()
    return host == domain or host.endswith("." + domain)


def msg91_config(settings: Settings) -> Msg91Config:
    """MSG91's settings, or `ProviderConfigError` naming every variable missing or malformed."""
    values = {
        "auth_key": settings.msg91_auth_key.get_secret_value() if settings.msg91_auth_key else "",
        "sender_id": settings.msg91_sender_id or "",
        "dlt_entity_id": settings.msg91_dlt_entity_id or "",
        "template_id": settings.msg91_template_id or "",
    }
    missing = tuple(ENV_VARS[name] for name, value in values.items() if not value)
    if missing:
        raise ProviderConfigError(f"MSG91 needs {', '.join(missing)}", missing)
    return Msg91Config(**values, api_base_url=settings.msg91_api_base_url)


async def _msg91(settings: Settings) -> ProviderSetup:
    provider = Msg91Provider(
        msg91_config(settings), timeout_seconds=settings.provider_timeout_seconds
    )
    # MSG91 does not sign; its webhook checks a URL token.
    return ProviderSetup(
        provider,
        (),
        default_sender=settings.msg91_sender_id,
        paced_by_default=_host_within(settings.msg91_api_base_url, "msg91.com"),
    )


PROVIDERS: dict[str, Callable[[Settings], Awaitable[ProviderSetup]]] = {
    "twilio": _twilio,
    "simulator": _simulator,
    "msg91": _msg91,
}


# The providers a tenant may configure with its own account (see providers.tenant_config).
TENANT_CONFIGS: dict[str, TenantConfigSpec] = {
    "twilio": TWILIO_TENANT_CONFIG,
    "msg91": MSG91_TENANT_CONFIG,
}


# Whether a provider's settings are complete enough to route messages to it (see domain.routing).
CONFIGURED: dict[str, Callable[[Settings], bool]] = {
    "msg91": lambda settings: settings.msg91_configured,
}


def configured_providers(settings: Settings) -> set[str]:
    """The main provider and every other provider whose settings are all present."""
    extra = {name for name, is_configured in CONFIGURED.items() if is_configured(settings)}
    return {settings.effective_provider} | extra


async def build_provider(name: str, settings: Settings) -> ProviderSetup:
    """Build the named provider from settings, or raise `ProviderConfigError`."""
    factory = PROVIDERS.get(name)
    if factory is None:
        raise ProviderConfigError(f"unknown provider {name!r}", ("SMSRELAY_PROVIDER",))
    return await factory(settings)
