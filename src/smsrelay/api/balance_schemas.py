"""Bodies of the balance and alert settings API (`/api/balance`, `/api/alerts`), in camelCase."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from smsrelay.api.schemas import ApiModel
from smsrelay.services.alerts import AlertSettingsInput, AlertSettingsView
from smsrelay.services.balances import BalanceView, Movement


class MovementOut(ApiModel):
    id: int
    kind: str = Field(description="credit, debit or refund")
    amount: str = Field(description="Signed decimal string: debits are negative")
    currency: str
    outbox_id: str | None
    note: str | None
    created_at: datetime


class BalanceOut(ApiModel):
    tenant_id: str
    metered: bool = Field(description="False until the operator first credits the tenant")
    balance: str | None = Field(description="Decimal string in `currency`")
    currency: str | None
    low_balance_threshold: str | None
    hard_stop: bool
    movements: list[MovementOut] = Field(description="Newest first")
    next_cursor: str | None


class AlertsIn(ApiModel):
    url: str | None = Field(
        default=None, max_length=2000, description="https URL that receives signed JSON alerts"
    )
    email: str | None = Field(default=None, max_length=320, description="Address for alerts")
    low_balance_threshold: str | None = Field(
        default=None, max_length=24, description="Alert once the balance falls below this"
    )
    hard_stop: bool = Field(default=False, description="Refuse (402) sends the balance can't pay")
    failed_sms: bool = Field(default=False, description="Alert for each SMS that ends failed")
    rotate_secret: bool = Field(default=False, description="Issue a new webhook signing secret")

    def to_input(self) -> AlertSettingsInput:
        return AlertSettingsInput(
            url=self.url,
            email=self.email,
            low_balance_threshold=self.low_balance_threshold,
            hard_stop=self.hard_stop,
            failed_sms=self.failed_sms,
            rotate_secret=self.rotate_secret,
        )


class AlertsOut(ApiModel):
    url: str | None
    email: str | None
    low_balance_threshold: str | None
    hard_stop: bool
    failed_sms: bool
    has_signing_secret: bool
    signing_secret: str | None = Field(
        description="The webhook signing secret, only in the answer that created it"
    )
    updated_at: datetime | None


def movement_out(movement: Movement) -> MovementOut:
    return MovementOut(
        id=movement.id,
        kind=movement.kind,
        amount=movement.amount,
        currency=movement.currency,
        outbox_id=movement.outbox_id,
        note=movement.note,
        created_at=movement.created_at,
    )


def balance_out(view: BalanceView) -> BalanceOut:
    return BalanceOut(
        tenant_id=view.tenant_id,
        metered=view.metered,
        balance=view.balance,
        currency=view.currency,
        low_balance_threshold=view.low_balance_threshold,
        hard_stop=view.hard_stop,
        movements=[movement_out(m) for m in view.movements],
        next_cursor=view.next_cursor,
    )


def alerts_out(view: AlertSettingsView) -> AlertsOut:
    return AlertsOut(
        url=view.url,
        email=view.email,
        low_balance_threshold=view.low_balance_threshold,
        hard_stop=view.hard_stop,
        failed_sms=view.failed_sms,
        has_signing_secret=view.has_signing_secret,
        signing_secret=view.signing_secret,
        updated_at=view.updated_at,
    )
