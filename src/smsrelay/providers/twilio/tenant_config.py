"""A tenant's own Twilio account: its fields, their shapes, and the adapter built from them."""

from __future__ import annotations

import re
from collections.abc import Mapping

from smsrelay.config import Settings
from smsrelay.providers.base import Provider
from smsrelay.providers.tenant_config import ConfigField, Problem, TenantConfigSpec
from smsrelay.providers.twilio.adapter import TwilioProvider

# SIDs are two letters and 32 hex digits (twilio-oai: AccountSid ^AC[0-9a-fA-F]{32}$,
# MessagingServiceSid ^MG[0-9a-fA-F]{32}$).
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")

FIELDS = (
    ConfigField(
        "accountSid",
        "The account SID (AC + 32 hex digits)",
        pattern=_ACCOUNT_SID,
        problem="must be AC followed by 32 hex digits (Twilio Console, Account Info)",
    ),
    ConfigField("authToken", "The account's auth token", secret=True),
    ConfigField(
        "messagingServiceSid",
        "Messaging Service SID (MG + 32 hex digits); preferred over fromNumber",
        required=False,
        pattern=_SERVICE_SID,
        problem="must be MG followed by 32 hex digits",
    ),
    ConfigField(
        "fromNumber",
        "A Twilio number in E.164 form, used when no Messaging Service is set",
        required=False,
        pattern=_E164,
        problem="must be an E.164 number such as +14155550123",
    ),
)


def _problems(values: Mapping[str, str]) -> list[Problem]:
    if values.get("messagingServiceSid") or values.get("fromNumber"):
        return []
    return [("messagingServiceSid", "set messagingServiceSid (preferred) or fromNumber")]


def _build(values: Mapping[str, str], settings: Settings) -> Provider:
    return TwilioProvider(
        account_sid=values["accountSid"],
        auth_token=values["authToken"],
        messaging_service_sid=values.get("messagingServiceSid"),
        from_number=values.get("fromNumber"),
        api_base_url=settings.twilio_api_base_url,
        timeout_seconds=settings.provider_timeout_seconds,
    )


TENANT_CONFIG = TenantConfigSpec(
    provider="twilio",
    fields=FIELDS,
    build=_build,
    problems=_problems,
    account_field="accountSid",
    signing_field="authToken",
    serves_every_region=True,
    can_look_up_messages=TwilioProvider.can_look_up_messages,
)
