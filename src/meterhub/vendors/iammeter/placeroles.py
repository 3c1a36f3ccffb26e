"""Which meters make up an IAMMETER place, and as what: told by the place's own energy.

The cloud API lists no place's meters. A place's ``energyhistory`` does say what its meters
counted, hour by hour: the grid meter's import and export (fromGrid, toGrid), the solar meter's
output (yield) and the special-load meter's import (specialLoad). A meter belongs to the place in
the role whose hours its own register increments (meterdatalist2) repeat: at least
:data:`MIN_AGREEING_SHARE` of the hours agree within :data:`MATCH_SHARE` plus
:data:`MATCH_SLACK_KWH` (the two are read one upload apart at each hour's edge, and
energyhistory rounds to 0.01 kWh).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from meterhub.model import PHASE_TOTAL
from meterhub.vendors.iammeter import mapping

__all__ = [
    "MATCH_SHARE",
    "MATCH_SLACK_KWH",
    "MIN_AGREEING_SHARE",
    "MIN_ENERGY_KWH",
    "MIN_HOURS",
    "PlaceHour",
    "RoleMatch",
    "best_role",
    "meter_hours",
    "place_hours",
]

MATCH_SHARE = 0.15
"""Tolerated mismatch, as a share of the energy compared."""
MATCH_SLACK_KWH = 0.02
"""Tolerated mismatch per hour compared, in kWh."""
MIN_ENERGY_KWH = 0.2
"""A role whose hours hold less energy than this cannot be told apart from an idle meter."""
MIN_HOURS = 6
"""Fewest hours both sides must have to compare them."""
MIN_AGREEING_SHARE = 0.9
"""The share of compared values that must agree."""
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class PlaceHour:
    """A place's energy in one hour, in kWh, as energyhistory reports it."""

    yield_kwh: float
    from_grid_kwh: float
    to_grid_kwh: float
    special_load_kwh: float


@dataclass(frozen=True, slots=True)
class RoleMatch:
    """A meter's role in a place and how far apart the two were (0: identical)."""

    role: str
    mismatch: float


def place_hours(payload: object, zone: ZoneInfo) -> dict[datetime, PlaceHour]:
    """Return an hourly energyhistory answer keyed by each hour's UTC start."""
    columns = {
        role: {i.start: (i.import_kwh or 0.0, i.export_kwh or 0.0)
               for i in mapping.map_energyhistory(payload, "place", zone, "hour", role)}
        for role in mapping.ENERGYHISTORY_ROLE_FIELDS
    }
    return {
        start: PlaceHour(columns["solar"][start][0], from_grid, to_grid, columns["special"][start][0])
        for start, (from_grid, to_grid) in columns["grid"].items()
    }


def _hour_of(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def meter_hours(payload: object) -> dict[datetime, tuple[float, float]]:
    """Return a meter's (import, export) kWh per UTC hour from an hourly meterdatalist2 answer.

    An hour's energy is the register increment between the first uploads of it and of the next.
    """
    totals = sorted(
        (r.ts, r.energy_import_kwh, r.energy_export_kwh)
        for r in mapping.map_meterdatalist2(payload, "meter")
        if r.phase == PHASE_TOTAL and r.energy_import_kwh is not None and r.energy_export_kwh is not None
    )
    hours: dict[datetime, tuple[float, float]] = {}
    for (ts0, imp0, exp0), (ts1, imp1, exp1) in pairwise(totals):
        hour = _hour_of(ts0)
        if _hour_of(ts1) == hour + _HOUR and hour not in hours:
            hours[hour] = (max(0.0, imp1 - imp0), max(0.0, exp1 - exp0))
    return hours


def _mismatch(pairs: list[tuple[float, float]]) -> float | None:
    """Return the share of values that differ, or None when too many differ or too little energy agrees.

    Values are compared one by one, so an hour the place booked late (the energy of an offline
    stretch lands in the hour its meter came back) costs one value, not the match.
    """
    agreeing = [expected for expected, seen in pairs
                if abs(expected - seen) <= MATCH_SHARE * max(expected, seen) + MATCH_SLACK_KWH]
    if sum(agreeing) < MIN_ENERGY_KWH or len(agreeing) < MIN_AGREEING_SHARE * len(pairs):
        return None
    return 1.0 - len(agreeing) / len(pairs)


def best_role(
    place: Mapping[datetime, PlaceHour], meter: Mapping[datetime, tuple[float, float]]
) -> RoleMatch | None:
    """Return the role in which the meter's hours repeat the place's, or None when in none."""
    common = sorted(set(place) & set(meter))
    if len(common) < MIN_HOURS:
        return None
    candidates = {
        "grid": [pair for h in common for pair in ((place[h].from_grid_kwh, meter[h][0]),
                                                   (place[h].to_grid_kwh, meter[h][1]))],
        "solar": [(place[h].yield_kwh, meter[h][0]) for h in common],
        "special": [(place[h].special_load_kwh, meter[h][0]) for h in common],
    }
    found = [RoleMatch(role, m) for role, pairs in candidates.items() if (m := _mismatch(pairs)) is not None]
    return min(found, key=lambda match: match.mismatch) if found else None
