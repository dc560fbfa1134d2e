"""Routes for a tenant's own API keys (`admin` scope): list, create, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import Field

from smsrelay.api.deps import ContainerDep, JsonBody, PrincipalDep, require_scope
from smsrelay.api.schemas import ApiModel, ErrorOut
from smsrelay.services.tenants import KeyInfo, create_key, list_keys, revoke_key

router = APIRouter(prefix="/api/keys", tags=["keys"], dependencies=[require_scope("admin")])
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 415, 422, 429)
}
Scope = Literal["send", "read", "admin"]
DEFAULT_KEY_SCOPES: list[Scope] = ["send", "read"]  # as `services.tenants.DEFAULT_SCOPES`


class CreateKeyRequest(ApiModel):
    name: str = Field(min_length=1, max_length=200, description="What the key is for")
    scopes: list[Scope] = Field(default_factory=DEFAULT_KEY_SCOPES.copy, min_length=1, max_length=3)
    expires_at: datetime | None = Field(
        default=None, description="ISO 8601 with offset; the key stops working then"
    )


class KeyOut(ApiModel):
    key_id: str
    name: str
    prefix: str = Field(description="The visible start of the key, to recognise it")
    scopes: list[str]
    state: Literal["active", "revoked", "expired"]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class CreatedKeyOut(KeyOut):
    api_key: str = Field(description="The secret key: shown this once, never stored")


class KeyListOut(ApiModel):
    items: list[KeyOut]


def key_out(info: KeyInfo) -> KeyOut:
    return KeyOut(
        key_id=info.key_id,
        name=info.name,
        prefix=info.prefix,
        scopes=list(info.scopes),
        state=info.state,
        created_at=info.created_at,
        expires_at=info.expires_at,
        last_used_at=info.last_used_at,
        revoked_at=info.revoked_at,
    )


@router.get("", response_model=KeyListOut, responses=ERRORS)
async def list_api_keys(container: ContainerDep, principal: PrincipalDep) -> KeyListOut:
    """The tenant's keys, oldest first; secrets are never shown again."""
    keys = await list_keys(container.db, principal.tenant_id)
    return KeyListOut(items=[key_out(info) for info in keys])


@router.post(
    "", status_code=201, response_model=CreatedKeyOut, responses=ERRORS, dependencies=[JsonBody]
)
async def create_api_key(
    body: CreateKeyRequest, container: ContainerDep, principal: PrincipalDep
) -> CreatedKeyOut:
    """A new key for the caller's tenant; `apiKey` in the answer is shown this once."""
    created = await create_key(
        container.db,
        principal.tenant_id,
        name=body.name,
        scopes=frozenset(body.scopes),
        expires_at=body.expires_at,
    )
    return CreatedKeyOut(**key_out(created.info).model_dump(), api_key=created.api_key)


@router.delete("/{key_id}", response_model=KeyOut, responses=ERRORS)
async def revoke_api_key(key_id: str, container: ContainerDep, principal: PrincipalDep) -> KeyOut:
    """Revoke one of the tenant's active keys; it stops working at once."""
    info = await revoke_key(
        container.db, key_id, tenant_id=principal.tenant_id, cache=container.key_cache
    )
    return key_out(info)
