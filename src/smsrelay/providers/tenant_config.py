"""What a provider package declares so a tenant can use its own account: fields, checks, builder.

Each provider that tenants may configure ships one `TenantConfigSpec` beside its adapter and
adds one line to `registry.TENANT_CONFIGS`. Nothing outside the provider's package knows its
field names: services, routes and the CLI read them from the spec.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from smsrelay.config import Settings
from smsrelay.providers.base import Provider

# One problem with a config: (the field's API name, what to change).
Problem = tuple[str, str]
_PRINTABLE = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True, slots=True)
class ConfigField:
    """One field of a provider config, named as the API and CLI show it (camelCase)."""

    name: str
    description: str
    secret: bool = False
    required: bool = True
    pattern: re.Pattern[str] = _PRINTABLE
    problem: str = "must be printable characters without spaces"
    max_length: int = 200

    def check(self, value: str) -> str | None:
        """What is wrong with `value`, or None."""
        if len(value) > self.max_length:
            return f"must be at most {self.max_length} characters"
        return None if self.pattern.fullmatch(value) else self.problem


@dataclass(frozen=True, slots=True)
class TenantConfigSpec:
    """A provider's tenant config: its fields, whole-config checks, and how to build it.

    `account_field` names the field a provider's callbacks carry to identify the account
    (Twilio's AccountSid) and `signing_field` the secret they are signed with; a provider that
    does not sign (`issues_webhook_token`) gets a secret token in its webhook URL instead.
    `serves_every_region`: once verified, it carries the tenant's messages to every country
    that has no route of its own (see domain.routing).
    """

    provider: str
    fields: tuple[ConfigField, ...]
    build: Callable[[Mapping[str, str], Settings], Provider]
    problems: Callable[[Mapping[str, str]], list[Problem]] = field(default=lambda _: [])
    account_field: str | None = None
    signing_field: str | None = None
    issues_webhook_token: bool = False
    serves_every_region: bool = False
    can_look_up_messages: bool = True

    @property
    def secret_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.secret)

    def field_problems(self, values: Mapping[str, str]) -> list[Problem]:
        """Every problem with `values`: unknown, missing or malformed fields, then the rest."""
        known = {f.name: f for f in self.fields}
        found = [(name, "is not a known field; remove it") for name in values if name not in known]
        for spec in self.fields:
            value = values.get(spec.name)
            if value is None:
                if spec.required:
                    found.append((spec.name, "is required"))
                continue
            problem = spec.check(value)
            if problem is not None:
                found.append((spec.name, problem))
        return found or self.problems(values)
