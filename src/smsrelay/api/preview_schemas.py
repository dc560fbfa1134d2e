"""Request and response bodies of POST /api/sms/preview, in camelCase like the rest of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from smsrelay.api.schemas import ApiModel
from smsrelay.services.consent import Decision
from smsrelay.services.preview import EncodingOption, Preview


class PreviewRequest(ApiModel):
    to: str = Field(min_length=1, max_length=40, description="E.164 number, e.g. +14155552671")
    message: str = Field(description="The SMS text (up to 1600 characters)")
    sender_id: str | None = Field(default=None, max_length=64)
    category: Literal["transactional", "marketing"] = "transactional"
    smart_encoding: bool = Field(
        default=False, description="Replace look-alike characters (“smart quotes”) to stay GSM-7"
    )
    override_suppression: bool = False


class ConsentOut(ApiModel):
    verdict: str = Field(description="allow, block or defer")
    reason: str | None
    message: str | None
    until: datetime | None = Field(description="when a deferred message would go")
    overridden: bool


class SenderOut(ApiModel):
    id: str | None = Field(description="null: the provider's configured sender is used")
    kind: str | None
    source: Literal["request", "country_default", "provider_default"]
    allowed_kinds: list[str]
    registration_required: bool
    registration: str
    rule_source: str


class EncodingOptionOut(ApiModel):
    text_changed: bool = Field(description="true when Smart Encoding replaced characters")
    encoding: str
    non_gsm_characters: list[str]
    characters: int
    units: int
    segments: int
    cost_per_unit: str
    total_cost: str
    currency: str


class PreviewOut(ApiModel):
    to: str = Field(description="The number in E.164, as it would be stored")
    country: str | None
    country_calling_code: int
    number_type: str
    provider: str
    category: str
    sender: SenderOut
    message: str = Field(description="The text that would be sent")
    smart_encoding: bool
    encoding: str
    non_gsm_characters: list[str]
    characters: int
    units: int
    segments: int
    cost_per_unit: str
    total_cost: str
    currency: str
    price_source: str
    without_smart_encoding: EncodingOptionOut
    with_smart_encoding: EncodingOptionOut
    notes: list[str]
    consent: ConsentOut | None = Field(
        default=None, description="Consent and quiet-hours decision for this tenant, now"
    )


def consent_out(decision: Decision) -> ConsentOut:
    return ConsentOut(
        verdict=decision.verdict.value,
        reason=decision.reason,
        message=decision.message,
        until=decision.until,
        overridden=decision.overridden,
    )


def preview_out(preview: Preview) -> PreviewOut:
    return PreviewOut(
        to=preview.to,
        country=preview.country,
        country_calling_code=preview.country_code,
        number_type=preview.number_type,
        provider=preview.provider,
        category=preview.category,
        sender=_sender_out(preview),
        message=preview.message,
        smart_encoding=preview.smart_encoding,
        **_option_fields(preview.chosen),
        price_source=preview.price_source,
        without_smart_encoding=_option_out(preview.without_smart_encoding),
        with_smart_encoding=_option_out(preview.with_smart_encoding),
        notes=list(preview.notes),
    )


def _sender_out(preview: Preview) -> SenderOut:
    choice = preview.sender
    rule = choice.rule
    return SenderOut(
        id=None if choice.sender is None else choice.sender.value,
        kind=None if choice.sender is None else choice.sender.kind,
        source=choice.source,
        allowed_kinds=sorted(rule.allowed),
        registration_required=rule.registration_required,
        registration=rule.registration,
        rule_source=rule.source,
    )


def _option_out(option: EncodingOption) -> EncodingOptionOut:
    return EncodingOptionOut(text_changed=option.text_changed, **_option_fields(option))


def _option_fields(option: EncodingOption) -> dict[str, Any]:
    """An encoding's counts and cost as both outputs show them (the chosen one inline)."""
    return {
        "encoding": option.encoding,
        "non_gsm_characters": list(option.non_gsm_characters),
        "characters": option.characters,
        "units": option.units,
        "segments": option.segments,
        "cost_per_unit": str(option.cost_per_unit),
        "total_cost": str(option.total_cost),
        "currency": option.currency,
    }
