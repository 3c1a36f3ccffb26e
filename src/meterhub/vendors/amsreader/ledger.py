"""Energy, prices and capacity figures an AMS reader derives from its meter, from the physics.

Hour and day energies are memoised: the household is a pure function of time, so a closed
hour never changes. Hours the device was offline are not recorded (they read zero and are never
offered as capacity peaks), as a reader that was off could not have seen them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from meterhub.vendors.physics import Household

from .tariff import DEFAULT_THRESHOLDS_KWH, CapacityState, PeakTracker, completed_hours_of_month

__all__ = [
    "HOUR",
    "EnergyLedger",
    "PriceCurve",
    "Totals",
    "day_start",
    "floor_hour",
    "local_midnight",
]

HOUR = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PUBLISH_HOUR_LOCAL = 13
"""Day-ahead prices for tomorrow become known at 13:00 local time."""


def floor_hour(ts: datetime) -> datetime:
    """Return the start of the UTC hour containing ``ts``."""
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """Return the UTC instant at which local ``day`` starts in ``zone``."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def local_midnight(ts: datetime, zone: ZoneInfo, days: int = 0) -> datetime:
    """Return the UTC instant of local midnight starting ``ts``'s local day, shifted by days."""
    return day_start(ts.astimezone(zone).date() + timedelta(days=days), zone)


class PriceCurve:
    """Deterministic day-ahead spot prices per hour (currency per kWh)."""

    def __init__(self, seed: int, zone: ZoneInfo, base_price: float = 1.2) -> None:
        self.seed = seed
        self.zone = zone
        self.base_price = base_price

    def price_at(self, hour_start: datetime) -> float:
        """Return the price of the hour starting at ``hour_start`` (4 decimals)."""
        hour_index = int((floor_hour(hour_start) - _EPOCH).total_seconds() // 3600)
        digest = hashlib.sha256(f"price:{self.seed}:{hour_index}".encode()).digest()
        noise = int.from_bytes(digest[:4], "big") / 2**32 - 0.5
        local_hour = hour_start.astimezone(self.zone).hour
        shape = 0.25 * math.sin((local_hour - 6) / 24 * 2 * math.pi) + 0.15 * (
            local_hour in (7, 8, 17, 18, 19)
        )
        return round(max(self.base_price * (1 + shape) + 0.2 * noise, 0.01), 4)

    def known_until(self, now: datetime) -> datetime:
        """Return the end of the last hour whose price is published at ``now``."""
        local = now.astimezone(self.zone)
        days_ahead = 2 if local.hour >= _PUBLISH_HOUR_LOCAL else 1
        return local_midnight(now, self.zone, days_ahead)

    def ahead(self, now: datetime, hours: int) -> list[float | None]:
        """Return prices from the current hour on, ``None`` where not yet published."""
        start = floor_hour(now)
        limit = self.known_until(now)
        slots = (start + HOUR * offset for offset in range(hours))
        return [self.price_at(slot) if slot < limit else None for slot in slots]


@dataclass(frozen=True, slots=True)
class Totals:
    """Import use, its cost, export production and its income over a span."""

    use_kwh: float = 0.0
    cost: float = 0.0
    produced_kwh: float = 0.0
    income: float = 0.0

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.use_kwh + other.use_kwh,
            self.cost + other.cost,
            self.produced_kwh + other.produced_kwh,
            self.income + other.income,
        )


class EnergyLedger:
    """Hourly and daily energy of one household as the reader records it."""

    def __init__(
        self,
        household: Household,
        prices: PriceCurve,
        zone: ZoneInfo,
        thresholds_kwh: Sequence[int] = DEFAULT_THRESHOLDS_KWH,
    ) -> None:
        self.household = household
        self.prices = prices
        self.zone = zone
        self.thresholds_kwh = tuple(thresholds_kwh)
        self._hours: dict[datetime, tuple[float, float]] = {}
        self._days: dict[datetime, tuple[float, float]] = {}

    def offline_during(self, start: datetime, end: datetime) -> bool:
        """Say whether the device was offline at any time in [start, end) (read-only)."""
        return any(a < end and b > start for a, b in self.household.config.offline)

    def _recorded(self, start: datetime, end: datetime) -> tuple[float, float]:
        if self.offline_during(start, end):
            return 0.0, 0.0
        return self.household.energy_between(start, end)

    def hour_kwh(self, start: datetime) -> tuple[float, float]:
        """Return (import, export) kWh of the closed hour starting at ``start``."""
        cached = self._hours.get(start)
        if cached is None:
            cached = self._recorded(start, start + HOUR)
            self._hours[start] = cached
        return cached

    def day_kwh(self, start: datetime) -> tuple[float, float]:
        """Return (import, export) kWh of the local day starting at ``start`` (closed days)."""
        cached = self._days.get(start)
        if cached is None:
            end = local_midnight(start, self.zone, 1)
            cached = self._recorded(start, end)
            self._days[start] = cached
        return cached

    def _priced(self, start: datetime, end: datetime, energy: tuple[float, float]) -> Totals:
        price = self.prices.price_at(start)
        import_kwh, export_kwh = energy
        return Totals(import_kwh, import_kwh * price, export_kwh, export_kwh * price)

    def totals(self, start: datetime, now: datetime) -> Totals:
        """Return what was recorded from ``start`` (an hour start) up to ``now``."""
        total = Totals()
        hour = start
        while hour + HOUR <= now:
            total += self._priced(hour, hour + HOUR, self.hour_kwh(hour))
            hour += HOUR
        if hour < now:
            total += self._priced(hour, now, self._recorded(hour, now))
        return total

    def capacity(self, now: datetime) -> CapacityState:
        """Return the capacity-tariff figures of ``now``'s local month."""
        tracker = PeakTracker(self.zone, self.thresholds_kwh)
        for hour in completed_hours_of_month(now, self.zone):
            if not self.offline_during(hour, hour + HOUR):
                tracker.offer(hour, self.hour_kwh(hour)[0])
        tracker.roll_to(now)
        return tracker.state()
