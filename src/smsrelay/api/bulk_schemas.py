"""Request and response bodies of the bulk and recipient-list routes, in camelCase."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field
from pydantic import Tag as Branch

from smsrelay.api.schemas import ApiModel, CustomData, Tag

VariableName = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
]
# Longer than any message: a value that makes the text too long rejects that recipient alone
# (`too_long`), as an empty or unreadable number does (`invalid_number`); only what no
# recipient could be (a value over these caps, a wrong type) refuses the whole request.
MAX_VARIABLE_CHARS = 10_000
MAX_TO_CHARS = 1000
VariableValue = Annotated[str, Field(max_length=MAX_VARIABLE_CHARS)]
Variables = dict[VariableName, VariableValue]


class RecipientIn(ApiModel):
    to: str = Field(max_length=MAX_TO_CHARS, description="E.164 number, e.g. +14155552671")
    variables: Variables = Field(default_factory=dict, max_length=50)


def _recipient_kind(value: Any) -> str | None:
    """Which form a recipient takes, so an error names that form's fault alone."""
    if isinstance(value, str):
        return "to"
    if isinstance(value, dict | RecipientIn):
        return "recipient"
    return None


Recipient = Annotated[
    Annotated[Annotated[str, Field(max_length=MAX_TO_CHARS)], Branch("to")]
    | Annotated[RecipientIn, Branch("recipient")],
    Discriminator(
        _recipient_kind,
        custom_error_type="recipient_type",
        custom_error_message="must be a phone number string or a {to, variables} object",
    ),
]


class BulkSendRequest(ApiModel):
    recipients: list[Recipient] | None = Field(
        default=None,
        max_length=100_000,
        description="Numbers, or {to, variables} objects (up to 100,000); or give listId",
    )
    list_id: str | None = Field(default=None, min_length=1, max_length=40)
    message: str = Field(description="The SMS text; {{name}} takes each recipient's variable")
    variables: Variables = Field(
        default_factory=dict, max_length=50, description="Defaults for every recipient"
    )
    category: Literal["transactional", "marketing"] = "transactional"
    sender_id: str | None = Field(default=None, max_length=64)
    scheduled_at: datetime | None = Field(
        default=None, description="ISO 8601 with offset, or a local time with timeZone"
    )
    time_zone: str | None = Field(
        default=None, min_length=1, max_length=64, description="IANA name, e.g. Europe/London"
    )
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    custom_data: CustomData = Field(default_factory=dict)
    template_key: str | None = Field(default=None, max_length=200)
    validity_seconds: int | None = Field(default=None, ge=1, le=1_209_600)
    smart_encoding: bool = False


class RejectionOut(ApiModel):
    index: int
    to: str
    reason: str = Field(description="A stable code: invalid_number, landline, duplicate, …")
    message: str


class BulkAcceptedOut(ApiModel):
    bulk_id: str
    status: str
    accepted_count: int
    rejected_count: int
    duplicate_count: int
    rejected: list[RejectionOut]
    created_at: datetime
    scheduled_at: datetime | None


class BulkOut(ApiModel):
    bulk_id: str
    status: Literal["accepting", "expanding", "ready", "canceled"]
    accepted_count: int
    rejected_count: int
    duplicate_count: int
    expanded_count: int = Field(description="Accepted recipients written to the outbox so far")
    counts: dict[str, int] = Field(description="Messages by outbox status")
    total_cost: str = Field(description="Cost of the messages handed to the provider so far")
    estimated_cost: str = Field(description="Cost of every message written that may still go")
    currency: str | None
    category: str
    list_id: str | None
    created_at: datetime
    scheduled_at: datetime | None
    time_zone: str | None
    canceled_at: datetime | None
    canceled_count: int | None = Field(default=None, description="Set by a cancel request")


class ListCreate(ApiModel):
    name: str = Field(min_length=1, max_length=200)


class ListOut(ApiModel):
    list_id: str
    name: str
    member_count: int
    created_at: datetime
    updated_at: datetime


class ListPageOut(ApiModel):
    items: list[ListOut]
    next_cursor: str | None


class MemberOut(ApiModel):
    phone: str
    variables: dict[str, str]
    added_at: datetime
    updated_at: datetime


class MemberPageOut(ApiModel):
    items: list[MemberOut]
    next_cursor: str | None


class RowErrorOut(ApiModel):
    row: int = Field(description="The CSV row (the header is row 1)")
    value: str = Field(description="The phone value, masked")
    reason: str
    message: str


class ImportOut(ApiModel):
    rows: int = Field(description="Data rows read")
    imported: int = Field(description="Rows merged into the list (new or updated members)")
    duplicates: int = Field(description="Rows repeating a number seen earlier in the file")
    rejected_count: int
    errors: list[RowErrorOut] = Field(description="The first 100 refused rows")
    member_count: int


def dump(model: ApiModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)
