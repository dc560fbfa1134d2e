"""Quiet hours: local windows per zone, overlaps, country rules and both sides of DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from smsrelay.domain.quiet_hours import (
    DEFAULT_RULE,
    Window,
    next_allowed,
    parse_window,
    region_of,
    rules_for,
    zones_for,
)

NEW_YORK = "+12125550100"  # America/New_York
LONDON = "+447400123456"  # Europe/London (and the Crown dependencies)
WINNIPEG = "+12042345678"  # America/Winnipeg, Canada


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def next_for(phone: str, now: datetime, tenant: Window | None = None) -> datetime:
    rules = rules_for(region_of(phone), None if tenant is None else (tenant,))
    return next_allowed(now, zones_for(phone), rules)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # US DST starts Sun 8 Mar 2026 02:00 local: 08:00 is EST (13:00Z) before, EDT (12:00Z) on.
        (utc(2026, 3, 7, 3, 0), utc(2026, 3, 7, 13, 0)),  # Fri 22:00 EST -> Sat 08:00 EST
        (utc(2026, 3, 8, 3, 0), utc(2026, 3, 8, 12, 0)),  # Sat 22:00 EST -> Sun 08:00 EDT
        (utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 12, 0)),  # 01:30 EST, just before the change
        (utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 12, 0)),  # 03:30 EDT, just after it
        (utc(2026, 3, 8, 12, 0), utc(2026, 3, 8, 12, 0)),  # 08:00 EDT: open
        (utc(2026, 3, 9, 0, 59), utc(2026, 3, 9, 0, 59)),  # 20:59 EDT: still open
        (utc(2026, 3, 9, 1, 0), utc(2026, 3, 9, 12, 0)),  # 21:00 EDT: closed until 08:00
        # US DST ends Sun 1 Nov 2026 02:00 local: 08:00 is EDT (12:00Z) before, EST (13:00Z) on.
        (utc(2026, 10, 31, 11, 0), utc(2026, 10, 31, 12, 0)),  # Sat 07:00 EDT
        (utc(2026, 11, 1, 2, 0), utc(2026, 11, 1, 13, 0)),  # Sat 22:00 EDT -> Sun 08:00 EST
        (utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 13, 0)),  # 01:30 EDT, first pass of 01:xx
        (utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 13, 0)),  # 01:30 EST, second pass
        (utc(2026, 11, 2, 1, 30), utc(2026, 11, 2, 1, 30)),  # 20:30 EST: open
        (utc(2026, 11, 2, 2, 0), utc(2026, 11, 2, 13, 0)),  # 21:00 EST: closed
    ],
)
def test_new_york_across_both_dst_changes(now: datetime, expected: datetime) -> None:
    assert next_for(NEW_YORK, now) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # UK summer time starts Sun 29 Mar 2026 01:00 UTC; ends Sun 25 Oct 2026 01:00 UTC.
        (utc(2026, 3, 28, 7, 30), utc(2026, 3, 28, 8, 0)),  # 07:30 GMT -> 08:00 GMT
        (utc(2026, 3, 29, 6, 30), utc(2026, 3, 29, 7, 0)),  # 07:30 BST -> 08:00 BST
        (utc(2026, 10, 24, 6, 30), utc(2026, 10, 24, 7, 0)),  # 07:30 BST -> 08:00 BST
        (utc(2026, 10, 25, 7, 30), utc(2026, 10, 25, 8, 0)),  # 07:30 GMT -> 08:00 GMT
        (utc(2026, 10, 25, 20, 59), utc(2026, 10, 25, 20, 59)),  # 20:59 GMT: open
    ],
)
def test_london_across_both_dst_changes(now: datetime, expected: datetime) -> None:
    assert next_for(LONDON, now) == expected


def test_a_number_in_several_zones_waits_for_the_overlap() -> None:
    zones = (ZoneInfo("America/New_York"), ZoneInfo("America/Los_Angeles"))
    rules = (DEFAULT_RULE,)
    # July: EDT = UTC-4, PDT = UTC-7. 12:00Z is 08:00 in New York but 05:00 in Los Angeles.
    assert next_allowed(utc(2026, 7, 1, 12), zones, rules) == utc(2026, 7, 1, 15)
    assert next_allowed(utc(2026, 7, 1, 20), zones, rules) == utc(2026, 7, 1, 20)
    # 01:00Z is 21:00 in New York (closed) and 18:00 in Los Angeles (open): wait for both.
    assert next_allowed(utc(2026, 7, 2, 1), zones, rules) == utc(2026, 7, 2, 15)


def test_zones_that_never_overlap_use_the_moment_most_of_them_are_open() -> None:
    # In July these three windows never share a moment: Tokyo 23:00Z-12:00Z, London
    # 07:00Z-20:00Z, New York 12:00Z-01:00Z.
    zones = (ZoneInfo("Asia/Tokyo"), ZoneInfo("Europe/London"), ZoneInfo("America/New_York"))
    now = utc(2026, 7, 1, 6)  # 15:00 Tokyo, 07:00 London, 02:00 New York
    found = next_allowed(now, zones, (DEFAULT_RULE,))
    assert found == utc(2026, 7, 1, 7)  # 08:00 in London: two of the three zones are open


def test_canadian_rules_are_narrower_on_weekends() -> None:
    # Winnipeg is UTC-5 in summer. Sat 4 Jul 2026 09:30 local: the weekend window opens at 10:00.
    assert next_for(WINNIPEG, utc(2026, 7, 4, 14, 30)) == utc(2026, 7, 4, 15, 0)
    # Fri 3 Jul 09:30 local: inside both 08:00-21:00 and the weekday 09:00-21:30.
    assert next_for(WINNIPEG, utc(2026, 7, 3, 14, 30)) == utc(2026, 7, 3, 14, 30)
    # Fri 08:30 local: the default allows it, Canada's weekday rule does not until 09:00.
    assert next_for(WINNIPEG, utc(2026, 7, 3, 13, 30)) == utc(2026, 7, 3, 14, 0)
    # Sat 18:30 local: the weekend window has closed; Sunday opens at 10:00.
    assert next_for(WINNIPEG, utc(2026, 7, 4, 23, 30)) == utc(2026, 7, 5, 15, 0)


def test_a_tenant_may_narrow_its_hours_but_not_widen_them_past_the_law() -> None:
    narrow = parse_window("10:00", "18:00")
    assert next_for(NEW_YORK, utc(2026, 7, 1, 13), narrow) == utc(2026, 7, 1, 14)  # 09:00 EDT
    wide = parse_window("06:00", "23:00")
    assert next_for(NEW_YORK, utc(2026, 7, 1, 11), wide) == utc(2026, 7, 1, 12)  # TCPA 08:00
    # Where no country rule applies the tenant's own window is the only one.
    all_day = parse_window("00:00", "24:00")
    assert next_for(LONDON, utc(2026, 7, 1, 2), all_day) == utc(2026, 7, 1, 2)


def test_numbers_without_a_known_zone_use_the_fallback() -> None:
    assert zones_for("+80012345678") == (ZoneInfo("UTC"),)
    assert zones_for("not a number") == (ZoneInfo("UTC"),)
    assert zones_for("+80012345678", fallback="Europe/Paris") == (ZoneInfo("Europe/Paris"),)
    assert region_of("not a number") is None


@pytest.mark.parametrize(
    ("start", "end", "window"),
    [
        ("08:00", "21:00", Window(time(8), time(21))),
        ("00:00", "24:00", Window(time(0), None)),
        ("09:30", "17:45", Window(time(9, 30), time(17, 45))),
    ],
)
def test_parse_window(start: str, end: str, window: Window) -> None:
    assert parse_window(start, end) == window


@pytest.mark.parametrize(("start", "end"), [("21:00", "08:00"), ("08:00", "08:00"), ("8h", "9")])
def test_parse_window_refuses_bad_windows(start: str, end: str) -> None:
    with pytest.raises(ValueError):
        parse_window(start, end)
