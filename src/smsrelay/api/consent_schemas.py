"""Request and response bodies of the consent API: ledger, suppressions, inbox, settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, IPvAnyAddress
from sqlalchemy.engine import RowMapping

from smsrelay.api.schemas import ApiModel
from smsrelay.services.consent import ConsentInput, ConsentState
from smsrelay.services.inbound import ConsentSettings, reply_text

Phone = Field(min_length=1, max_length=40, description="E.164 number, e.g. +14155552671")
HoursField = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
ReplyField = Field(default=None, max_length=1600)


class ConsentIn(ApiModel):
    phone: str = Phone
    status: Literal["opted_in", "opted_out"]
    category: Literal["transactional", "marketing"] | None = Field(
        default=None, description="Omit for every category"
    )
    source: str = Field(min_length=1, max_length=200, description="Where, e.g. a form's URL")
    method: Literal["web_form", "keyword", "api", "import", "verbal"]
    consent_text: str = Field(min_length=1, max_length=5000, description="The exact text shown")
    ip: IPvAnyAddress | None = None
    user_agent: str | None = Field(default=None, max_length=500)
    occurred_at: datetime | None = Field(default=None, description="ISO 8601 with offset")

    def to_input(self) -> ConsentInput:
        return ConsentInput(
            phone=self.phone,
            status=self.status,
            category=self.category,
            source=self.source,
            method=self.method,
            consent_text=self.consent_text,
            ip=None if self.ip is None else str(self.ip),
            user_agent=self.user_agent,
            occurred_at=self.occurred_at,
        )


class ConsentRecordOut(ApiModel):
    consent_id: str
    phone: str
    status: str
    category: str | None
    source: str
    method: str
    consent_text: str
    ip: str | None
    user_agent: str | None
    occurred_at: datetime
    recorded_at: datetime
    recorded_by: str | None
    evidence: dict[str, Any]


class SuppressionIn(ApiModel):
    phone: str = Phone
    reason: Literal["keyword", "provider_21610", "manual", "import"] = "manual"
    note: str | None = Field(default=None, max_length=500)


class SuppressionOut(ApiModel):
    phone: str
    reason: str
    note: str | None
    source_ref: str | None
    created_at: datetime
    created_by: str | None


class SuppressionPageOut(ApiModel):
    items: list[SuppressionOut]
    next_cursor: str | None


class ConsentHistoryOut(ApiModel):
    phone: str
    marketing_consent: Literal["opted_in", "opted_out", "none"]
    suppression: SuppressionOut | None
    items: list[ConsentRecordOut]


class InboundOut(ApiModel):
    inbound_id: str
    message_sid: str
    from_phone: str
    to_phone: str | None
    body: str
    keyword: str
    opt_out_type: str | None
    reply: str | None
    received_at: datetime


class InboxPageOut(ApiModel):
    items: list[InboundOut]
    next_cursor: str | None


class ConsentSettingsIn(ApiModel):
    """Fields left out stay as they are; a reply of null means the default, "" means none."""

    opt_out_reply: str | None = ReplyField
    opt_in_reply: str | None = ReplyField
    help_reply: str | None = ReplyField
    quiet_hours_start: str | None = HoursField
    quiet_hours_end: str | None = HoursField

    def changes(self) -> dict[str, Any]:
        names = {"quiet_hours_start": "quiet_start", "quiet_hours_end": "quiet_end"}
        return {names.get(n, n): getattr(self, n) for n in self.model_fields_set}


class ConsentSettingsOut(ApiModel):
    opt_out_reply: str
    opt_in_reply: str
    help_reply: str
    quiet_hours_start: str
    quiet_hours_end: str


def record_out(row: RowMapping | dict[str, Any]) -> ConsentRecordOut:
    return ConsentRecordOut(
        consent_id=row["id"],
        phone=row["phone"],
        status=row["status"],
        category=row["category"],
        source=row["source"],
        method=row["method"],
        consent_text=row["consent_text"],
        ip=row["ip"],
        user_agent=row["user_agent"],
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        recorded_by=row["recorded_by"],
        evidence=row["evidence"] or {},
    )


def suppression_out(row: RowMapping) -> SuppressionOut:
    return SuppressionOut(
        phone=row["phone"],
        reason=row["reason"],
        note=row["note"],
        source_ref=row["source_ref"],
        created_at=row["created_at"],
        created_by=row["created_by"],
    )


def history_out(state: ConsentState) -> ConsentHistoryOut:
    suppression = None if state.suppression is None else suppression_out(state.suppression)
    return ConsentHistoryOut(
        phone=state.phone,
        marketing_consent=state.marketing,
        suppression=suppression,
        items=[record_out(row) for row in state.records],
    )


def inbound_out(row: RowMapping) -> InboundOut:
    return InboundOut(
        inbound_id=row["id"],
        message_sid=row["provider_message_id"],
        from_phone=row["from_phone"],
        to_phone=row["to_phone"],
        body=row["body"],
        keyword=row["keyword"],
        opt_out_type=row["opt_out_type"],
        reply=row["reply"],
        received_at=row["received_at"],
    )


def settings_out(settings: ConsentSettings) -> ConsentSettingsOut:
    """The settings in force: defaults filled in where the tenant set nothing."""
    return ConsentSettingsOut(
        opt_out_reply=reply_text(settings, "opt_out"),
        opt_in_reply=reply_text(settings, "opt_in"),
        help_reply=reply_text(settings, "help"),
        quiet_hours_start=settings.hours[0],
        quiet_hours_end=settings.hours[1],
    )
