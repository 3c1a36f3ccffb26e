"""Power statistics of one meter over a range, read from the rollups rather than raw rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from meterhub.analytics.calendar import to_zone
from meterhub.errors import InputError
from meterhub.model import PHASE_TOTAL
from meterhub.store.base import Store

__all__ = ["DAYTIME_END_HOUR", "DAYTIME_START_HOUR", "PowerStats", "power_stats"]

DAYTIME_START_HOUR = 8
DAYTIME_END_HOUR = 20
"""Daytime is [08:00, 20:00) local time."""

_QUARTER = timedelta(minutes=15)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class PowerStats:
    """Mean power, mean over local daytime, and the extremes; None where there is no data."""

    avg_w: float | None
    daytime_avg_w: float | None
    min_w: float | None
    max_w: float | None


@dataclass(slots=True)
class _Totals:
    count: int = 0
    sum_w: float = 0.0

    def add(self, mean_w: float, count: int) -> None:
        self.count += count
        self.sum_w += mean_w * count

    def mean_w(self) -> float | None:
        return self.sum_w / self.count if self.count else None


def power_stats(
    store: Store, meter_id: str, start: datetime, end: datetime, tz: str | tzinfo
) -> PowerStats:
    """Return phase-0 power stats over [start, end), widened to 15-minute edges (read-only).

    Averages weight each rollup by its sample count; daytime is 08:00-20:00 in zone ``tz``.
    """
    if end <= start:
        raise InputError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    zone = to_zone(tz)
    lo, hi = _widen_to_quarters(start, end)
    boundaries = sorted({lo, hi, *_daytime_edges(lo, hi, zone)})
    overall, daytime = _Totals(), _Totals()
    min_w: float | None = None
    max_w: float | None = None
    for bucket in store.aggregate(meter_id, PHASE_TOTAL, boundaries):
        mean_w = bucket.power_avg_w
        if not bucket.count or mean_w is None:
            continue
        overall.add(mean_w, bucket.count)
        if DAYTIME_START_HOUR <= bucket.start.astimezone(zone).hour < DAYTIME_END_HOUR:
            daytime.add(mean_w, bucket.count)
        if bucket.power_min_w is not None and (min_w is None or bucket.power_min_w < min_w):
            min_w = bucket.power_min_w
        if bucket.power_max_w is not None and (max_w is None or bucket.power_max_w > max_w):
            max_w = bucket.power_max_w
    return PowerStats(overall.mean_w(), daytime.mean_w(), min_w, max_w)


def _widen_to_quarters(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    lo = _EPOCH + (start - _EPOCH) // _QUARTER * _QUARTER
    hi = _EPOCH - (_EPOCH - end) // _QUARTER * _QUARTER
    return lo, hi


def _daytime_edges(lo: datetime, hi: datetime, zone: tzinfo) -> list[datetime]:
    day = lo.astimezone(zone).date()
    last_day = hi.astimezone(zone).date()
    edges: list[datetime] = []
    while day <= last_day:
        for hour in (DAYTIME_START_HOUR, DAYTIME_END_HOUR):
            edge = datetime(day.year, day.month, day.day, hour, tzinfo=zone).astimezone(UTC)
            if lo < edge < hi:
                edges.append(edge)
        day += timedelta(days=1)
    return edges
