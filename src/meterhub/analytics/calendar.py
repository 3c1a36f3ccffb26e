"""Local calendar edges as UTC instants: where quarters, hours, days, weeks, months and years begin.

Every UTC offset in use is a multiple of 15 minutes, so each local edge falls on the UTC
15-minute grid the rollups are kept on: hour edges in Asia/Kathmandu (+05:45) are at :15 UTC,
in Asia/Kolkata (+05:30) at :30 UTC. Days are the stretch between local midnights, so a day is
23 or 25 hours long where clocks change; a midnight the clocks skip begins its day at the jump.
Weeks are ISO weeks: from Monday's local midnight to the next Monday's.

Buckets are named alike everywhere, in the CLI and the API: ``15m``, ``1h``, ``1d``, ``1w``,
``1mo``, ``1y`` (:data:`BUCKETS`); the older words ``hour``, ``day``, ``week``, ``month`` and
``year`` are accepted as aliases (:data:`BUCKET_ALIASES`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal, get_args

from meterhub.errors import InputError
from meterhub.timeutil import get_zone

__all__ = [
    "BUCKETS",
    "BUCKET_ALIASES",
    "BUCKET_CHOICES",
    "CalendarUnit",
    "bucket_name",
    "bucket_unit",
    "local_boundaries",
    "local_midnight",
    "to_zone",
]

CalendarUnit = Literal["15m", "hour", "day", "week", "month", "year"]
"""The calendar units :func:`local_boundaries` knows."""

BUCKETS: dict[str, CalendarUnit] = {
    "15m": "15m",
    "1h": "hour",
    "1d": "day",
    "1w": "week",
    "1mo": "month",
    "1y": "year",
}
"""The bucket names of the CLI and the API, and the calendar unit each stands for."""
BUCKET_ALIASES: dict[str, str] = {
    "hour": "1h",
    "day": "1d",
    "week": "1w",
    "month": "1mo",
    "year": "1y",
}
"""Older spellings still accepted, and the bucket name each means."""
BUCKET_CHOICES: tuple[str, ...] = (*BUCKETS, *BUCKET_ALIASES)
"""Every spelling a ``--bucket`` (or ``bucket=``) accepts."""


def bucket_name(text: str) -> str:
    """Return the bucket name ``text`` spells (``day`` gives ``1d``); raise InputError if none."""
    name = text.strip().lower()
    name = BUCKET_ALIASES.get(name, name)
    if name not in BUCKETS:
        raise InputError(
            f"unknown bucket {text!r}; use one of {', '.join(BUCKETS)} "
            f"(or {', '.join(BUCKET_ALIASES)})"
        )
    return name


def bucket_unit(text: str) -> CalendarUnit:
    """Return the calendar unit of the bucket ``text`` names (``1w`` gives ``week``)."""
    return BUCKETS[bucket_name(text)]

_QUARTER = timedelta(minutes=15)
_SECOND = timedelta(seconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SUB_DAY_STEP_S = {"15m": 900, "hour": 3600}
_MAX_SEARCH_QUARTERS = 12
"""Local hour edges are at most 1.5 hours apart on the UTC grid; more means an odd offset."""


def to_zone(tz: str | tzinfo) -> tzinfo:
    """Return ``tz`` as a tzinfo, reading a string as an IANA name."""
    return get_zone(tz) if isinstance(tz, str) else tz


def local_midnight(day: date, zone: tzinfo) -> datetime:
    """Return the UTC instant ``day`` begins in ``zone`` (the jump, where midnight is skipped)."""
    # fold=0 reads a skipped wall time with the offset before the jump: exactly the jump itself.
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def local_boundaries(
    start: datetime, end: datetime, tz: str | tzinfo, unit: CalendarUnit
) -> list[datetime]:
    """Return the UTC instants of the local ``unit`` edges that cover [start, end).

    The first edge is the last one at or before ``start`` and the last the first one at or
    after ``end``, so consecutive pairs are whole calendar periods, ready for
    ``Store.aggregate``. Where clocks jump over an edge, the period begins at the jump.
    """
    _require_aware(start, "start")
    _require_aware(end, "end")
    if end < start:
        raise InputError(f"end {end.isoformat()} is before start {start.isoformat()}")
    if unit not in get_args(CalendarUnit):
        known = ", ".join(get_args(CalendarUnit))
        raise InputError(f"unknown calendar unit {unit!r}; use one of {known}")
    zone = to_zone(tz)
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    if unit in _SUB_DAY_STEP_S:
        return _sub_day_edges(start_utc, end_utc, zone, _SUB_DAY_STEP_S[unit])
    return _calendar_edges(start_utc, end_utc, zone, unit)


def _require_aware(ts: datetime, what: str) -> None:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise InputError(f"{what} must carry a time zone, got {ts.isoformat()}")


def _floor_quarter(ts: datetime) -> datetime:
    return _EPOCH + (ts - _EPOCH) // _QUARTER * _QUARTER


def _offset_s(ts: datetime, zone: tzinfo) -> int:
    offset = ts.astimezone(zone).utcoffset()
    return 0 if offset is None else offset // _SECOND


def _is_edge(ts: datetime, zone: tzinfo, step_s: int) -> bool:
    """Tell whether a local ``step_s`` period begins at ``ts`` (on the UTC quarter grid)."""
    ts_s = (ts - _EPOCH) // _SECOND
    wall_s = ts_s + _offset_s(ts, zone)
    if wall_s % step_s == 0:
        return True
    # The clock may have jumped over an edge at this instant: then the period begins here.
    wall_before_s = ts_s + _offset_s(ts - _QUARTER, zone)
    return (wall_before_s - 1) // step_s != wall_s // step_s


def _search(ts: datetime, zone: tzinfo, step_s: int, direction: int) -> datetime:
    for _ in range(_MAX_SEARCH_QUARTERS):
        if _is_edge(ts, zone, step_s):
            return ts
        ts += direction * _QUARTER
    raise InputError(f"the offset of {zone} near {ts.isoformat()} is not a multiple of 15 minutes")


def _sub_day_edges(start: datetime, end: datetime, zone: tzinfo, step_s: int) -> list[datetime]:
    step = timedelta(seconds=step_s)
    edge = _search(_floor_quarter(start), zone, step_s, -1)
    edges = [edge]
    while edge < end:
        candidate = edge + step
        offset_s = _offset_s(candidate, zone)
        # One step on, on the grid and with the offset unchanged, is the next edge; else search.
        on_grid = ((candidate - _EPOCH) // _SECOND + offset_s) % step_s == 0
        if on_grid and offset_s == _offset_s(edge, zone):
            edge = candidate
        else:
            edge = _search(edge + _QUARTER, zone, step_s, 1)
        edges.append(edge)
    return edges


def _floor_day(day: date, unit: str) -> date:
    if unit == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks begin on Monday
    if unit == "year":
        return day.replace(month=1, day=1)
    if unit == "month":
        return day.replace(day=1)
    return day


def _next_day(day: date, unit: str) -> date:
    if unit == "week":
        return day + timedelta(days=7)
    if unit == "year":
        return day.replace(year=day.year + 1)
    if unit == "month" and day.month == 12:
        return day.replace(year=day.year + 1, month=1)
    if unit == "month":
        return day.replace(month=day.month + 1)
    return day + timedelta(days=1)


def _calendar_edges(start: datetime, end: datetime, zone: tzinfo, unit: str) -> list[datetime]:
    day = _floor_day(start.astimezone(zone).date(), unit)
    edges = [local_midnight(day, zone)]
    while edges[-1] < end:
        day = _next_day(day, unit)
        edges.append(local_midnight(day, zone))
    return edges
