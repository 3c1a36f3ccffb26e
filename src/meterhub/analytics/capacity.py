"""The Norwegian capacity tariff ("kapasitetsledd") of any place, as an AMS reader computes it.

The rule: each local hour's grid import (kWh in the hour, so kWh/h) is offered as a peak of
the local day the hour starts in; a day keeps one peak, and only a bigger hour replaces it.
The month value is the mean of the biggest peaks of the top ``peak_days`` (3) distinct days
(of fewer while the month has fewer days). The current step is the first threshold at or
above the month value, as the reader's firmware compares, so exactly 10 kWh/h stays in the
10 step; the next threshold is the one after it. Peaks start afresh with each local month.
Hours are local hours, so DST days offer 23 or 25 of them, and zones with 30- or 45-minute
offsets have their hours off the UTC hour.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from meterhub.analytics.calendar import local_boundaries, local_midnight, to_zone
from meterhub.analytics.energy import SOURCE_NONE, EnergyBucket
from meterhub.analytics.places import grid_energy
from meterhub.analytics.tariffs import Tariff
from meterhub.errors import InputError
from meterhub.model import Place, utc_now
from meterhub.store.base import Store

__all__ = [
    "DEFAULT_PEAK_DAYS",
    "DEFAULT_THRESHOLDS_KWH",
    "Capacity",
    "CapacityPeak",
    "capacity_of_hours",
    "month_edges",
    "place_capacity",
]

DEFAULT_THRESHOLDS_KWH: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0, 25.0, 50.0, 75.0, 100.0, 150.0)
DEFAULT_PEAK_DAYS = 3
_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class CapacityPeak:
    """The biggest hourly import of one local day: the hour's UTC start and its kWh."""

    day: date
    hour_start: datetime
    energy_kwh: float


@dataclass(frozen=True, slots=True)
class Capacity:
    """A place's capacity figures for one local month, up to ``as_of`` (month to date)."""

    month: str
    start: datetime
    end: datetime
    as_of: datetime
    hours: int
    """Hours with data offered as peaks so far."""
    day_peaks: tuple[CapacityPeak, ...]
    """One peak per day so far, in day order."""
    peaks: tuple[CapacityPeak, ...]
    """The top peaks on distinct days, biggest first, that make the month value."""
    month_value_kwh: float
    step_kwh: float | None
    """The first threshold at or above the month value; None above the last threshold."""
    next_threshold_kwh: float | None
    month_import_kwh: float
    thresholds_kwh: tuple[float, ...]
    estimated: bool


def capacity_of_hours(
    hours: Sequence[EnergyBucket],
    tz: str | tzinfo,
    thresholds_kwh: Sequence[float] = DEFAULT_THRESHOLDS_KWH,
    peak_days: int = DEFAULT_PEAK_DAYS,
) -> tuple[tuple[CapacityPeak, ...], tuple[CapacityPeak, ...], float, float | None, float | None]:
    """Apply the rule to hourly import in time order; return day peaks, top peaks, value, step, next.

    Hours nothing is known about (source ``none``) offer no peak, so a meter installed mid-month
    is not averaged with empty days.
    """
    if peak_days < 1:
        raise InputError("the number of capacity peaks must be at least 1")
    zone = to_zone(tz)
    by_day: dict[date, CapacityPeak] = {}
    for hour in hours:
        if hour.source == SOURCE_NONE:
            continue
        day = hour.start.astimezone(zone).date()
        kept = by_day.get(day)
        if kept is None or hour.energy_import_kwh > kept.energy_kwh:
            by_day[day] = CapacityPeak(day, hour.start, hour.energy_import_kwh)
    day_peaks = tuple(by_day[day] for day in sorted(by_day))
    top = tuple(sorted(day_peaks, key=lambda p: (-p.energy_kwh, p.day))[:peak_days])
    value_kwh = sum(p.energy_kwh for p in top) / len(top) if top else 0.0
    steps = sorted(thresholds_kwh)
    index = next((i for i, step in enumerate(steps) if step >= value_kwh), None)
    step_kwh = None if index is None else steps[index]
    next_kwh = None if index is None or index + 1 >= len(steps) else steps[index + 1]
    return day_peaks, top, value_kwh, step_kwh, next_kwh


def month_edges(month: str, tz: str | tzinfo) -> tuple[datetime, datetime]:
    """Return the UTC start and end of local month ``YYYY-MM``."""
    match = _MONTH_RE.match(month.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise InputError(f"cannot read month {month!r}; use YYYY-MM like 2026-03")
    year, number = int(match.group(1)), int(match.group(2))
    zone = to_zone(tz)
    following = date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)
    return local_midnight(date(year, number, 1), zone), local_midnight(following, zone)


def place_capacity(
    store: Store,
    place: Place,
    month: str | None = None,
    *,
    now: datetime | None = None,
    thresholds_kwh: Sequence[float] | None = None,
    peak_days: int | None = None,
) -> Capacity:
    """Return a place's capacity figures for a local month from its grid import (read-only).

    ``month`` defaults to the month ``now`` falls in; only hours that have ended by ``now``
    count. Thresholds and peak days default to the place's tariff, then to the Norwegian ones.
    """
    current = now if now is not None else utc_now()
    zone = to_zone(place.tz)
    label = month if month is not None else current.astimezone(zone).strftime("%Y-%m")
    start, end = month_edges(label, zone)
    if current <= start:
        raise InputError(f"month {label} has not begun in {place.tz}")
    tariff = Tariff.from_data(place.tariff)
    steps = tuple(thresholds_kwh or tariff.capacity_thresholds_kwh or DEFAULT_THRESHOLDS_KWH)
    days = peak_days or tariff.capacity_peak_days or DEFAULT_PEAK_DAYS
    edges = [edge for edge in local_boundaries(start, end, zone, "hour") if edge <= current]
    hours = grid_energy(store, place, edges) if len(edges) > 1 else []
    day_peaks, top, value_kwh, step_kwh, next_kwh = capacity_of_hours(hours, zone, steps, days)
    return Capacity(
        label,
        start,
        end,
        edges[-1],
        sum(1 for h in hours if h.source != SOURCE_NONE),
        day_peaks,
        top,
        value_kwh,
        step_kwh,
        next_kwh,
        sum(h.energy_import_kwh for h in hours),
        steps,
        any(h.estimated for h in hours),
    )
