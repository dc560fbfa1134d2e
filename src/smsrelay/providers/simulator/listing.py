"""The Messages list: its query parameters (To, From, DateSent, DateSent<, DateSent>, paging)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from smsrelay.providers.simulator.state import SimulatedMessage

# Source: https://www.twilio.com/docs/usage/twilios-response (list paging: PageSize default 50,
# maximum 1000).
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

Interval = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A parsed list request; each DateSent filter is an interval (see `parse_list_query`)."""

    to: str | None = None
    from_: str | None = None
    sent: Interval | None = None
    sent_after: Interval | None = None
    sent_before: Interval | None = None
    page: int = 0
    page_size: int = DEFAULT_PAGE_SIZE

    def matches(self, message: SimulatedMessage) -> bool:
        sent = message.received_at.replace(microsecond=0)
        return (
            self.to in (None, message.to)
            and self.from_ in (None, message.from_)
            and (self.sent is None or self.sent[0] <= sent <= self.sent[1])
            and (self.sent_after is None or sent >= self.sent_after[0])
            and (self.sent_before is None or sent <= self.sent_before[1])
        )


def parse_list_query(query: Mapping[str, str]) -> ListQuery:
    """Read the list parameters; raises ValueError naming a parameter that is malformed.

    `DateSent>=2024-01-02` in a query string is the key `DateSent>` with value `2024-01-02`,
    so `DateSent>`/`DateSent<` are inclusive bounds, as Twilio documents them. A date-only
    value covers that whole UTC day, and so does any `DateSent` (equality) value: the SDK
    sends a `date` as midnight, `2024-01-02T00:00:00Z`.
    """
    return ListQuery(
        to=query.get("To"),
        from_=query.get("From"),
        sent=_interval(query, "DateSent", whole_day=True),
        sent_after=_interval(query, "DateSent>"),
        sent_before=_interval(query, "DateSent<"),
        page=_integer(query, "Page", 0, minimum=0),
        page_size=min(_integer(query, "PageSize", DEFAULT_PAGE_SIZE, minimum=1), MAX_PAGE_SIZE),
    )


def select(messages: Iterable[SimulatedMessage], query: ListQuery) -> list[SimulatedMessage]:
    """The matching messages, newest first, as Twilio orders them."""
    found = [m for m in messages if query.matches(m)]
    return sorted(found, key=lambda m: m.received_at, reverse=True)


def filters_of(query: Mapping[str, str]) -> dict[str, str]:
    """The filter parameters to repeat in page links (everything but paging)."""
    return {k: v for k, v in query.items() if k not in {"Page", "PageSize", "PageToken"}}


def _interval(query: Mapping[str, str], name: str, *, whole_day: bool = False) -> Interval | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return _parse_interval(raw, whole_day)
    except ValueError:
        raise ValueError(f"{name} must be YYYY-MM-DD or an ISO 8601 date-time") from None


def _parse_interval(raw: str, whole_day: bool) -> Interval:
    if len(raw) == len("YYYY-MM-DD"):
        return _day(date.fromisoformat(raw))
    moment = datetime.fromisoformat(raw)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return _day(moment.astimezone(UTC).date()) if whole_day else (moment, moment)


def _day(day: date) -> Interval:
    start = datetime.combine(day, time(), UTC)
    return start, start + timedelta(days=1, seconds=-1)


def _integer(query: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise ValueError(f"{name} must be an integer of at least {minimum}")
    return int(raw)
