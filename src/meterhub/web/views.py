"""What the dashboard's pages show, composed from the same domain functions as the API.

Series travel as columns: one list per figure, times as local wall-clock text of the meter's
zone (what a chart's time axis shows), plus UTC instants where a client needs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from meterhub.analytics.calendar import CalendarUnit, local_midnight, to_zone
from meterhub.analytics.energy import (
    SOURCE_NONE,
    EnergyBucket,
    EnergyColumns,
    calendar_edges,
    energy_columns_between,
    meter_energy,
)
from meterhub.history import PowerArrays, power_arrays
from meterhub.model import PHASE_TOTAL, Meter, MeterHealth, Reading
from meterhub.precision import decimals_of, round_to
from meterhub.store.base import Store
from meterhub.timeutil import from_ms, to_ms
from meterhub.web.periods import Period, energy_unit

__all__ = [
    "CHART_POINTS",
    "Card",
    "card_of",
    "energy_bars",
    "meter_view",
    "phase_rows",
    "power_columns",
    "reading_event",
    "today_energy",
    "wall_clock_ms",
]

OFFSET_SAMPLE_MS = 7 * 86_400_000
"""How far apart a zone's offset is sampled for :func:`wall_clock_ms`."""
CHART_POINTS = 800
"""Buckets a power chart asks for: finer than a phone's width, coarse enough for a year."""


def _wall(ts: datetime, zone: tzinfo) -> str:
    return ts.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


@lru_cache(maxsize=256)
def _period_texts(start: datetime, end: datetime, zone: tzinfo) -> tuple[str, str, str, str]:
    """Return a view's start and end as ISO text and as the zone's wall clock (what its axis shows)."""
    return start.isoformat(), end.isoformat(), _wall(start, zone), _wall(end, zone)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class Card:
    """One meter on the overview: its newest power, today's energy and how collecting it goes."""

    meter: str
    name: str
    vendor: str
    tz: str
    power_w: float | None
    reading_at: datetime | None
    import_today_kwh: float | None
    export_today_kwh: float | None
    today_estimated: bool
    online: bool | None
    last_error: str | None
    last_error_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        """Return the card as JSON-ready values (UTC ISO times)."""
        return {
            "meter": self.meter,
            "name": self.name,
            "vendor": self.vendor,
            "tz": self.tz,
            "power_w": _round(self.power_w, 1),
            "reading_at": None if self.reading_at is None else self.reading_at.isoformat(),
            "import_today_kwh": _round(self.import_today_kwh, 3),
            "export_today_kwh": _round(self.export_today_kwh, 3),
            "today_estimated": self.today_estimated,
            "online": self.online,
            "last_error": self.last_error,
            "last_error_at": None if self.last_error_at is None else self.last_error_at.isoformat(),
        }


def today_energy(store: Store, meter: Meter, now: datetime) -> EnergyBucket:
    """Return the meter's energy from its local midnight until ``now``."""
    zone = to_zone(meter.tz)
    midnight = local_midnight(now.astimezone(zone).date(), zone)
    return meter_energy(store, meter.id, midnight, max(now, midnight + timedelta(minutes=15)), "day")[0]


def card_of(
    store: Store, meter: Meter, latest: Reading | None, health: MeterHealth | None, now: datetime
) -> Card:
    """Return a meter's overview card."""
    today = today_energy(store, meter, now)
    measured = today.source != SOURCE_NONE
    return Card(
        meter=meter.id,
        name=meter.name or meter.id,
        vendor=meter.vendor,
        tz=meter.tz,
        power_w=None if latest is None else latest.power_w,
        reading_at=None if latest is None else latest.ts,
        import_today_kwh=today.energy_import_kwh if measured else None,
        export_today_kwh=today.energy_export_kwh if measured else None,
        today_estimated=today.estimated,
        online=None if health is None else health.online,
        last_error=None if health is None else health.last_error,
        last_error_at=None if health is None else health.last_error_at,
    )


def reading_event(reading: Reading) -> dict[str, Any]:
    """Return what the live stream sends for a stored reading."""
    return {
        "meter": reading.meter,
        "phase": reading.phase,
        "ts": reading.ts.isoformat(),
        "power_w": _round(reading.power_w, 1),
        "voltage_v": _round(reading.voltage_v, 1),
        "current_a": _round(reading.current_a, 2),
        "energy_import_kwh": _round(reading.energy_import_kwh, 3),
        "energy_export_kwh": _round(reading.energy_export_kwh, 3),
    }


