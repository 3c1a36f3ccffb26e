"""Metering points of the simulated Intellimeter site and their readings, from the physics.

``/data`` values are cumulative import registers in kWh at the latest 5-minute boundary;
``/interval`` values are the import energy in kWh of the 5 minutes ending there. The vendor
shows times as local wall-clock time of the site, without an offset.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from meterhub.vendors.physics import Household

from .render import Stamp, Value

__all__ = [
    "EXPORT_COLUMNS",
    "INTERVAL",
    "MeterPoint",
    "SiteReadings",
    "day_range",
    "interval_floor",
    "point_info",
]

INTERVAL = timedelta(minutes=5)
"""The vendor records every metering point every 5 minutes."""
_LOOKBACK_INTERVALS = 12 * 24 * 31
"""How far back ``latest`` searches for a recorded interval when a meter is offline."""
EXPORT_COLUMNS = ("MeterParam", "TimeStamping", "value")
"""The fields of every reading row, in the vendor's order."""
_REGISTER_DIGITS = 3
_INTERVAL_DIGITS = 3
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class MeterPoint:
    """One metering point as ``/point`` describes it."""

    id: int
    name: str
    phases: int
    modbus_id: int
    port: str = "USB0"
    meter_type: str = "I-45/MFX/636"
    modbus_map: str = "Priority.ici"
    save_every_min: int = 5
    start_address: int = 1100


def point_info(point: MeterPoint) -> Value:
    """Return ``point`` in the vendor's ``/point`` shape (``NoPhases`` is a string)."""
    return {
        "id": point.id,
        "MeterId": point.name,
        "ModbusId": point.modbus_id,
        "Port": point.port,
        "NoPhases": str(point.phases),
        "MeterType": point.meter_type,
        "ModbusMap": point.modbus_map,
        "SaveEvery": point.save_every_min,
        "startAddress": point.start_address,
    }


def interval_floor(ts: datetime) -> datetime:
    """Return the latest 5-minute boundary at or before ``ts`` (UTC)."""
    step_s = int(INTERVAL.total_seconds())
    elapsed_s = int((ts - _EPOCH).total_seconds())
    return _EPOCH + timedelta(seconds=elapsed_s - elapsed_s % step_s)


def day_range(first: date, second: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Return the UTC span from the start of the earlier day to the end of the later one."""
    start_day, end_day = sorted((first, second))
    start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=zone)
    after = end_day + timedelta(days=1)
    end = datetime(after.year, after.month, after.day, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _row(name: str, ts: datetime, zone: ZoneInfo, value: float) -> Mapping[str, Value]:
    return dict(zip(EXPORT_COLUMNS, (name, Stamp(ts.astimezone(zone)), value), strict=True))


class SiteReadings:
    """Readings of every metering point, each driven by its own household model."""

    def __init__(self, households: Mapping[int, Household], zone: ZoneInfo) -> None:
        self.households = households
        self.zone = zone

    def register_kwh(self, point_id: int, ts: datetime) -> float:
        """Return the import register of ``point_id`` at ``ts`` (read-only)."""
        state = self.households[point_id].state_at(ts)
        return round(state.total.energy_import_kwh, _REGISTER_DIGITS)

    def interval_kwh(self, point_id: int, end: datetime) -> float:
        """Return the import energy of ``point_id`` in the 5 minutes before ``end`` (read-only)."""
        import_kwh, _ = self.households[point_id].energy_between(end - INTERVAL, end)
        return round(import_kwh, _INTERVAL_DIGITS)

    def recorded(self, point_id: int, end: datetime) -> bool:
        """Say whether the device recorded the interval ending at ``end`` (read-only)."""
        household = self.households[point_id]
        return not household.is_offline(end) and not household.is_offline(end - INTERVAL)

    def latest(self, point_id: int, now: datetime) -> datetime | None:
        """Return the end of the latest recorded interval at or before ``now`` (read-only)."""
        end = interval_floor(now)
        for _ in range(_LOOKBACK_INTERVALS):
            if self.recorded(point_id, end):
                return end
            end -= INTERVAL
        return None

    def latest_rows(self, points: Sequence[MeterPoint], now: datetime, interval: bool) -> Value:
        """Return the ``/data`` (registers) or ``/interval`` (energy) rows at ``now``."""
        rows: list[Value] = []
        for point in points:
            end = self.latest(point.id, now)
            if end is None:
                continue
            read = self.interval_kwh if interval else self.register_kwh
            rows.append(_row(point.name, end, self.zone, read(point.id, end)))
        return rows

    def _ends(self, point_id: int, start: datetime, end: datetime) -> Iterator[datetime]:
        ts = interval_floor(start)
        if ts < start:
            ts += INTERVAL
        while ts < end:
            if self.recorded(point_id, ts):
                yield ts
            ts += INTERVAL

    def history_rows(
        self, points: Sequence[MeterPoint], start: datetime, end: datetime
    ) -> list[Mapping[str, Value]]:
        """Return the register readings of ``points`` recorded in [start, end), per point."""
        rows: list[Mapping[str, Value]] = []
        for point in points:
            for ts in self._ends(point.id, start, end):
                rows.append(_row(point.name, ts, self.zone, self.register_kwh(point.id, ts)))
        return rows

    def interval_series(
        self, point: MeterPoint, start: datetime, end: datetime
    ) -> list[tuple[datetime, float]]:
        """Return (local time, kWh) of each recorded interval of ``point`` in [start, end)."""
        zone = self.zone
        return [
            (ts.astimezone(zone).replace(tzinfo=None), self.interval_kwh(point.id, ts))
            for ts in self._ends(point.id, start, end)
        ]
