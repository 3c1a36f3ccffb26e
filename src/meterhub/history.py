"""Downsampled history of one meter phase, served from the rollups wherever the bucket allows."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from meterhub.errors import InputError
from meterhub.store.base import Bucket, Store
from meterhub.timeutil import from_ms, get_zone, to_ms

__all__ = ["BUCKET_WIDTHS_S", "MAX_POINTS", "choose_width_s", "downsample"]

MAX_POINTS = 20_000
BUCKET_WIDTHS_S: dict[str, int] = {"15m": 900, "1h": 3600, "1d": 86_400}
_NICE_WIDTHS_S = (
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10_800,
    21_600,
    43_200,
    86_400,
)


def choose_width_s(start: datetime, end: datetime, points: int) -> int:
    """Return the smallest round bucket width that gives at most ``points`` buckets."""
    if points < 1 or points > MAX_POINTS:
        raise InputError(f"--points must be between 1 and {MAX_POINTS}, not {points}")
    needed = math.ceil((end - start).total_seconds() / points)
    for width in _NICE_WIDTHS_S:
        if width >= needed:
            return width
    return math.ceil(needed / 86_400) * 86_400


def _local_days(start: datetime, end: datetime, tz: str) -> list[datetime]:
    zone = get_zone(tz)
    day = start.astimezone(zone).date()
    edges: list[datetime] = []
    while True:
        edge = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(start.tzinfo)
        if edge >= end and edges:
            edges.append(edge)
            return edges
        edges.append(edge)
        day += timedelta(days=1)


def downsample(
    store: Store,
    meter_id: str,
    start: datetime,
    end: datetime,
    *,
    points: int | None = None,
    bucket: str | None = None,
    phase: int = 0,
    tz: str | None = None,
) -> list[Bucket]:
    """Return buckets of [start, end) for one meter phase; days are local to the meter's zone."""
    if end <= start:
        raise InputError("--end must be after --start")
    meter = store.get_meter(meter_id)
    if bucket is not None:
        if bucket not in BUCKET_WIDTHS_S:
            raise InputError(f"unknown bucket {bucket!r}; use one of {', '.join(BUCKET_WIDTHS_S)}")
        width_s = BUCKET_WIDTHS_S[bucket]
        if bucket == "1d":
            edges = _local_days(start, end, tz or meter.tz)
            if len(edges) - 1 > MAX_POINTS:
                raise InputError(f"the range holds more than {MAX_POINTS} days")
            return _drop_empty(store.aggregate(meter_id, phase, edges))
    else:
        width_s = choose_width_s(start, end, points or 1000)
    width_ms = width_s * 1000
    first = to_ms(start) - to_ms(start) % width_ms
    count = math.ceil((to_ms(end) - first) / width_ms)
    if count > MAX_POINTS:
        raise InputError(
            f"{count} buckets of {width_s} s exceed {MAX_POINTS}; choose a wider bucket"
        )
    if width_ms % 900_000 == 0:
        edges_utc = [from_ms(first + k * width_ms) for k in range(count + 1)]
        return _drop_empty(store.aggregate(meter_id, phase, edges_utc, with_registers=False))
    return store.downsample_raw(meter_id, phase, start, end, width_s)


def _drop_empty(buckets: list[Bucket]) -> list[Bucket]:
    return [b for b in buckets if b.count > 0 or b.energy_import_kwh or b.energy_export_kwh]
