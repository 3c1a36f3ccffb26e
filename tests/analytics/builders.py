"""Builders shared by the energy, place, cost and capacity tests: steady meters and local times."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from meterhub.model import Meter, Reading
from meterhub.store.sqlite import SQLiteStore

OSLO = "Europe/Oslo"


def local(
    tz: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, fold: int = 0
) -> datetime:
    """Return a local wall time in ``tz`` as an aware UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz), fold=fold).astimezone(UTC)


def write_power(
    store: SQLiteStore,
    meter_id: str,
    start: datetime,
    end: datetime,
    power_w: Callable[[datetime], float],
    *,
    interval_s: int = 60,
    tz: str = "UTC",
    import_kwh: float = 1000.0,
    export_kwh: float = 0.0,
    add: bool = True,
    skip: Callable[[datetime], bool] | None = None,
) -> tuple[float, float]:
    """Write readings every ``interval_s`` over [start, end] whose registers integrate ``power_w``.

    The power of a reading holds until the next, as in the UCI data; returns the final registers.
    """
    if add:
        store.add_meter(Meter(meter_id, "file", tz=tz, interval_s=interval_s))
    readings: list[Reading] = []
    ts = start
    step = timedelta(seconds=interval_s)
    while ts <= end:
        p = power_w(ts)
        if skip is None or not skip(ts):
            readings.append(
                Reading(
                    meter_id,
                    ts,
                    power_w=p,
                    energy_import_kwh=round(import_kwh, 9),
                    energy_export_kwh=round(export_kwh, 9),
                )
            )
        import_kwh += max(p, 0.0) / 1000 * interval_s / 3600
        export_kwh += max(-p, 0.0) / 1000 * interval_s / 3600
        ts += step
    store.write_readings(readings)
    return import_kwh, export_kwh


def steady(power_w: float) -> Callable[[datetime], float]:
    """Return a constant power profile."""
    return lambda ts: power_w
