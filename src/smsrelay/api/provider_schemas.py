"""Bodies of the provider config API (`/api/providers`), in camelCase; never a secret's value."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from smsrelay.api.schemas import ApiModel
from smsrelay.providers.registry import TENANT_CONFIGS
from smsrelay.services.provider_configs import ProviderConfig


def _fields_help() -> str:
    """Each provider's fields, from its package's spec (secrets marked)."""
    lines = []
    for name, spec in TENANT_CONFIGS.items():
        fields = ", ".join(
            f"`{f.name}`"
            + (" (secret)" if f.secret else "")
            + ("" if f.required else " (optional)")
            for f in spec.fields
        )
        lines.append(f"- {name}: {fields}")
    return "The provider's fields, all strings:\n" + "\n".join(lines)


CONFIG_FIELDS_HELP = _fields_help()


class SecretOut(ApiModel):
    is_set: bool = Field(alias="set", description="A value is stored (encrypted)")
    last4: str | None = Field(description="Its last 4 characters, for long secrets only")


class ProviderConfigOut(ApiModel):
    config_id: str
    provider: str
    settings: dict[str, str] = Field(description="The non-secret fields")
    secrets: dict[str, SecretOut] = Field(description="The secret fields, never their values")
    verified: bool = Field(description="Messages use this account only once verified")
    verified_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class SavedProviderConfigOut(ProviderConfigOut):
    webhook_token: str | None = Field(
        default=None, description="Secret token of the delivery-report URL: shown this once"
    )
    webhook_url: str | None = Field(default=None, description="Where the provider posts reports")


class ProviderConfigListOut(ApiModel):
    items: list[ProviderConfigOut]
    providers: list[str] = Field(description="The providers a tenant may configure")


def config_out(config: ProviderConfig) -> ProviderConfigOut:
    return ProviderConfigOut(
        config_id=config.config_id,
        provider=config.provider,
        settings=config.settings,
        secrets={
            name: SecretOut(is_set=info.is_set, last4=info.last4)
            for name, info in config.secrets.items()
        },
        verified=config.verified_at is not None,
        verified_at=config.verified_at,
        version=config.version,
        created_at=config.created_at,
        updated_at=config.updated_at,
    )


def saved_out(config: ProviderConfig, public_url: str) -> SavedProviderConfigOut:
    token = config.webhook_token
    url = f"{public_url}/api/webhooks/{config.provider}/{token}" if token else None
    return SavedProviderConfigOut(
        **config_out(config).model_dump(), webhook_token=token, webhook_url=url
    )
