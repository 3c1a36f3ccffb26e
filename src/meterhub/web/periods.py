"""The periods a dashboard view shows: local calendar hours, days, weeks, months and years.

A view is a range kind and an anchor, a local date or time in the meter's zone. Its bounds are
local calendar edges turned into UTC instants, so a day is 23, 24 or 25 hours long; previous and
next step one calendar period. Everything here is pure: no store, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Literal, cast, get_args

from meterhub.analytics.calendar import CalendarUnit, local_midnight, to_zone
from meterhub.errors import InputError

__all__ = ["RANGES", "Period", "RangeKind", "energy_unit", "period_of"]

RangeKind = Literal["hour", "day", "week", "month", "year", "custom"]
RANGES: tuple[str, ...] = get_args(RangeKind)
MAX_CUSTOM = timedelta(days=3 * 366)
"""The longest custom range a view draws."""


@dataclass(frozen=True)
class Period:
    """One view's [start, end) in UTC with its anchor and its neighbours' anchors (local ISO text)."""

    kind: RangeKind
    start: datetime
    end: datetime
    anchor: str
    previous: str | None
    next: str | None
    title: str


def _month_start(day: date, months: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _local(day: date, zone: tzinfo) -> datetime:
    return local_midnight(day, zone).astimezone(UTC)


def _parse_anchor(text: str | None, zone: tzinfo, now: datetime) -> datetime:
    """Return the anchor as a local wall-clock time (naive), default now in the zone."""
    if not text:
        return now.astimezone(zone).replace(tzinfo=None)
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time())
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"anchor {text!r} is not a date (YYYY-MM-DD) or local time (YYYY-MM-DDTHH:MM)"
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(zone).replace(tzinfo=None)
    return parsed


def _hour_of(anchor: str | None, zone: tzinfo, now: datetime) -> Period:
    """Return the local clock hour holding ``anchor``; its neighbours' anchors carry their offset.

    The offset tells the two 02:00 hours of an autumn night apart, so stepping walks through both.
    """
    aware = _aware_anchor(anchor, zone, now)
    local = aware.astimezone(zone)
    first = local.replace(minute=0, second=0, microsecond=0)
    begin = first.astimezone(UTC)
    if begin > aware.astimezone(UTC):  # a zone whose offset is not whole hours: stay in the hour
        begin -= timedelta(hours=1)
    stop = begin + timedelta(hours=1)

    def text(instant: datetime) -> str:
        return instant.astimezone(zone).isoformat(timespec="minutes")

    shown = begin.astimezone(zone)
    title = f"{shown:%a %d %b %Y, %H:00} {shown.tzname()}"
    return Period("hour", begin, stop, text(begin), text(begin - timedelta(hours=1)), text(stop), title)


def _aware_anchor(text: str | None, zone: tzinfo, now: datetime) -> datetime:
    """Return an anchor as an instant: with its own offset if it has one, else local to ``zone``."""
    if text:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    return _parse_anchor(text, zone, now).replace(tzinfo=zone)


def period_of(
    kind: str,
    anchor: str | None,
    tz: str,
    now: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Period:
    """Return the view of ``kind`` holding ``anchor`` (default: now) in zone ``tz``.

    ``custom`` takes ``start`` and ``end`` instead and has no neighbours. An anchor whose
    period or neighbours lie beyond what dates can hold is an InputError.
    """
    try:
        return _period_of(kind, anchor, tz, now, start, end)
    except (OverflowError, ValueError) as exc:  # a calendar edge beyond year 1 or 9999
        raise InputError(f"anchor {anchor!r} is out of range; choose a date between 1970 and 2199") from exc


def _period_of(
    kind: str,
    anchor: str | None,
    tz: str,
    now: datetime,
    start: datetime | None,
    end: datetime | None,
) -> Period:
    zone = to_zone(tz)
    if kind == "custom":
        if start is None or end is None:
            raise InputError("a custom range needs start and end")
        if end <= start:
            raise InputError("end must be after start")
        if end - start > MAX_CUSTOM:
            raise InputError("a custom range may span at most three years; use the year view")
        local = start.astimezone(zone)
        return Period(
            "custom",
            start,
            end,
            local.isoformat(timespec="minutes"),
            None,
            None,
            _span_title(start, end, zone),
        )
    if kind not in RANGES:
        raise InputError(f"unknown range {kind!r}; use one of {', '.join(RANGES)}")
    wall = _parse_anchor(anchor, zone, now)
    if kind == "hour":
        return _hour_of(anchor, zone, now)
    return _calendar_period(cast(RangeKind, kind), wall.date(), zone)


@lru_cache(maxsize=512)
def _calendar_period(kind: RangeKind, day: date, zone: tzinfo) -> Period:
    """Return the local day, week, month or year holding ``day`` (the same for every request)."""
    if kind == "day":
        lo, hi, prev = day, day + timedelta(days=1), day - timedelta(days=1)
        title = f"{day:%A %d %B %Y}"
    elif kind == "week":
        lo = day - timedelta(days=day.weekday())
        hi, prev = lo + timedelta(days=7), lo - timedelta(days=7)
        title = f"Week {lo.isocalendar().week}, {lo:%d %b} to {hi - timedelta(days=1):%d %b %Y}"
    elif kind == "month":
        lo, hi, prev = _month_start(day), _month_start(day, 1), _month_start(day, -1)
        title = f"{lo:%B %Y}"
    else:
        lo, hi, prev = date(day.year, 1, 1), date(day.year + 1, 1, 1), date(day.year - 1, 1, 1)
        title = str(day.year)
    return Period(
        kind, _local(lo, zone), _local(hi, zone), lo.isoformat(), prev.isoformat(), hi.isoformat(), title
    )


def _span_title(start: datetime, end: datetime, zone: tzinfo) -> str:
    return f"{start.astimezone(zone):%d %b %Y %H:%M} to {end.astimezone(zone):%d %b %Y %H:%M}"


def energy_unit(period: Period) -> CalendarUnit:
    """Return the calendar unit of the energy bars of a view."""
    fixed: dict[str, CalendarUnit] = {
        "hour": "15m",
        "day": "hour",
        "week": "day",
        "month": "day",
        "year": "month",
    }
    if period.kind in fixed:
        return fixed[period.kind]
    span = period.end - period.start
    if span <= timedelta(hours=6):
        return "15m"
    if span <= timedelta(days=3):
        return "hour"
    return "day" if span <= timedelta(days=93) else "month"
