"""MSG91 delivery reports: their status codes mapped onto ours, and a parser for the webhook body.

MSG91 posts reports to the URL set in its panel, in one of these shapes
(msg91.com/help/how-can-i-get-the-delivery-reports-on-my-webhook-url):
  v2  form field `data`, a JSON string: [{requestId, senderId, report: [{number, status, desc,
      date, failedReason, ...}], userId, campaignName}]
  v3  one JSON object per report: {requestId, number, status, desc, date, senderId, ...}
The v2 body may be handed over as the form (`{"data": "..."}`), as its decoded list, or as one
request object. v4 (built for CleverTap) carries no request id and is not accepted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from smsrelay.domain.status import Status
from smsrelay.providers.base import ProviderError

_SOURCE = "msg91.com/help/how-can-i-get-the-delivery-reports-on-my-webhook-url"

# MSG91 report status -> our status. Codes not listed map to None: the report is kept as
# received but moves nothing.
MSG91_DLR_STATUSES: dict[str, Status] = {
    "1": Status.DELIVERED,  # "Delivered" (_SOURCE)
    "2": Status.UNDELIVERED,  # "Failed": the operator reported it undelivered (_SOURCE)
    "9": Status.FAILED,  # "NDNC": promotional SMS to a do-not-disturb number, not sent (_SOURCE)
    "16": Status.FAILED,  # "Rejected" (_SOURCE lists 16 and 25 together)
    "17": Status.FAILED,  # "Blocked number" (_SOURCE)
    "25": Status.FAILED,  # "Rejected" (_SOURCE lists 16 and 25 together)
}

# The report's `date` ("2024-05-22 10:06:20") has no offset. Assumption, not documented by
# MSG91: it is Indian Standard Time, the time MSG91's panel shows.
MSG91_REPORT_TIMEZONE = timezone(timedelta(hours=5, minutes=30), "IST")
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


class DeliveryReportError(ValueError):
    """The webhook body is not an MSG91 delivery report; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class ParsedReport:
    """One recipient's report: `status` is ours (None for an unknown code), `raw_status` MSG91's."""

    request_id: str
    number: str | None
    status: Status | None
    raw_status: str
    description: str | None
    timestamp: datetime | None

    @property
    def error(self) -> ProviderError | None:
        """The failure as `errorDetails` would show it; None unless undelivered or failed."""
        if self.status not in (Status.UNDELIVERED, Status.FAILED):
            return None
        message = self.description or f"MSG91 report status {self.raw_status}"
        return ProviderError(message=message, code=self.raw_status)


def our_status(msg91_status: str | int) -> Status | None:
    """Our status for an MSG91 report status code; None for codes we do not know."""
    return MSG91_DLR_STATUSES.get(str(msg91_status).strip())


def parse_delivery_report(payload: dict[str, Any] | list[Any]) -> list[ParsedReport]:
    """Every per-recipient report in an MSG91 webhook body (v2 or v3 shape)."""
    reports: list[ParsedReport] = []
    for request in _requests(payload):
        reports.extend(_reports_of(request))
    return reports


def _requests(payload: object) -> list[dict[str, Any]]:
    """The request objects in a body: the v2 form, its decoded list, or single objects."""
    if isinstance(payload, dict) and "data" in payload and "requestId" not in payload:
        return _requests(_decoded(payload["data"]))
    if isinstance(payload, dict):
        return [payload]
    if isinstance(payload, list) and payload and all(isinstance(i, dict) for i in payload):
        return list(payload)
    raise DeliveryReportError("expected an MSG91 report object or a non-empty list of them")


def _decoded(data: object) -> object:
    if not isinstance(data, str):
        return data
    try:
        return json.loads(data)
    except ValueError:
        raise DeliveryReportError("the `data` field is not JSON") from None


def _reports_of(request: dict[str, Any]) -> list[ParsedReport]:
    request_id = _text(request.get("requestId"))
    if not request_id:
        raise DeliveryReportError("a report has no requestId")
    items = request.get("report", [request])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise DeliveryReportError("`report` must be a list of objects")
    return [_report(request_id, item) for item in items]


def _report(request_id: str, item: dict[str, Any]) -> ParsedReport:
    raw_status = _text(item.get("status"))
    if raw_status is None:
        raise DeliveryReportError("a report has no status")
    return ParsedReport(
        request_id=request_id,
        number=_text(item.get("number")),
        status=our_status(raw_status),
        raw_status=raw_status,
        description=_description(item),
        timestamp=_timestamp(item.get("date")),
    )


def _description(item: dict[str, Any]) -> str | None:
    desc, reason = _text(item.get("desc")), _text(item.get("failedReason"))
    if desc and reason and reason != desc:
        return f"{desc}: {reason}"
    return desc or reason


def _timestamp(value: object) -> datetime | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return datetime.strptime(text, _DATE_FORMAT).replace(tzinfo=MSG91_REPORT_TIMEZONE)
    except ValueError:
        raise DeliveryReportError("a report's `date` is not 'YYYY-MM-DD HH:MM:SS'") from None


def _text(value: object) -> str | None:
    """A field as stripped text: MSG91 sends numbers as strings, but accept plain numbers."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        return str(value).strip() or None
    raise DeliveryReportError("a report field has an unexpected type")