def phase_rows(readings: Sequence[Reading], phases: int) -> list[dict[str, Any]]:
    """Return the newest voltage, current and power of each phase (L1..L3), then the total."""
    by_phase = {r.phase: r for r in readings}
    rows = []
    for phase in [*range(1, phases + 1), PHASE_TOTAL] if phases > 1 else [PHASE_TOTAL]:
        found = by_phase.get(phase)
        rows.append(
            {
                "phase": "total" if phase == PHASE_TOTAL else f"L{phase}",
                "voltage_v": None if found is None else _round(found.voltage_v, 1),
                "current_a": None if found is None else _round(found.current_a, 2),
                "power_w": None if found is None else _round(found.power_w, 1),
                "ts": None if found is None else found.ts.isoformat(),
            }
        )
    return rows


def _offset_ms(instant_ms: int, zone: tzinfo) -> int:
    offset = datetime.fromtimestamp(instant_ms / 1000, zone).utcoffset()
    return 0 if offset is None else int(offset.total_seconds() * 1000)


@lru_cache(maxsize=512)
def _year_offsets(zone: tzinfo, year: int) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """Return a zone's offset as a UTC year begins, and the instants (ms) it changes with the new offsets.

    The offset is sampled weekly (no zone changes it twice within a week) and each change is
    bisected to the millisecond: about 110 look-ups, once per zone and year.
    """
    first = to_ms(datetime(year, 1, 1, tzinfo=UTC))
    last = to_ms(datetime(year + 1, 1, 1, tzinfo=UTC))
    samples = [*range(first, last, OFFSET_SAMPLE_MS), last]
    offsets = [_offset_ms(t, zone) for t in samples]
    changes: list[int] = []
    values: list[int] = []
    for k in range(1, len(samples)):
        lo, hi, before = samples[k - 1], samples[k], offsets[k - 1]
        if offsets[k] == before:
            continue
        while hi - lo > 1:  # hi: the first millisecond with the new offset
            mid = (lo + hi) // 2
            if _offset_ms(mid, zone) == before:
                lo = mid
            else:
                hi = mid
        changes.append(hi)
        values.append(offsets[k])
    return offsets[0], tuple(changes), tuple(values)


def wall_clock_ms(instants_ms: npt.NDArray[np.int64], zone: tzinfo) -> npt.NDArray[np.int64]:
    """Return instants as the zone's wall clock, counted in ms as if it were UTC.

    A chart's date axis shows such numbers as the local time, 23 or 25 hours on DST days.
    """
    if len(instants_ms) == 0:
        return instants_ms
    first_year = from_ms(int(instants_ms[0])).year
    last_year = from_ms(int(instants_ms[-1])).year
    initial, _, _ = _year_offsets(zone, first_year)
    changes: list[int] = []
    values: list[int] = [initial]
    for year in range(first_year, last_year + 1):
        _, year_changes, year_values = _year_offsets(zone, year)
        changes.extend(year_changes)
        values.extend(year_values)
    shifts = np.array(values, dtype=np.int64)[
        np.searchsorted(np.array(changes, dtype=np.int64), instants_ms, side="right")
    ]
    return instants_ms + shifts


