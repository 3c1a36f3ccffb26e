"""The Norwegian capacity tariff ("kapasitetsledd") of any place, as an AMS reader computes it.

The rule: each local hour's grid import (kWh in the hour, so kWh/h) is offered as a peak of
the local day the hour starts in; a day keeps one peak, and only a bigger hour replaces it.
The month value is the mean of the biggest peaks of the top ``peak_days`` (3) distinct days
(of fewer while the month has fewer days). The current step is the first threshold at or
above the month value, as the reader's firmware compares, so exactly 10 kWh/h stays in the
10 step; the next threshold is the one after it. Peaks start afresh with each local month.
Hours are local hours, so DST days offer 23 or 25 of them, and zones with 30- or 45-minute
offsets have their hours off the UTC hour.

A day the hub holds no exactly known hour of (its hours are only spread from a daily total, or
absent) cannot say which hour was the day's peak. Such a day offers none of its hours; the
reader's own peak for the day is used when one is given, and otherwise the day is listed as
missing and the month is marked estimated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from meterhub.analytics.calendar import local_boundaries, local_midnight, to_zone
from meterhub.analytics.energy import SOURCE_NONE, EnergyBucket
from meterhub.analytics.places import grid_energy
from meterhub.analytics.tariffs import Tariff
from meterhub.errors import InputError
from meterhub.model import Place, Role, utc_now
from meterhub.store.base import Store
from meterhub.vendors.amsreader.tariff import ReaderPeak
from meterhub.vendors.amsreader.upkeep import PEAK_EXTRA

__all__ = [
    "DEFAULT_PEAK_DAYS",
    "DEFAULT_THRESHOLDS_KWH",
    "Capacity",
    "CapacityPeak",
    "capacity_of_hours",
    "month_edges",
    "place_capacity",
    "stored_reader_peaks",
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
    missing_days: tuple[date, ...] = ()
    """Days so far with no exactly known hour and no reader peak: their peak is unknown."""


def capacity_of_hours(
    hours: Sequence[EnergyBucket],
    tz: str | tzinfo,
    thresholds_kwh: Sequence[float] = DEFAULT_THRESHOLDS_KWH,
    peak_days: int = DEFAULT_PEAK_DAYS,
    known_peaks: Sequence[CapacityPeak] = (),
) -> tuple[tuple[CapacityPeak, ...], tuple[CapacityPeak, ...], float, float | None, float | None]:
    """Apply the rule to hourly import in time order; return day peaks, top peaks, value, step, next.

    Hours nothing is known about (source ``none``) offer no peak, so a meter installed mid-month
    is not averaged with empty days. ``known_peaks`` are day peaks known otherwise (such as the
    reader's own) for days none of ``hours`` fall on.
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
    for peak in known_peaks:
        by_day.setdefault(peak.day, peak)
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
    reader_peaks: Sequence[ReaderPeak] | None = None,
) -> Capacity:
    """Return a place's capacity figures for a local month from its grid import (read-only).

    ``month`` defaults to the month ``now`` falls in; only hours that have ended by ``now``
    count. Thresholds and peak days default to the place's tariff, then to the Norwegian ones.
    ``reader_peaks`` are an AMS reader's own peaks of this month (``tariff.json``): they stand
    for days the hub holds no exactly known hour of; days with such hours keep the hub's own.
    None takes the peaks the reader's connector keeps in the store (:func:`stored_reader_peaks`).
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
    exact_days = {
        h.start.astimezone(zone).date() for h in hours if h.source != SOURCE_NONE and not h.estimated
    }
    offered = [h for h in hours if h.start.astimezone(zone).date() in exact_days]
    first_day = start.astimezone(zone).date()
    started = [
        first_day + timedelta(days=n)
        for n in range((end.astimezone(zone).date() - first_day).days)
        if local_midnight(first_day + timedelta(days=n), zone) < edges[-1]
    ]
    if reader_peaks is None:
        reader_peaks = stored_reader_peaks(store, place, start, end)
    by_reader = {
        peak.day: peak
        for peak in _reader_day_peaks(reader_peaks, label, zone)
        if peak.day not in exact_days and peak.day in started
    }
    missing = tuple(day for day in started if day not in exact_days and day not in by_reader)
    day_peaks, top, value_kwh, step_kwh, next_kwh = capacity_of_hours(
        offered, zone, steps, days, tuple(by_reader.values())
    )
    return Capacity(
        label,
        start,
        end,
        edges[-1],
        sum(1 for h in offered if h.source != SOURCE_NONE),
        day_peaks,
        top,
        value_kwh,
        step_kwh,
        next_kwh,
        sum(h.energy_import_kwh for h in hours),
        steps,
        any(h.estimated for h in hours) or bool(missing),
        missing,
    )


def stored_reader_peaks(store: Store, place: Place, start: datetime, end: datetime) -> list[ReaderPeak]:
    """Return the AMS reader peaks kept for a place's grid meter in [start, end), one per local day.

    The reader's connector keeps them as ``capacity_peak_kwh`` extras at each peak hour's start;
    a day's biggest counts. Only a place with one grid meter has them: several meters' peaks are
    not the place's.
    """
    grid = [meter_id for meter_id, role in place.meters if role is Role.GRID]
    if len(grid) != 1:
        return []
    zone = to_zone(place.tz)
    by_day: dict[int, ReaderPeak] = {}
    for extra in store.extras(grid[0], PEAK_EXTRA, start, end):
        local = extra.ts.astimezone(zone)
        kept = by_day.get(local.day)
        if kept is None or extra.value > kept.energy_kwh:
            by_day[local.day] = ReaderPeak(local.day, local.hour, extra.value)
    return [by_day[day] for day in sorted(by_day)]


def _reader_day_peaks(peaks: Sequence[ReaderPeak], month: str, zone: tzinfo) -> list[CapacityPeak]:
    """Place the reader's peaks (day of month, local hour) in month ``YYYY-MM``, leaving out hourless ones."""
    year, number = (int(part) for part in month.split("-"))
    placed: list[CapacityPeak] = []
    for peak in peaks:
        if peak.hour is None:
            continue
        try:
            day = date(year, number, peak.day)
        except ValueError:
            raise InputError(f"reader peak day {peak.day} is not a day of {month}") from None
        hour_start = datetime(year, number, peak.day, peak.hour, tzinfo=zone).astimezone(UTC)
        placed.append(CapacityPeak(day, hour_start, peak.energy_kwh))
    return placed
