"""The Norwegian capacity-tariff figures an AMS reader keeps (``tariff.json``, ``ea``).

The rule: at each local hour change the import energy of the hour that ended is offered as a
peak of the local day that hour started in. A day keeps one peak, its biggest hour. The month
value is the average of the biggest peaks of the top ``peak_days`` (3) distinct days; the
current step is the first threshold at or above the month value (as the reader's firmware
compares, so a month value of exactly 10 kWh/h stays in the 10 step). A new local month starts
from no peaks. DST days simply have 23 or 25 hours, each offered on its own.

:func:`capacity_from_tariff_json` reads a reader's ``/tariff.json`` answer back: its ten
thresholds ``t`` (padded with 65535) and its peaks ``p`` as ``{"d": day, "h": hour, "v": kWh}``,
one entry per counted peak (the firmware prints ``min(5, hours)`` of them, ``{"d":0,...}`` for
a slot still empty). ``h`` is the local hour the peak hour started; the answer shown in the
reader's HTTP API documentation (firmware 2.3) has no ``h``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_THRESHOLDS_KWH",
    "PEAK_DAYS",
    "THRESHOLD_SENTINEL",
    "CapacityState",
    "Peak",
    "PeakTracker",
    "ReaderPeak",
    "TariffJsonError",
    "capacity_from_tariff_json",
    "capacity_state",
    "completed_hours_of_month",
]

DEFAULT_THRESHOLDS_KWH: tuple[int, ...] = (5, 10, 15, 20, 25, 50, 75, 100, 150)
THRESHOLD_SENTINEL = 65535
"""The reader pads its threshold list with this value; it is the step above the last one."""
PEAK_DAYS = 3
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Peak:
    """The biggest hourly import of one day of the month, and the local hour it began."""

    day: int
    energy_kwh: float
    hour: int = 0


@dataclass(frozen=True, slots=True)
class ReaderPeak:
    """One of the reader's own peaks of its current month: day of month, local start hour, kWh."""

    day: int
    hour: int | None
    """None when the firmware does not print the hour."""
    energy_kwh: float


class TariffJsonError(ValueError):
    """A ``/tariff.json`` answer that cannot be read."""


@dataclass(frozen=True, slots=True)
class CapacityState:
    """What the reader shows in its tariff graph."""

    peaks: tuple[Peak, ...]
    month_max_kwh: float
    threshold_kwh: int


class PeakTracker:
    """Apply the capacity rule to hours offered one by one, in time order."""

    def __init__(
        self,
        zone: ZoneInfo,
        thresholds_kwh: Sequence[int] = DEFAULT_THRESHOLDS_KWH,
        peak_days: int = PEAK_DAYS,
    ) -> None:
        self.zone = zone
        self.thresholds_kwh = (*thresholds_kwh, THRESHOLD_SENTINEL)
        self.peak_days = peak_days
        self._month: tuple[int, int] | None = None
        self._day_peaks_kwh: dict[int, float] = {}
        self._day_peak_hours: dict[int, int] = {}

    def offer(self, hour_start: datetime, energy_kwh: float) -> None:
        """Offer the import of the hour starting at ``hour_start`` (aware) as a peak."""
        local = hour_start.astimezone(self.zone)
        month = (local.year, local.month)
        if month != self._month:
            self._month = month
            self._day_peaks_kwh = {}
            self._day_peak_hours = {}
        value_kwh = round(energy_kwh, 2)
        if value_kwh > self._day_peaks_kwh.get(local.day, 0.0):
            self._day_peaks_kwh[local.day] = value_kwh
            self._day_peak_hours[local.day] = local.hour

    def roll_to(self, now: datetime) -> None:
        """Forget the peaks when ``now`` is in a later local month than the last hour offered."""
        local = now.astimezone(self.zone)
        if self._month is not None and (local.year, local.month) != self._month:
            self._month = (local.year, local.month)
            self._day_peaks_kwh = {}
            self._day_peak_hours = {}

    def state(self) -> CapacityState:
        """Return the top peaks (by day), the month value and the current step (read-only)."""
        ranked = sorted(self._day_peaks_kwh.items(), key=lambda item: (-item[1], item[0]))
        top = sorted(ranked[: self.peak_days])
        average_kwh = sum(value for _, value in top) / len(top) if top else 0.0
        threshold = next((step for step in self.thresholds_kwh if step >= average_kwh), THRESHOLD_SENTINEL)
        peaks = tuple(Peak(day, value, self._day_peak_hours.get(day, 0)) for day, value in top)
        return CapacityState(peaks, round(average_kwh, 2), threshold)


def completed_hours_of_month(now: datetime, zone: ZoneInfo) -> list[datetime]:
    """Return the UTC starts of the local hours of ``now``'s local month that have ended."""
    local_now = now.astimezone(zone)
    month_start = datetime(local_now.year, local_now.month, 1, tzinfo=zone).astimezone(UTC)
    hours: list[datetime] = []
    start = month_start
    while start + _HOUR <= now:
        hours.append(start)
        start += _HOUR
    return hours


def capacity_state(
    hours_kwh: Iterable[tuple[datetime, float]],
    zone: ZoneInfo,
    thresholds_kwh: Sequence[int] = DEFAULT_THRESHOLDS_KWH,
    now: datetime | None = None,
) -> CapacityState:
    """Apply the rule to (hour start, import kWh) pairs and return the resulting figures."""
    tracker = PeakTracker(zone, thresholds_kwh)
    for hour_start, energy_kwh in hours_kwh:
        tracker.offer(hour_start, energy_kwh)
    if now is not None:
        tracker.roll_to(now)
    return tracker.state()


def capacity_from_tariff_json(payload: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[ReaderPeak, ...]]:
    """Return a place's tariff fields and the reader's own peaks from a ``/tariff.json`` answer.

    The fields are ``capacity_thresholds_kwh`` (the thresholds without the 65535 padding) and
    ``capacity_peak_days`` (how many peaks the reader averages: the entries of ``p``), as plain
    data for ``Place.tariff``. Empty peak slots (day 0) are left out; the peaks keep the
    reader's order. Raises :class:`TariffJsonError` naming what is wrong.
    """
    steps = payload.get("t")
    if not isinstance(steps, list) or not steps:
        raise TariffJsonError('expected thresholds "t" as a list of numbers')
    thresholds = [_number(step, "threshold") for step in steps]
    kept = [step for step in thresholds if step != THRESHOLD_SENTINEL]
    if not kept or kept[0] <= 0 or any(b <= a for a, b in itertools.pairwise(kept)):
        raise TariffJsonError(f"thresholds {steps} are not positive and increasing")
    entries = payload.get("p", [])
    if not isinstance(entries, list) or not all(isinstance(entry, Mapping) for entry in entries):
        raise TariffJsonError('expected peaks "p" as a list of {"d", "h", "v"} objects')
    peaks: list[ReaderPeak] = []
    for entry in entries:
        day = _whole(entry.get("d"), "day", 0, 31)
        if day == 0:
            continue
        hour = None if entry.get("h") is None else _whole(entry.get("h"), "hour", 0, 23)
        peaks.append(ReaderPeak(day, hour, _number(entry.get("v"), "peak")))
    fields: dict[str, Any] = {"capacity_thresholds_kwh": kept}
    if entries:
        fields["capacity_peak_days"] = len(entries)
    return fields, tuple(peaks)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TariffJsonError(f"{what} {value!r} is not a number")
    if value < 0:
        raise TariffJsonError(f"{what} {value!r} is negative")
    return float(value)


def _whole(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TariffJsonError(f"{what} {value!r} is not a whole number from {low} to {high}")
    return value
