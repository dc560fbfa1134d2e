"""A tenant's own MSG91 account: its fields (checked by `config_problems`) and its adapter."""

from __future__ import annotations

from collections.abc import Mapping

from smsrelay.config import Settings
from smsrelay.providers.base import Provider
from smsrelay.providers.msg91.adapter import Msg91Config, Msg91Provider, config_problems
from smsrelay.providers.tenant_config import ConfigField, Problem, TenantConfigSpec

# API field name -> Msg91Config field, whose shape `config_problems` checks.
CONFIG_NAMES = {
    "authKey": "auth_key",
    "senderId": "sender_id",
    "dltEntityId": "dlt_entity_id",
    "templateId": "template_id",
}

FIELDS = (
    ConfigField("authKey", "The MSG91 auth key", secret=True),
    ConfigField("senderId", "The DLT-registered 6-character sender header"),
    ConfigField("dltEntityId", "The DLT principal entity (PE) id, digits only"),
    ConfigField("templateId", "MSG91's flow template id, linked to the DLT template"),
)
_API_NAMES = {config: api for api, config in CONFIG_NAMES.items()}


def _problems(values: Mapping[str, str]) -> list[Problem]:
    config = {CONFIG_NAMES[name]: value for name, value in values.items() if name in CONFIG_NAMES}
    return [(_API_NAMES[name], problem) for name, problem in config_problems(config)]


def _build(values: Mapping[str, str], settings: Settings) -> Provider:
    config = Msg91Config(
        **{CONFIG_NAMES[name]: value for name, value in values.items()},
        api_base_url=settings.msg91_api_base_url,
    )
    return Msg91Provider(config, timeout_seconds=settings.provider_timeout_seconds)


TENANT_CONFIG = TenantConfigSpec(
    provider="msg91",
    fields=FIELDS,
    build=_build,
    problems=_problems,
    issues_webhook_token=True,  # MSG91 does not sign its delivery reports
    can_look_up_messages=Msg91Provider.can_look_up_messages,
)