def power_columns(arrays: PowerArrays, zone: tzinfo, shift_ms: int = 0) -> dict[str, Any]:
    """Return power as columns with a NaN row wherever the line must break (JSON null).

    ``t`` is the zone's wall clock in ms (see :func:`wall_clock_ms`); ``shift_ms`` moves the
    times, so a previous period can be drawn over the current one.
    """
    columns = arrays.columns
    shown = np.flatnonzero(~np.isnan(columns.power_avg_w))
    breaks = np.flatnonzero(~arrays.connected[shown])
    breaks = breaks[breaks > 0]  # the first point starts the line
    wall = wall_clock_ms(arrays.starts_ms[shown] + shift_ms, zone)
    # A break is a row before the point it separates, at that point's time, with no values.
    rows = np.insert(shown, breaks, shown[breaks]) if len(breaks) else shown
    gap_rows = np.insert(np.zeros(len(shown), np.bool_), breaks, True) if len(breaks) else None

    def column(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        picked = np.round(values[rows], 1)
        if gap_rows is not None:
            picked[gap_rows] = np.nan
        return picked

    return {
        "t": np.insert(wall, breaks, wall[breaks]) if len(breaks) else wall,
        "avg_w": column(columns.power_avg_w),
        "min_w": column(columns.power_min_w),
        "max_w": column(columns.power_max_w),
        "bucket_s": arrays.width_s,
    }


_KWH_DECIMALS = decimals_of("energy_kwh") or 0
"""Decimals of energy in kWh, as the API rounds it."""
_BAR_FORMATS = {"15m": "%H:%M", "hour": "%H:%M", "day": "%a %d", "month": "%b %Y"}


def _labels_of(starts: Sequence[datetime], zone: tzinfo, unit: str) -> list[str]:
    """Return each bar's local label; a repeated one (the hour clocks go back) names its zone offset."""
    local = [start.astimezone(zone) for start in starts]
    labels = [ts.strftime(_BAR_FORMATS.get(unit, "%Y-%m-%d")) for ts in local]
    seen: dict[str, int] = {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
    return [
        f"{label} {ts.tzname()}" if seen[label] > 1 else label
        for label, ts in zip(labels, local, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class _BarAxis:
    """The calendar side of a view's energy bars, the same at every request for the same period."""

    edges: tuple[datetime, ...]
    edges_ms: npt.NDArray[np.int64]
    labels: tuple[str, ...]
    starts: tuple[str, ...]


@lru_cache(maxsize=256)
def _bar_axis(start: datetime, end: datetime, zone: tzinfo, unit: CalendarUnit) -> _BarAxis:
    """Return the UTC edges of the local periods covering [start, end), their labels and starts."""
    edges = tuple(calendar_edges(start, end, zone, unit))
    edges_ms = np.array([to_ms(edge) for edge in edges], dtype=np.int64)
    edges_ms.setflags(write=False)  # shared by every request for this period
    labels = tuple(_labels_of(edges[:-1], zone, unit))
    return _BarAxis(edges, edges_ms, labels, tuple(edge.astimezone(UTC).isoformat() for edge in edges[:-1]))


def energy_bars(
    store: Store, meter: Meter, start: datetime, end: datetime, unit: CalendarUnit
) -> dict[str, Any]:
    """Return a meter's energy bars of the local ``unit`` periods covering [start, end).

    The figures of ``meter_energy`` (energy rounded as the API rounds it, None where nothing
    measured a period), read as columns: the calendar edges and labels of a period are worked
    out once, the sums come in one store call, and only periods the readings leave incomplete
    look further.
    """
    axis = _bar_axis(start, end, to_zone(meter.tz), unit)
    columns = energy_columns_between(store, meter.id, axis.edges, axis.edges_ms)
    import_kwh, export_kwh = _measured_kwh(columns)
    return {
        "unit": unit,
        "label": list(axis.labels),
        "start": list(axis.starts),
        "import_kwh": import_kwh,
        "export_kwh": export_kwh,
        "estimated": columns.estimated,
        "source": columns.source,
        "total_import_kwh": round(sum(columns.energy_import_kwh), 3),
        "total_export_kwh": round(sum(columns.energy_export_kwh), 3),
    }


def _measured_kwh(columns: EnergyColumns) -> tuple[list[float | None], list[float | None]]:
    """Return import and export as the API rounds them, None where nothing measured the period."""

    def measured(values: list[float]) -> list[float | None]:
        return [
            None if source == SOURCE_NONE else round_to(value, _KWH_DECIMALS)
            for value, source in zip(values, columns.source, strict=True)
        ]

    return measured(columns.energy_import_kwh), measured(columns.energy_export_kwh)


def meter_view(
    store: Store,
    meter: Meter,
    period: Period,
    previous: Period | None = None,
    *,
    points: int = CHART_POINTS,
    power: bool = True,
    energy: bool = True,
) -> dict[str, Any]:
    """Return a meter page's data for one period: power and/or energy bars, and the previous period's.

    The page asks for power and energy in two requests at once, so each is drawn when ready.
    """
    zone = to_zone(meter.tz)
    view: dict[str, Any] = {
        "meter": meter.id,
        "tz": meter.tz,
        "range": period.kind,
        "anchor": period.anchor,
        "previous_anchor": period.previous,
        "next_anchor": period.next,
        "title": period.title,
    }
    view["start"], view["end"], view["x_start"], view["x_end"] = _period_texts(period.start, period.end, zone)
    periods = [("", period)] if previous is None else [("", period), ("compare", previous)]
    for part, shown in periods:
        target = view if not part else view.setdefault(part, {"title": shown.title})
        if power:
            arrays = power_arrays(store, meter.id, shown.start, shown.end, points=points, meter=meter)
            target["power"] = power_columns(arrays, zone, to_ms(period.start) - to_ms(shown.start))
        if energy:
            unit = energy_unit(period)
            target["energy"] = energy_bars(store, meter, shown.start, shown.end, unit)
    return view
