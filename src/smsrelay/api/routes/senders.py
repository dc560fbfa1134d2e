"""Routes for the throughput a tenant's senders are paced at (segments per second)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import Field

from smsrelay.api.deps import ContainerDep, JsonBody, PrincipalDep, require_scope
from smsrelay.api.routes.sms import ERRORS
from smsrelay.api.schemas import ApiModel
from smsrelay.domain.throughput import MAX_SEGMENTS_PER_SECOND, parse_overrides
from smsrelay.services import throughput
from smsrelay.services.throughput import SenderRate

router = APIRouter(prefix="/api/senders", tags=["senders"])
Sender = Annotated[
    str,
    Path(
        max_length=64,
        description="E.164 number (+15005550006), short code, alphanumeric ID or MG… SID",
    ),
]


class ThroughputIn(ApiModel):
    segments_per_second: int = Field(
        strict=True,
        ge=1,
        le=MAX_SEGMENTS_PER_SECOND,
        description="Segments this sender may start per second, across all workers",
    )
    source: str | None = Field(default=None, max_length=200, description="Where the figure is from")


class ThroughputOut(ApiModel):
    sender: str
    kind: str
    segments_per_second: int
    origin: str = Field(description="tenant, deployment (settings) or default (kind table)")
    source: str
    updated_at: datetime | None


class ThroughputListOut(ApiModel):
    items: list[ThroughputOut]


def _out(rate: SenderRate) -> ThroughputOut:
    return ThroughputOut(
        sender=rate.sender,
        kind=rate.kind,
        segments_per_second=rate.segments_per_second,
        origin=rate.origin,
        source=rate.source,
        updated_at=rate.updated_at,
    )


@router.get(
    "/throughput",
    response_model=ThroughputListOut,
    responses=ERRORS,
    dependencies=[require_scope("read")],
)
async def list_throughput(container: ContainerDep, principal: PrincipalDep) -> ThroughputListOut:
    """The rates this tenant has set; other senders are paced by settings or the kind table."""
    found = await throughput.list_sender_rates(container.db, principal.tenant_id)
    return ThroughputListOut(items=[_out(rate) for rate in found])


@router.get(
    "/{sender}/throughput",
    response_model=ThroughputOut,
    responses=ERRORS,
    dependencies=[require_scope("read")],
)
async def get_throughput(
    sender: Sender, container: ContainerDep, principal: PrincipalDep
) -> ThroughputOut:
    """The rate this tenant's messages from `sender` are paced at, and where it comes from."""
    deployment = parse_overrides(container.settings.sender_throughput)
    found = await throughput.sender_rate(container.db, principal.tenant_id, sender, deployment)
    return _out(found)


@router.put(
    "/{sender}/throughput",
    response_model=ThroughputOut,
    responses=ERRORS,
    dependencies=[JsonBody, require_scope("admin")],
)
async def put_throughput(
    sender: Sender, body: ThroughputIn, container: ContainerDep, principal: PrincipalDep
) -> ThroughputOut:
    """Set the segments per second this tenant's messages from `sender` are paced at, on any
    provider (the simulator included); every worker applies it within a few seconds."""
    saved = await throughput.set_sender_rate(
        container.db,
        principal.tenant_id,
        sender,
        body.segments_per_second,
        body.source,
        datetime.now(UTC),
    )
    return _out(saved)


@router.delete(
    "/{sender}/throughput",
    status_code=204,
    responses=ERRORS,
    dependencies=[require_scope("admin")],
)
async def delete_throughput(
    sender: Sender, container: ContainerDep, principal: PrincipalDep
) -> Response:
    """Remove the tenant's rate: the deployment's or the kind table's applies again."""
    await throughput.remove_sender_rate(container.db, principal.tenant_id, sender)
    return Response(status_code=204)
