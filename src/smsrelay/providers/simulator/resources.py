"""Twilio API 2010-04-01 JSON shapes: message, page of messages, account and error bodies."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from smsrelay.providers.simulator.state import SimulatedMessage
from smsrelay.providers.simulator.tables import API_VERSION, DELIVERY_ERRORS, REST_ERRORS

Json = dict[str, Any]


def rfc2822(moment: datetime) -> str:
    """Twilio's timestamp format, e.g. 'Thu, 24 Aug 2023 05:01:45 +0000'."""
    return format_datetime(moment.replace(microsecond=0))


def account_path(account_sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}"


def message_path(message: SimulatedMessage) -> str:
    return f"{account_path(message.account_sid)}/Messages/{message.sid}"


def count_segments(body: str) -> int:
    """Approximate segment count: 160/153 characters when ASCII, else 70/67 UTF-16 units.

    Good enough for a simulator; the domain layer's segment counter is the reference.
    """
    single, multi, units = (160, 153, len(body)) if body.isascii() else (70, 67, _utf16(body))
    return 1 if units <= single else math.ceil(units / multi)


def _error_message(code: int | None) -> str | None:
    return None if code is None else DELIVERY_ERRORS.get(code)


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def message_json(message: SimulatedMessage) -> Json:
    """A Message resource as Twilio renders it (fields of the 2010-04-01 Message schema)."""
    return {
        "sid": message.sid,
        "account_sid": message.account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": rfc2822(message.received_at),
        "date_sent": rfc2822(message.received_at),
        "date_updated": rfc2822(message.updated_at),
        "direction": "outbound-api",
        "error_code": message.error_code,
        "error_message": _error_message(message.error_code),
        "from": message.from_,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": "0",
        "num_segments": str(count_segments(message.body)),
        "price": message.price,
        "price_unit": "USD",
        "status": message.status,
        "subresource_uris": {"media": f"{message_path(message)}/Media.json"},
        "to": message.to,
        "uri": f"{message_path(message)}.json",
    }


def page_json(messages: list[Json], page: Page) -> Json:
    """A page of the Messages list, with Twilio's paging keys."""
    start = page.number * page.size
    return {
        "messages": messages,
        "start": start,
        "end": start + max(len(messages) - 1, 0),
        "page": page.number,
        "page_size": page.size,
        "uri": page.uri(page.number),
        "first_page_uri": page.uri(0),
        "next_page_uri": page.uri(page.number + 1) if page.has_next else None,
        "previous_page_uri": page.uri(page.number - 1) if page.number > 0 else None,
    }


@dataclass(frozen=True, slots=True)
class Page:
    """Where a page sits in a listing: its path, filters, number and size."""

    path: str
    filters: dict[str, str]
    number: int
    size: int
    has_next: bool

    def uri(self, number: int) -> str:
        query = urlencode({**self.filters, "PageSize": self.size, "Page": number})
        return f"{self.path}?{query}"


def account_json(account_sid: str, created: datetime) -> Json:
    """The Account resource; the auth token is never echoed back."""
    path = account_path(account_sid)
    return {
        "sid": account_sid,
        "owner_account_sid": account_sid,
        "friendly_name": "smsrelay simulator",
        "status": "active",
        "type": "Full",
        "date_created": rfc2822(created),
        "date_updated": rfc2822(created),
        "uri": f"{path}.json",
        "subresource_uris": {"messages": f"{path}/Messages.json"},
    }


def error_json(code: int, detail: str | None = None) -> Json:
    """A legacy-shaped Twilio REST error body, which the SDK turns into TwilioRestException."""
    error = REST_ERRORS[code]
    body: Json = {
        "code": code,
        "message": error.message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": error.http_status,
    }
    if detail:
        body["detail"] = detail
    return body
