"""A tenant's own provider accounts: save (secrets encrypted), show, verify, remove, rotate keys.

Errors (besides NotFound and InvalidRequest naming the field):
    SecretKeysNotConfigured (Conflict)  SMSRELAY_SECRET_KEYS is unset: nothing can be saved
    CredentialsRejected                 the provider refused the credentials at `verify`
    ProviderUnreachable                 the provider gave no answer at `verify`
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from smsrelay.config import Settings
from smsrelay.domain import routing
from smsrelay.logs import get_logger
from smsrelay.providers.base import Provider, ProviderConfigError
from smsrelay.providers.registry import TENANT_CONFIGS
from smsrelay.providers.tenant_config import TenantConfigSpec
from smsrelay.services.delivery import MessageScope
from smsrelay.services.errors import Conflict, InvalidRequest, NotFound, ServiceError
from smsrelay.services.read_cache import ReadCache
from smsrelay.services.secrets import ENV_VAR, GENERATE_COMMAND, SecretBox, SecretDecryptError
from smsrelay.services.submit import SubmitPolicy
from smsrelay.store.database import Database
from smsrelay.store.provider_configs import ProviderConfigRepository
from smsrelay.store.tenants import TenantRepository

log = get_logger("smsrelay.provider_configs")
HINT_MIN_LENGTH = 16  # shorter secrets show no characters at all
MAX_LISTED = 20  # problems listed in an error's details


class SecretKeysNotConfigured(Conflict):
    code = "secret_keys_not_configured"


class CredentialsRejected(ServiceError):
    code = "credentials_rejected"


class ProviderUnreachable(ServiceError):
    code = "provider_unreachable"


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What may be shown of a stored secret: that it is set, and at most its last 4 characters."""

    is_set: bool
    last4: str | None


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """A tenant's config as callers see it: never a secret (the webhook token only once)."""

    config_id: str
    tenant_id: str
    provider: str
    settings: dict[str, str]
    secrets: dict[str, SecretInfo]
    version: int
    created_at: datetime
    updated_at: datetime
    verified_at: datetime | None
    webhook_token: str | None = None


@dataclass(frozen=True, slots=True)
class Signer:
    """A key a provider's callbacks may be signed with, and the tenant whose key it is."""

    token: str = field(repr=False)
    tenant_id: str


# How long an account's webhook signing keys are used without reading them again.
SIGNER_CACHE_SECONDS = 2.0


def spec_for(
    provider: str, specs: Mapping[str, TenantConfigSpec] = TENANT_CONFIGS
) -> TenantConfigSpec:
    """The provider's tenant config spec; `NotFound` listing the known providers otherwise."""
    spec = specs.get(provider)
    if spec is None:
        known = ", ".join(sorted(specs))
        raise NotFound(f"no provider {provider!r} takes a tenant config; use one of {known}")
    return spec


