"""A place's capacity-tariff month as the dashboard draws it, from ``analytics.capacity.place_capacity``.

Each day of the local month is a bar (its biggest hourly import), the top days that make the
month value are flagged, and while the month runs the hour in progress is added: its import so
far (the hourly energy of the rollups, which grow with every reading) and how much the whole
hour may import before the month value passes the current step. Hours are local: a label names
its zone and offset, so the two 02:00 hours of an October night stay apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from meterhub.analytics.calendar import local_boundaries, to_zone
from meterhub.analytics.capacity import DEFAULT_PEAK_DAYS, Capacity, CapacityPeak, place_capacity
from meterhub.analytics.places import grid_energy
from meterhub.analytics.tariffs import Tariff
from meterhub.model import PHASE_TOTAL, Place, Role
from meterhub.precision import decimals_of, round_to
from meterhub.store.base import Store

__all__ = [
    "capacity_view",
    "hour_cap_kwh",
    "hour_label",
    "month_after",
    "month_before",
    "month_days",
    "month_title",
    "peak_days_of",
]

_DIGITS = decimals_of("energy_kwh") or 3
"""kWh as the API answers them (:mod:`meterhub.precision`), so the page draws what the API says."""


def _round(value: float | None) -> float | None:
    return None if value is None else round_to(value, _DIGITS)


def hour_label(start: datetime, zone: tzinfo) -> str:
    """Return a local hour's start with its zone and offset: ``02:00 CET (UTC+01:00)``."""
    shown = start.astimezone(zone)
    offset = shown.strftime("%z")
    return f"{shown:%H:%M} {shown.tzname()} (UTC{offset[:3]}:{offset[3:]})"


def month_before(month: str) -> str:
    """Return the month before ``YYYY-MM``."""
    year, number = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def month_after(month: str) -> str:
    """Return the month after ``YYYY-MM``."""
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + 1}-01" if number == 12 else f"{year}-{number + 1:02d}"


def month_title(month: str) -> str:
    """Return ``YYYY-MM`` as words: ``October 2026``."""
    return date(int(month[:4]), int(month[5:7]), 1).strftime("%B %Y")


def month_days(month: str) -> list[date]:
    """Return every local day of month ``YYYY-MM``."""
    first = date(int(month[:4]), int(month[5:7]), 1)
    following = date.fromisoformat(f"{month_after(month)}-01")
    return [first + timedelta(days=n) for n in range((following - first).days)]


def peak_days_of(place: Place) -> int:
    """Return how many peak days make a place's month value (its tariff's, else the default)."""
    return Tariff.from_data(place.tariff).capacity_peak_days or DEFAULT_PEAK_DAYS


def hour_cap_kwh(
    day_peaks: Sequence[CapacityPeak], day: date, peak_days: int, step_kwh: float | None
) -> float | None:
    """Return the most an hour of ``day`` may import with the month value staying within ``step_kwh``.

    The hour becomes its day's peak when it beats the day's; the month value is the mean of the
    top ``peak_days`` days, so the hour may bring that mean up to the step and no further. None
    above the last threshold, where there is no step to stay in.
    """
    if step_kwh is None:
        return None
    others = sorted((p.energy_kwh for p in day_peaks if p.day != day), reverse=True)
    counted = min(peak_days, len(others) + 1)
    return counted * step_kwh - sum(others[: counted - 1])


def _day_columns(figures: Capacity, month: str, zone: tzinfo) -> dict[str, Any]:
    by_day = {p.day: p for p in figures.day_peaks}
    top = {p.day for p in figures.peaks}
    days = month_days(month)
    return {
        "day": [d.isoformat() for d in days],
        "label": [d.strftime("%d %a") for d in days],
        "peak_kwh": [_round(by_day[d].energy_kwh) if d in by_day else None for d in days],
        "hour": [hour_label(by_day[d].hour_start, zone) if d in by_day else None for d in days],
        "hour_start": [
            by_day[d].hour_start.astimezone(UTC).isoformat() if d in by_day else None for d in days
        ],
        "top": [d in top for d in days],
    }


def _peak_row(peak: CapacityPeak, zone: tzinfo) -> dict[str, Any]:
    return {
        "day": peak.day.isoformat(),
        "hour": hour_label(peak.hour_start, zone),
        "hour_start": peak.hour_start.astimezone(UTC).isoformat(),
        "energy_kwh": _round(peak.energy_kwh),
    }


def _live_hour(store: Store, place: Place, figures: Capacity, peak_days: int, zone: tzinfo) -> dict[str, Any]:
    """Return the hour in progress: its import so far, what it may import, and the registers read so far."""
    start = figures.as_of
    end = local_boundaries(start, start + timedelta(minutes=15), zone, "hour")[-1]
    so_far = grid_energy(store, place, [start, end])[0]
    day = start.astimezone(zone).date()
    cap = hour_cap_kwh(figures.day_peaks, day, peak_days, figures.step_kwh)
    grid = [meter_id for meter_id, role in place.meters if role is Role.GRID]
    registers = {
        # rounded as the live stream sends registers, so the page's increments add up
        r.meter: {"import_kwh": round(r.energy_import_kwh, 3), "ts": r.ts.astimezone(UTC).isoformat()}
        for r in store.latest(grid, phase=PHASE_TOTAL)
        if r.energy_import_kwh is not None
    }
    return {
        "day": day.isoformat(),
        "hour": hour_label(start, zone),
        "hour_start": start.astimezone(UTC).isoformat(),
        "hour_end": end.astimezone(UTC).isoformat(),
        "import_kwh": _round(so_far.energy_import_kwh),
        "hour_cap_kwh": _round(cap),
        "allowance_kwh": None if cap is None else _round(cap - so_far.energy_import_kwh),
        "grid_meters": grid,
        "registers": registers,
    }


def capacity_view(
    store: Store,
    place: Place,
    month: str | None,
    now: datetime,
    thresholds_kwh: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Return a place's capacity month for the page: day bars, top peaks, step, and the live hour.

    ``month`` defaults to the month ``now`` falls in, in the place's zone.
    """
    zone = to_zone(place.tz)
    figures = place_capacity(store, place, month, now=now, thresholds_kwh=thresholds_kwh)
    peak_days = peak_days_of(place)
    following = month_after(figures.month)
    running = figures.as_of < figures.end
    step = figures.step_kwh
    return {
        "place": place.id,
        "name": place.name or place.id,
        "tz": place.tz,
        "month": figures.month,
        "title": month_title(figures.month),
        "previous_month": month_before(figures.month),
        "next_month": following if figures.end < now else None,
        "start": figures.start.astimezone(UTC).isoformat(),
        "end": figures.end.astimezone(UTC).isoformat(),
        "as_of": figures.as_of.astimezone(UTC).isoformat(),
        "as_of_local": f"{figures.as_of.astimezone(zone):%Y-%m-%d %H:%M %Z}",
        "hours": figures.hours,
        "peak_days": peak_days,
        "days": _day_columns(figures, figures.month, zone),
        "peaks": [_peak_row(p, zone) for p in figures.peaks],
        "thresholds_kwh": list(figures.thresholds_kwh),
        "month_value_kwh": _round(figures.month_value_kwh),
        "step_kwh": step,
        "next_threshold_kwh": figures.next_threshold_kwh,
        "left_in_step_kwh": None if step is None else _round(step - figures.month_value_kwh),
        "month_import_kwh": _round(figures.month_import_kwh),
        "estimated": figures.estimated,
        "missing_days": [day.isoformat() for day in figures.missing_days],
        "live": _live_hour(store, place, figures, peak_days, zone) if running else None,
    }
