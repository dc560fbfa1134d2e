"""Request and response bodies of the HTTP API, in camelCase as the contract names them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from smsrelay.domain.messages import MessageEvent, OutboxEntry


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", allow_inf_nan=False
    )

    @model_validator(mode="after")
    def _text_is_unicode(self) -> Self:
        """Refuse unpaired surrogates (`\\ud800`), which no database or SMS can carry."""
        for name, value in self:
            if _has_surrogate(value):
                raise ValueError(
                    f"{to_camel(name)} contains an unpaired surrogate; send valid text"
                )
        return self


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_surrogate(item) for item in value)
    return False


MAX_CUSTOM_DATA_BYTES = 8192


def _custom_data_size(value: dict[str, Any]) -> dict[str, Any]:
    try:
        size = len(json.dumps(value, allow_nan=False).encode())
    except ValueError:
        raise ValueError("must be plain JSON (no NaN or Infinity)") from None
    if size > MAX_CUSTOM_DATA_BYTES:
        raise ValueError(f"is {size} bytes as JSON; the limit is {MAX_CUSTOM_DATA_BYTES}")
    return value


CustomData = Annotated[dict[str, Any], AfterValidator(_custom_data_size)]


Tag = Annotated[str, Field(min_length=1, max_length=100)]


class SendSmsRequest(ApiModel):
    to: str = Field(min_length=1, max_length=40, description="E.164 number, e.g. +14155552671")
    message: str = Field(description="The SMS text (up to 1600 characters)")
    sender_id: str | None = Field(default=None, max_length=64)
    category: Literal["transactional", "marketing"] = "transactional"
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    custom_data: CustomData = Field(default_factory=dict)
    template_key: str | None = Field(default=None, max_length=200)
    scheduled_at: datetime | None = Field(default=None, description="ISO 8601 with offset")
    validity_seconds: int | None = Field(default=None, ge=1, le=1_209_600)
    smart_encoding: bool = Field(
        default=False, description="Replace smart quotes and the like to stay in GSM-7"
    )
    override_suppression: bool = Field(
        default=False,
        description="Transactional only: send despite an opt-out (recorded in the history)",
    )


class ResendRequest(ApiModel):
    outbox_id: str = Field(min_length=1, max_length=40)


class TestSmsRequest(ApiModel):
    to: str = Field(min_length=1, max_length=40)
    message: str = Field(max_length=1600)


class TestSmsResponse(ApiModel):
    provider_message_id: str
    to: str
    status: str
    log_id: str


class ErrorDetailsOut(ApiModel):
    message: str
    code: int | str | None
    more_info: str | None
    details: dict[str, Any] | None


class TimestampsOut(ApiModel):
    created_at: datetime
    sent_at: datetime | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    scheduled_at: datetime | None


class EventOut(ApiModel):
    kind: str
    at: datetime
    from_status: str | None
    to_status: str | None
    data: dict[str, Any]


class OutboxEntryOut(ApiModel):
    outbox_id: str
    tenant_id: str
    user_id: str | None
    recipient_phone_number: str
    message: str
    sender_id: str | None
    provider: str
    message_id: str | None
    category: str
    encoding: str
    sms_units_used: int
    cost_per_unit: str
    total_cost: str
    currency: str
    status: str
    timestamps: TimestampsOut
    retry_count: int
    error_details: ErrorDetailsOut | None
    tags: list[str]
    custom_data: dict[str, Any]
    template_key: str | None
    events: list[EventOut] | None = None
    provider_cost: str | None = Field(
        default=None, description="What the provider billed, once it reports it"
    )
    provider_currency: str | None = None
    cost_difference: str | None = Field(
        default=None, description="providerCost − totalCost; null until the provider reports"
    )


class OutboxPageOut(ApiModel):
    items: list[OutboxEntryOut]
    next_cursor: str | None


class ErrorBody(ApiModel):
    code: str
    message: str
    details: dict[str, Any] | list[Any] | None


class ErrorOut(ApiModel):
    error: ErrorBody


def _code(code: str | None) -> int | str | None:
    return int(code) if code is not None and code.isdigit() else code


def entry_out(entry: OutboxEntry, with_events: bool = False) -> OutboxEntryOut:
    error = entry.error
    # Built from stored rows, already checked on the way in: construct, don't validate again.
    return OutboxEntryOut.model_construct(
        outbox_id=entry.outbox_id,
        tenant_id=entry.tenant_id,
        user_id=entry.user_id,
        recipient_phone_number=entry.recipient,
        message=entry.message,
        sender_id=entry.sender_id,
        provider=entry.provider,
        message_id=entry.provider_message_id,
        category=entry.category,
        encoding=entry.encoding,
        sms_units_used=entry.segments,
        cost_per_unit=entry.cost_per_unit,
        total_cost=entry.total_cost,
        currency=entry.currency,
        status=entry.status.value,
        timestamps=TimestampsOut.model_construct(
            created_at=entry.created_at,
            sent_at=entry.sent_at,
            last_attempt_at=entry.last_attempt_at,
            delivered_at=entry.delivered_at,
            scheduled_at=entry.scheduled_at,
        ),
        retry_count=entry.retry_count,
        error_details=None
        if error is None
        else ErrorDetailsOut.model_construct(
            message=error.message,
            code=_code(error.code),
            more_info=error.more_info,
            details=error.details,
        ),
        tags=entry.tags,
        custom_data=entry.custom_data,
        template_key=entry.template_key,
        events=[_event_out(e) for e in entry.events] if with_events else None,
        provider_cost=entry.provider_cost,
        provider_currency=entry.provider_currency,
        cost_difference=entry.cost_difference,
    )


def _event_out(event: MessageEvent) -> EventOut:
    return EventOut.model_construct(
        kind=event.kind,
        at=event.created_at,
        from_status=event.from_status,
        to_status=event.to_status,
        data=event.data,
    )
