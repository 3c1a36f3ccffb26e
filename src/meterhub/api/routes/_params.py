"""What the resource routes share: time-range query parameters and the objects a caller may see.

Objects the caller may not see are answered exactly like objects that do not exist (404), so
ids never leak. Times are read as the CLI reads them (ISO 8601, a date, epoch seconds, ``now-2h``)
and must lie between 1970 and 2200; anything else is a 422 with a message, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Query, Request

from meterhub.api.render import TABULAR_FORMATS, choose_format
from meterhub.errors import InputError, UnknownMeterError, UnknownPlaceError
from meterhub.model import Meter, Place
from meterhub.store.base import Store
from meterhub.timeutil import get_zone, parse_time

__all__ = [
    "EndQuery",
    "StartQuery",
    "TzQuery",
    "check_acceptable",
    "iso",
    "records",
    "time_range",
    "visible_meter",
    "visible_place",
    "zone_name",
]

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_TIME_HELP = "ISO 8601 (2026-03-29T10:00:00+02:00), a date (2026-03-29), epoch seconds, or now-2h."

StartQuery = Annotated[
    str | None,
    Query(max_length=64, description=f"Start of the range: {_TIME_HELP} Times without an offset are local."),
]
EndQuery = Annotated[
    str | None, Query(max_length=64, description=f"End of the range (default now): {_TIME_HELP}")
]
TzQuery = Annotated[
    str | None,
    Query(max_length=64, description="IANA time zone such as Europe/Oslo (default: the meter's or place's)."),
]


def zone_name(tz: str) -> str:
    """Return ``tz`` if it names an IANA zone; raise InputError otherwise."""
    try:
        get_zone(tz)
    except (OSError, ValueError) as exc:  # a folder of the zone database, or a name too long
        raise InputError(f"unknown time zone {tz!r} (use an IANA name like Europe/Oslo)") from exc
    return tz


def _instant(text: str, tz: str, what: str, now: datetime) -> datetime:
    try:
        instant = parse_time(text, tz, now)
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from exc
    except (OverflowError, ValueError, OSError) as exc:
        raise InputError(f"{what} {text!r} is out of range") from exc
    if not EARLIEST <= instant <= LATEST:
        raise InputError(f"{what} {text!r} must lie between 1970-01-01 and 2200-01-01")
    return instant


def time_range(
    start: str | None, end: str | None, tz: str, default_span: timedelta
) -> tuple[datetime, datetime]:
    """Return [start, end) in UTC; ``end`` defaults to now and ``start`` to ``default_span`` before it."""
    now = datetime.now(UTC)
    end_ts = _instant(end, tz, "end", now) if end is not None else now
    start_ts = (
        _instant(start, tz, "start", now) if start is not None else max(EARLIEST, end_ts - default_span)
    )
    if end_ts <= start_ts:
        raise InputError(f"end {end_ts.isoformat()} must be after start {start_ts.isoformat()}")
    return start_ts, end_ts


def visible_meter(store: Store, can_see: Callable[[str], bool], meter_id: str) -> Meter:
    """Return a meter the caller may see; raise UnknownMeterError (404) for any other id."""
    if not can_see(meter_id):
        raise UnknownMeterError(meter_id)
    return store.get_meter(meter_id)


def visible_place(store: Store, can_see: Callable[[str], bool], place_id: str) -> Place:
    """Return a place the caller may see; raise UnknownPlaceError (404) for any other id."""
    if not can_see(place_id):
        raise UnknownPlaceError(place_id)
    return store.get_place(place_id)


def check_acceptable(request: Request, *, tabular: bool = False) -> None:
    """Refuse (406) before a write when the answer could not be given in the format asked."""
    choose_format(request, ("json", "xml", *TABULAR_FORMATS) if tabular else ("json", "xml"))


def iso(ts: datetime | None) -> str | None:
    """Return an aware datetime as ISO 8601 text, or None."""
    return None if ts is None else ts.isoformat()


def records(items: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return flat rows for CSV and YAML: datetimes as ISO text, everything else as is."""
    return [{k: iso(v) if isinstance(v, datetime) else v for k, v in item.items()} for item in items]
