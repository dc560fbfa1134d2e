"""Quiet hours: the earliest moment a marketing SMS may reach a number, in each of its zones."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones

ALL_DAYS: Final = frozenset(range(7))  # Monday = 0, as `date.weekday()` counts
WEEKDAYS: Final = frozenset(range(5))
WEEKEND: Final = frozenset({5, 6})
# How far ahead a window is looked for; a week covers every weekday-based rule.
HORIZON_DAYS: Final = 8
UNKNOWN_ZONE: Final = "Etc/Unknown"  # what phonenumbers answers when it cannot tell


@dataclass(frozen=True, slots=True)
class Window:
    """Local hours [start, end) on `weekdays` when marketing may be sent; `end` None = midnight."""

    start: time
    end: time | None
    weekdays: frozenset[int] = ALL_DAYS

    def contains(self, local: datetime) -> bool:
        clock = local.time().replace(tzinfo=None)
        before_end = self.end is None or clock < self.end
        return local.weekday() in self.weekdays and self.start <= clock and before_end


# A rule allows a moment when any of its windows does; every rule that applies must allow it.
Rule = tuple[Window, ...]

# Product default (spec §4): 08:00-21:00 local, every day.
DEFAULT_RULE: Final[Rule] = (Window(time(8), time(21)),)

# Legal windows by region (ISO 3166), intersected with the tenant's own window so a tenant
# can narrow its hours but never widen them past the law.
COUNTRY_RULES: Final[dict[str, Rule]] = {
    # TCPA, 47 CFR 64.1200(c)(1): no telephone solicitation before 8 a.m. or after 9 p.m. local.
    "US": (Window(time(8), time(21)),),
    # CRTC Unsolicited Telecommunications Rules, Part III (Telemarketing Rules): 9:00-21:30 on
    # weekdays, 10:00-18:00 on weekends; applied to marketing SMS as the conservative reading.
    "CA": (Window(time(9), time(21, 30), WEEKDAYS), Window(time(10), time(18), WEEKEND)),
    # TRAI TCCCPR: promotional commercial communication is not delivered 21:00-09:00.
    "IN": (Window(time(9), time(21)),),
}


def parse_window(start: str, end: str) -> Window:
    """A daily window from "HH:MM" strings; end "24:00" means midnight. ValueError when wrong."""
    opens = time.fromisoformat(start)
    closes = None if end == "24:00" else time.fromisoformat(end)
    if closes is not None and closes <= opens:
        raise ValueError(f"the window must end after it starts ({start}-{end})")
    return Window(opens, closes)


def rules_for(region: str | None, tenant_rule: Rule | None = None) -> tuple[Rule, ...]:
    """The rules a number in `region` is held to: the tenant's (or default) and the country's."""
    country = COUNTRY_RULES.get(region or "")
    base = tenant_rule or DEFAULT_RULE
    return (base,) if country is None else (base, country)


def region_of(e164: str) -> str | None:
    """The ISO 3166 region of a number, None when it has none (or cannot be parsed)."""
    try:
        region: str | None = phonenumbers.region_code_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return None
    return region


@lru_cache(maxsize=4096)
def zones_for(e164: str, fallback: str = "UTC") -> tuple[ZoneInfo, ...]:
    """The time zones `e164` may be in (phonenumbers' geocoding), or the fallback zone."""
    try:
        names = number_zones.time_zones_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        names = ()
    zones = [zone for name in names if (zone := _zone(name)) is not None]
    return tuple(zones) or (ZoneInfo(fallback),)


def _zone(name: str) -> ZoneInfo | None:
    if name == UNKNOWN_ZONE:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def allowed_at(instant: datetime, zone: ZoneInfo, rules: Sequence[Rule]) -> bool:
    """True when every rule allows `instant` as seen on a clock in `zone`."""
    local = instant.astimezone(zone)
    return all(any(window.contains(local) for window in rule) for rule in rules)


def next_allowed(now: datetime, zones: Sequence[ZoneInfo], rules: Sequence[Rule]) -> datetime:
    """`now` when it is inside the hours in every zone, else the earliest such moment.

    When the zones never share a window (a number that maps to most of a continent), the
    earliest moment that suits the most zones is used instead.
    """
    if all(allowed_at(now, zone, rules) for zone in zones):
        return now
    candidates = sorted({now, *_window_starts(now, zones, rules)})
    for candidate in candidates:
        if all(allowed_at(candidate, zone, rules) for zone in zones):
            return candidate
    return max(candidates, key=lambda c: (_zones_allowing(c, zones, rules), -c.timestamp()))


def _zones_allowing(instant: datetime, zones: Sequence[ZoneInfo], rules: Sequence[Rule]) -> int:
    return sum(allowed_at(instant, zone, rules) for zone in zones)


def _window_starts(
    now: datetime, zones: Sequence[ZoneInfo], rules: Sequence[Rule]
) -> Iterator[datetime]:
    """Every window opening after `now` within the horizon, as instants, in every zone."""
    for zone in zones:
        first = now.astimezone(zone).date() - timedelta(days=1)
        for day in (first + timedelta(days=n) for n in range(HORIZON_DAYS + 1)):
            for window in (w for rule in rules for w in rule):
                opening = _opening(day, window, zone)
                if opening is not None and opening >= now:
                    yield opening.astimezone(now.tzinfo)


def _opening(day: date, window: Window, zone: ZoneInfo) -> datetime | None:
    """The instant `window` opens on local `day` in `zone` (wall time; DST handled by zoneinfo)."""
    if day.weekday() not in window.weekdays:
        return None
    return datetime.combine(day, window.start, tzinfo=zone)
