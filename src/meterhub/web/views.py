"""What the dashboard's pages show, composed from the same domain functions as the API.

Series travel as columns: one list per figure, times as local wall-clock text of the meter's
zone (what a chart's time axis shows), plus UTC instants where a client needs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from meterhub.analytics.calendar import local_midnight, to_zone
from meterhub.analytics.energy import SOURCE_NONE, EnergyBucket, meter_energy
from meterhub.history import PowerSeries, power_series
from meterhub.model import PHASE_TOTAL, Meter, MeterHealth, Reading
from meterhub.store.base import Store
from meterhub.timeutil import from_ms
from meterhub.web.periods import Period, energy_unit

__all__ = [
    "CHART_POINTS",
    "Card",
    "card_of",
    "energy_columns",
    "meter_view",
    "phase_rows",
    "power_columns",
    "reading_event",
    "today_energy",
]

CHART_POINTS = 800
"""Buckets a power chart asks for: finer than a phone's width, coarse enough for a year."""


def _wall(ts: datetime, zone: tzinfo) -> str:
    return ts.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


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


def power_columns(series: PowerSeries, zone: tzinfo, shift: timedelta = timedelta(0)) -> dict[str, Any]:
    """Return a power series as columns, with a None row wherever the line must break.

    ``shift`` moves the times (a previous period drawn over the current one).
    """
    t: list[str] = []
    avg: list[float | None] = []
    lo: list[float | None] = []
    hi: list[float | None] = []
    for start_ms, a, mn, mx, joined in zip(
        series.starts_ms, series.avg_w, series.min_w, series.max_w, series.connected, strict=True
    ):
        if a is None:
            continue
        start = from_ms(start_ms) + shift
        if t and not joined:  # a break: nothing is drawn between the two points
            t.append(_wall(start, zone))
            avg.append(None)
            lo.append(None)
            hi.append(None)
        t.append(_wall(start, zone))
        avg.append(_round(a, 1))
        lo.append(_round(mn, 1))
        hi.append(_round(mx, 1))
    return {"t": t, "avg_w": avg, "min_w": lo, "max_w": hi, "bucket_s": series.width_s}


def _bar_labels(buckets: Sequence[EnergyBucket], zone: tzinfo, unit: str) -> list[str]:
    formats = {"15m": "%H:%M", "hour": "%H:%M", "day": "%a %d", "month": "%b %Y"}
    labels = [b.start.astimezone(zone).strftime(formats.get(unit, "%Y-%m-%d")) for b in buckets]
    seen: dict[str, int] = {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
    # A repeated label (the hour clocks go back) names its zone offset, so each bar stays apart.
    return [
        f"{label} {b.start.astimezone(zone).tzname()}" if seen[label] > 1 else label
        for label, b in zip(labels, buckets, strict=True)
    ]


def _kwh(bucket: EnergyBucket, value: float) -> float | None:
    """Return a period's energy, or None where nothing measured it (no bar, not a zero)."""
    return None if bucket.source == SOURCE_NONE else round(value, 4)


def energy_columns(buckets: Sequence[EnergyBucket], zone: tzinfo, unit: str) -> dict[str, Any]:
    """Return energy bars as columns: local labels, UTC starts, import and export, sources."""
    return {
        "unit": unit,
        "label": _bar_labels(buckets, zone, unit),
        "start": [b.start.astimezone(UTC).isoformat() for b in buckets],
        "import_kwh": [_kwh(b, b.energy_import_kwh) for b in buckets],
        "export_kwh": [_kwh(b, b.energy_export_kwh) for b in buckets],
        "estimated": [b.estimated for b in buckets],
        "source": [b.source for b in buckets],
        "total_import_kwh": round(sum(b.energy_import_kwh for b in buckets), 3),
        "total_export_kwh": round(sum(b.energy_export_kwh for b in buckets), 3),
    }


def meter_view(
    store: Store,
    meter: Meter,
    period: Period,
    previous: Period | None = None,
    *,
    points: int = CHART_POINTS,
    energy: bool = True,
) -> dict[str, Any]:
    """Return a meter page's data for one period: power, energy bars and, if asked, the previous period."""
    zone = to_zone(meter.tz)
    series = power_series(store, meter.id, period.start, period.end, points=points)
    view: dict[str, Any] = {
        "meter": meter.id,
        "tz": meter.tz,
        "range": period.kind,
        "anchor": period.anchor,
        "previous_anchor": period.previous,
        "next_anchor": period.next,
        "title": period.title,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "x_start": _wall(period.start, zone),
        "x_end": _wall(period.end, zone),
        "power": power_columns(series, zone),
    }
    unit = energy_unit(period)
    if energy:
        view["energy"] = energy_columns(
            meter_energy(store, meter.id, period.start, period.end, unit), zone, unit
        )
    if previous is not None:
        before = power_series(store, meter.id, previous.start, previous.end, points=points)
        view["compare"] = {
            "title": previous.title,
            "power": power_columns(before, zone, period.start - previous.start),
        }
        if energy:
            view["compare"]["energy"] = energy_columns(
                meter_energy(store, meter.id, previous.start, previous.end, unit), zone, unit
            )
    return view