def webhook_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass
class ProviderConfigs:
    """The use cases on tenants' provider configs; `changed` hears of every tenant it touches."""

    db: Database
    settings: Settings
    box: SecretBox | None
    specs: Mapping[str, TenantConfigSpec] = field(default_factory=lambda: TENANT_CONFIGS)
    changed: list[Callable[[str], None]] = field(default_factory=list)
    # Each (provider, account)'s signing keys, read and decrypted at most every 2 s.
    signers: ReadCache[tuple[str, str], list[Signer]] = field(
        default_factory=lambda: ReadCache(SIGNER_CACHE_SECONDS)
    )

    async def save(
        self, tenant_id: str, provider: str, values: Mapping[str, Any], now: datetime
    ) -> ProviderConfig:
        """Create or replace (unverified until `verify`); MSG91-like providers get a URL token."""
        spec = spec_for(provider, self.specs)
        given = _checked(spec, values)
        sealed = self._box().encrypt(json.dumps({n: given[n] for n in spec.secret_fields}))
        stored: dict[str, Any] = {
            "account_id": given.get(spec.account_field) if spec.account_field else None,
            "settings": {n: v for n, v in given.items() if n not in spec.secret_fields},
            "secrets": sealed,
            "secret_hints": {n: _hint(given[n]) for n in spec.secret_fields},
        }
        async with self.db.transaction() as connection:
            if not await TenantRepository(connection).tenant_exists(tenant_id):
                raise NotFound(f"no tenant {tenant_id!r}")
            repository = ProviderConfigRepository(connection)
            token = await _new_webhook_token(repository, spec, tenant_id)
            if token is not None:
                stored["webhook_token_hash"] = webhook_token_hash(token)
            row, _ = await repository.save(tenant_id, provider, stored, now)
        self._announce(tenant_id)
        log.info(
            "provider_config.saved", tenantId=tenant_id, provider=provider, version=row["version"]
        )
        return replace(_config(row), webhook_token=token)

    async def list_for(self, tenant_id: str) -> list[ProviderConfig]:
        async with self.db.reading() as connection:
            rows = await ProviderConfigRepository(connection).all(tenant_id)
        return [_config(row) for row in rows]

    async def get(self, tenant_id: str, provider: str) -> ProviderConfig:
        return _config(await self._row(tenant_id, provider))

    async def delete(self, tenant_id: str, provider: str) -> None:
        spec_for(provider, self.specs)
        async with self.db.transaction() as connection:
            removed = await ProviderConfigRepository(connection).remove(tenant_id, provider)
        if not removed:
            raise _no_config(provider)
        self._announce(tenant_id)
        log.info("provider_config.deleted", tenantId=tenant_id, provider=provider)

    async def verify(self, tenant_id: str, provider: str, now: datetime) -> ProviderConfig:
        """Ask the provider whether the credentials work; verified only if they do."""
        spec = spec_for(provider, self.specs)
        row = await self._row(tenant_id, provider)
        client = self.build(spec, row)
        try:
            await _ask_provider(spec, client, self.settings.provider_timeout_seconds)
        finally:
            await client.close()
        async with self.db.transaction() as connection:
            repository = ProviderConfigRepository(connection)
            if not await repository.mark_verified(row["id"], row["version"], now):
                raise Conflict("the config changed while it was being verified; verify it again")
            verified = await repository.get_by_id(row["id"])
        assert verified is not None
        self._announce(tenant_id)
        log.info("provider_config.verified", tenantId=tenant_id, provider=provider)
        return _config(verified)

    def build(self, spec: TenantConfigSpec, row: RowMapping) -> Provider:
        """The provider for a stored config (its secrets decrypted only here)."""
        values = {**row["settings"], **json.loads(self._box().decrypt(row["secrets"]))}
        try:
            return spec.build(values, self.settings)
        except ProviderConfigError as exc:  # stored before a stricter check: save it again
            raise InvalidRequest(provider_field(spec), str(exc)) from exc

    async def rotate(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Re-encrypt every stored secret with the newest key; all or nothing. Returns how many."""
        box = self._box()
        async with self.db.transaction() as connection:
            repository = ProviderConfigRepository(connection)
            sealed = await repository.sealed_secrets()
            for done, (config_id, token) in enumerate(sealed, start=1):
                await repository.reseal(config_id, box.rotate(token))
                if progress is not None:
                    progress(done, len(sealed))
        log.info("provider_config.secrets_rotated", count=len(sealed))
        return len(sealed)

    async def signing_scope(
        self,
        provider: str,
        account_id: str | None,
        platform_tokens: Sequence[str],
        is_signed_with: Callable[[str], bool],
    ) -> MessageScope | None:
        """The messages a signed callback may change: those of every key that signed it.

        The candidates are the platform's keys and the tenants' whose config names
        `account_id`; None when none of them signed it.
        """
        platform = any(is_signed_with(token) for token in platform_tokens)
        tenants = frozenset(
            signer.tenant_id
            for signer in await self._signers(provider, account_id)
            if is_signed_with(signer.token)
        )
        if not platform and not tenants:
            return None
        return MessageScope(platform=platform, tenant_ids=tenants, provider=provider)

    async def _signers(self, provider: str, account_id: str | None) -> list[Signer]:
        spec = self.specs.get(provider)
        if spec is None or spec.signing_field is None or not account_id or self.box is None:
            return []

        async def read() -> list[Signer]:
            async with self.db.reading() as connection:
                rows = await ProviderConfigRepository(connection).by_account(provider, account_id)
            return [signer for row in rows if (signer := self._signer(spec, row)) is not None]

        return await self.signers.get((provider, account_id), read)

    def _signer(self, spec: TenantConfigSpec, row: RowMapping) -> Signer | None:
        """The config's signing key; None (logged) when no configured key can read it."""
        assert self.box is not None and spec.signing_field is not None
        try:
            sealed = json.loads(self.box.decrypt(row["secrets"]))
        except SecretDecryptError:
            log.error("provider_config.unusable", configId=row["id"], tenantId=row["tenant_id"])
            return None
        return Signer(sealed[spec.signing_field], row["tenant_id"])

    async def webhook_token_scope(
        self, provider: str, token: str, platform_token: str | None
    ) -> MessageScope | None:
        """The messages a webhook URL token may report on, or None when it is no one's."""
        if platform_token is not None and hmac.compare_digest(
            token.encode(), platform_token.encode()
        ):
            return MessageScope(platform=True)
        wanted = webhook_token_hash(token)
        async with self.db.reading() as connection:
            row = await ProviderConfigRepository(connection).by_webhook_token_hash(provider, wanted)
        if row is None or not hmac.compare_digest(row["webhook_token_hash"], wanted):
            return None
        return MessageScope(tenant_ids=frozenset({row["tenant_id"]}), provider=provider)

    async def _row(self, tenant_id: str, provider: str) -> RowMapping:
        spec_for(provider, self.specs)
        async with self.db.reading() as connection:
            row = await ProviderConfigRepository(connection).get(tenant_id, provider)
        if row is None:
            raise _no_config(provider)
        return row

    def _box(self) -> SecretBox:
        if self.box is None:
            raise SecretKeysNotConfigured(
                f"{ENV_VAR} is not set, so provider credentials cannot be stored encrypted: "
                f"generate a key with `{GENERATE_COMMAND}`, set {ENV_VAR}=<key> and restart",
                {"variable": ENV_VAR},
            )
        return self.box

    def _announce(self, tenant_id: str) -> None:
        self.signers.clear()
        for listener in self.changed:
            listener(tenant_id)


def routed_policy(
    policy: SubmitPolicy, verified: set[str], specs: Mapping[str, TenantConfigSpec]
) -> SubmitPolicy:
    """Routes for a tenant with `verified` providers of its own, over the platform's routes."""
    if not verified:
        return policy
    main = next(
        (name for name in sorted(verified) if specs[name].serves_every_region), policy.provider
    )
    available = {policy.provider, *policy.routes.values(), *verified}
    return replace(policy, provider=main, routes=routing.routes_for(available))


def provider_field(spec: TenantConfigSpec) -> str:
    return spec.fields[0].name


def _checked(spec: TenantConfigSpec, values: Mapping[str, Any]) -> dict[str, str]:
    """The given fields as strings (null means not given), or `InvalidRequest` naming the field."""
    given: dict[str, str] = {}
    for name, value in values.items():
        if not _is_text(name) or (isinstance(value, str) and not _is_text(value)):
            raise InvalidRequest("body", "contains an unpaired surrogate; send valid text")
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidRequest(name, "must be a string")
        given[name] = value
    problems = spec.field_problems(given)
    if problems:
        listed = [{"field": name, "message": text} for name, text in problems[:MAX_LISTED]]
        raise InvalidRequest(problems[0][0], problems[0][1], {"problems": listed})
    return given


async def _new_webhook_token(
    repository: ProviderConfigRepository, spec: TenantConfigSpec, tenant_id: str
) -> str | None:
    """A fresh URL token when a provider that needs one is configured for the first time."""
    if not spec.issues_webhook_token or await repository.get(tenant_id, spec.provider):
        return None
    return secrets.token_urlsafe(32)


async def _ask_provider(spec: TenantConfigSpec, client: Provider, seconds: float) -> None:
    """`client.verify()` under a timeout, its failures translated for the caller."""
    fields = ", ".join(f.name for f in spec.fields if f.secret or f.name == spec.account_field)
    try:
        async with asyncio.timeout(seconds):
            await client.verify()
    except ProviderConfigError as exc:
        raise CredentialsRejected(
            f"{spec.provider} refused these credentials: check {fields} and save them again",
            {"provider": spec.provider, "reason": str(exc)},
        ) from exc
    except (ConnectionError, OSError) as exc:  # TimeoutError is an OSError
        reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
        raise ProviderUnreachable(
            f"{spec.provider} could not be reached to check the credentials; try again later",
            {"provider": spec.provider, "reason": reason},
        ) from exc


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _hint(secret: str) -> str | None:
    return secret[-4:] if len(secret) >= HINT_MIN_LENGTH else None


def _no_config(provider: str) -> NotFound:
    return NotFound(
        f"no {provider} config for this tenant; create one with PUT /api/providers/{provider}"
    )


def _config(row: RowMapping) -> ProviderConfig:
    hints: dict[str, str | None] = row["secret_hints"]
    return ProviderConfig(
        config_id=row["id"],
        tenant_id=row["tenant_id"],
        provider=row["provider"],
        settings=dict(row["settings"]),
        secrets={name: SecretInfo(True, hint) for name, hint in hints.items()},
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        verified_at=row["verified_at"],
    )
