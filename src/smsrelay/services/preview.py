"""Previewing one SMS: what sending it would decide and cost, without writing anything."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from smsrelay.domain import pricing, senders
from smsrelay.domain.segments import SegmentInfo, analyze
from smsrelay.services.consent import Decision, check_recipient
from smsrelay.services.submit import MessagePlan, NewMessage, SubmitPolicy, plan_message
from smsrelay.store.database import Database


@dataclass(frozen=True, slots=True)
class EncodingOption:
    """The message encoded one way (with or without Smart Encoding) and what that costs."""

    text_changed: bool
    encoding: str
    segments: int
    units: int
    characters: int
    non_gsm_characters: tuple[str, ...]
    cost_per_unit: Decimal
    total_cost: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class Preview:
    """Everything `submit_message` would decide for a message, before it is sent."""

    to: str
    country: str | None
    country_code: int
    number_type: str
    provider: str
    category: str
    sender: senders.SenderChoice
    message: str
    smart_encoding: bool
    chosen: EncodingOption
    without_smart_encoding: EncodingOption
    with_smart_encoding: EncodingOption
    price_source: str
    notes: tuple[str, ...]


def preview_message(policy: SubmitPolicy, new: NewMessage) -> Preview:
    """Validate `new` as sending would (same errors) and explain the outcome; nothing is stored."""
    plan = plan_message(policy, new)
    plain = _option(analyze(new.message), plan.price)
    smart = _option(analyze(new.message, smart_encoding=True), plan.price)
    return Preview(
        to=plan.number.e164,
        country=plan.number.region,
        country_code=plan.number.country_code,
        number_type=plan.number.number_type,
        provider=plan.provider,
        category=new.category,
        sender=plan.sender,
        message=plan.segments.text,
        smart_encoding=new.smart_encoding,
        chosen=smart if new.smart_encoding else plain,
        without_smart_encoding=plain,
        with_smart_encoding=smart,
        price_source=plan.price.source,
        notes=tuple(_notes(policy, plan, plain, smart)),
    )


def _option(info: SegmentInfo, price: pricing.Price) -> EncodingOption:
    return EncodingOption(
        text_changed=info.smart_encoding_applied,
        encoding=info.encoding,
        segments=info.segments,
        units=info.units,
        characters=info.characters,
        non_gsm_characters=info.non_gsm_characters,
        cost_per_unit=price.per_segment,
        total_cost=pricing.total_cost(price, info.segments),
        currency=price.currency,
    )


def _notes(
    policy: SubmitPolicy, plan: MessagePlan, plain: EncodingOption, smart: EncodingOption
) -> list[str]:
    notes = senders.sender_notes(plan.sender, plan.provider)
    notes.extend(_default_sender_notes(policy, plan.sender, plan.number.region))
    if smart.segments < plain.segments:
        notes.append(
            f"Smart Encoding would send {smart.segments} segment(s) instead of {plain.segments}"
        )
    return notes


def _default_sender_notes(
    policy: SubmitPolicy, choice: senders.SenderChoice, region: str | None
) -> list[str]:
    """Warn when the provider's configured sender cannot send to this destination."""
    if choice.sender is not None or policy.default_sender is None:
        return []
    try:
        default = senders.classify_sender(policy.default_sender)
        senders.check_sender(default, choice.rule, region)
    except senders.InvalidSender as exc:
        return [f"The provider's default sender will be refused: {exc}"]
    return []


async def consent_decision(db: Database, tenant_id: str, e164: str, new: NewMessage) -> Decision:
    """What consent and quiet hours would decide for `new` right now; reads only."""
    async with db.reading() as connection:
        return await check_recipient(
            connection,
            tenant_id,
            e164,
            new.category,
            new.override_suppression,
            now=datetime.now(UTC),
        )
