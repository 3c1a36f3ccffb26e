"""Device extras as named series: what each name means, a meter's series, and one series read.

Connectors store device-level scalars beside readings (``Extra``): the smart-MAC's ``T``
(``temperature_c``), its relay (``relay_on``) and power limit (``power_limit_w``); the AMS
reader's temperature, Wi-Fi RSSI, supply voltage, uptime and its running hour/day/month energy
and capacity figures; UMeter's outdoor temperature. This module names their units and labels and
reads one series over a range: the values themselves when few, else min/mean/max per bucket
(read from the store's 15-minute rollup, so a year costs about what a day does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Literal

from meterhub.errors import InputError, NotFoundError
from meterhub.history import MAX_POINTS, choose_width_s
from meterhub.precision import decimals_of, round_to
from meterhub.store.base import Store
from meterhub.timeutil import get_zone

__all__ = [
    "AUTO_BUCKETS",
    "BUCKETS",
    "MAX_AUTO_POINTS",
    "SeriesBucket",
    "SeriesInfo",
    "SeriesPoint",
    "SeriesRead",
    "SeriesSummary",
    "describe",
    "list_series",
    "read_series",
]

Kind = Literal["number", "state", "counter"]

BUCKETS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21_600, "1d": 86_400}
"""Fixed buckets a caller may ask for, besides ``raw`` (every value); ``1d`` is a local day."""
MAX_AUTO_POINTS = 2000
"""Without a bucket, a range holding at most this many values answers the values themselves."""
AUTO_BUCKETS = 1000
"""Without a bucket, a longer range answers at most this many buckets of a round width."""
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """What a series' values are: unit, a label for people, and how to draw them.

    ``kind`` is ``number`` (a measured level such as a temperature), ``state`` (1 on, 0 off)
    or ``counter`` (a running total such as uptime or the hour's energy so far). ``chart``
    says whether the dashboard draws it; running totals are only listed.
    """

    unit: str
    label: str
    kind: Kind
    chart: bool


_KNOWN: dict[str, SeriesInfo] = {
    "temperature_c": SeriesInfo("°C", "Device temperature", "number", True),
    "outdoor_temperature_c": SeriesInfo("°C", "Outdoor temperature", "number", True),
    "rssi_dbm": SeriesInfo("dBm", "Wi-Fi signal (RSSI)", "number", True),
    "vcc_v": SeriesInfo("V", "Supply voltage", "number", True),
    "uptime_s": SeriesInfo("s", "Uptime", "counter", False),
    "relay_on": SeriesInfo("on/off", "Relay", "state", True),
    "power_limit_w": SeriesInfo("W", "Power limit", "number", True),
    "hour_import_kwh": SeriesInfo("kWh", "Imported this hour", "counter", False),
    "hour_export_kwh": SeriesInfo("kWh", "Exported this hour", "counter", False),
    "day_import_kwh": SeriesInfo("kWh", "Imported today", "counter", False),
    "day_export_kwh": SeriesInfo("kWh", "Exported today", "counter", False),
    "month_import_kwh": SeriesInfo("kWh", "Imported this month", "counter", False),
    "month_export_kwh": SeriesInfo("kWh", "Exported this month", "counter", False),
    "capacity_month_max_kwh": SeriesInfo("kWh", "Capacity: month's peak average", "number", False),
    "capacity_threshold_kwh": SeriesInfo("kWh", "Capacity: current step", "number", False),
    **{
        f"capacity_peak_{rank}_kwh": SeriesInfo("kWh", f"Capacity: peak hour {rank}", "number", False)
        for rank in range(1, 6)
    },
}
_SUFFIX_UNITS: tuple[tuple[str, str], ...] = (
    ("_c", "°C"),
    ("_dbm", "dBm"),
    ("_kwh", "kWh"),
    ("_w", "W"),
    ("_v", "V"),
    ("_a", "A"),
    ("_s", "s"),
)


def describe(name: str) -> SeriesInfo:
    """Return what the series ``name`` holds; a name not known here gets its unit from its suffix."""
    known = _KNOWN.get(name)
    if known is not None:
        return known
    if name.endswith("_on"):
        return SeriesInfo("on/off", name.removesuffix("_on").replace("_", " ").capitalize(), "state", False)
    for suffix, unit in _SUFFIX_UNITS:
        if name.endswith(suffix):
            return SeriesInfo(unit, name.removesuffix(suffix).replace("_", " ").capitalize(), "number", False)
    return SeriesInfo("", name.replace("_", " ").capitalize(), "number", False)


@dataclass(frozen=True, slots=True)
class SeriesSummary:
    """One series of a meter: how many values, the first and last time, and the last value."""

    name: str
    info: SeriesInfo
    count: int
    first: datetime
    last: datetime
    last_value: float
    age_s: float
    """Seconds from the last value to the time asked (never negative)."""


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One stored value."""

    ts: datetime
    value: float


@dataclass(frozen=True, slots=True)
class SeriesBucket:
    """The values in [start, end): how many, their minimum, mean and maximum."""

    start: datetime
    end: datetime
    count: int
    min: float
    avg: float
    max: float


@dataclass(frozen=True, slots=True)
class SeriesRead:
    """One series over [start, end): ``points`` when ``bucket`` is ``raw``, else ``buckets``.

    ``bucket_s`` is the buckets' width (None for the values themselves; 86400 for local days,
    which last 23 or 25 hours on DST days).
    """

    meter: str
    name: str
    info: SeriesInfo
    start: datetime
    end: datetime
    bucket: str
    bucket_s: int | None
    points: list[SeriesPoint]
    buckets: list[SeriesBucket]


def list_series(store: Store, meter_id: str, now: datetime) -> list[SeriesSummary]:
    """Return a meter's series by name, with each one's last value and its age at ``now``."""
    return [
        SeriesSummary(
            name,
            describe(name),
            count,
            first,
            last,
            round_to(value, series_decimals(name)),
            max(0.0, (now - last).total_seconds()),
        )
        for name, count, first, last, value in store.extra_series(meter_id)
    ]


SERIES_DECIMALS = 3
"""Decimals of a series whose name names no quantity :mod:`meterhub.precision` knows."""


def series_decimals(name: str) -> int:
    """Return the decimals a series' values keep: by its name's unit (``_c``, ``_dbm``, ``_kwh``...)."""
    decimals = decimals_of(name)
    return SERIES_DECIMALS if decimals is None else decimals


def _require_series(store: Store, meter_id: str, name: str) -> None:
    if store.extra_points(meter_id, name, _EARLIEST, _LATEST, 1):
        return
    names = [row[0] for row in store.extra_series(meter_id)]
    has = f"its series are {', '.join(names)}" if names else "it has no device series yet"
    raise NotFoundError(f"meter {meter_id!r} has no series {name!r}; {has}")


def _fixed_width_count(start: datetime, end: datetime, width_s: int) -> int:
    first = math.floor(start.timestamp() / width_s) * width_s
    return math.ceil((end.timestamp() - first) / width_s)


def _local_days(start: datetime, end: datetime, tz: str) -> list[datetime]:
    """Return the edges of the local days that [start, end) touches, in UTC."""
    zone = get_zone(tz)
    day = start.astimezone(zone).date()
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    count = (last - day).days + 1
    if count > MAX_POINTS:
        raise InputError(f"the range holds {count} days, more than {MAX_POINTS}; ask for a shorter range")
    return [
        datetime.combine(day + timedelta(days=k), datetime.min.time(), zone).astimezone(UTC)
        for k in range(count + 1)
    ]


def _day_buckets(store: Store, meter_id: str, name: str, edges: list[datetime]) -> list[SeriesBucket]:
    """Merge quarter hours into local days (every zone's offset is a multiple of 15 minutes)."""
    quarters = store.extra_buckets(meter_id, name, edges[0], edges[-1], 900)
    days: list[SeriesBucket] = []
    index = 0
    for day_start, day_end in pairwise(edges):
        inside = []
        while index < len(quarters) and quarters[index][0] < day_end:
            if quarters[index][0] >= day_start:
                inside.append(quarters[index])
            index += 1
        if inside:
            count = sum(q[1] for q in inside)
            days.append(
                SeriesBucket(
                    day_start,
                    day_end,
                    count,
                    min(q[2] for q in inside),
                    sum(q[1] * q[3] for q in inside) / count,
                    max(q[4] for q in inside),
                )
            )
    return days


def _utc_buckets(
    store: Store, meter_id: str, name: str, start: datetime, end: datetime, width_s: int
) -> list[SeriesBucket]:
    width = timedelta(seconds=width_s)
    return [
        SeriesBucket(b, b + width, n, low, mean, high)
        for b, n, low, mean, high in store.extra_buckets(meter_id, name, start, end, width_s)
    ]


def read_series(
    store: Store,
    meter_id: str,
    name: str,
    start: datetime,
    end: datetime,
    *,
    bucket: str | None = None,
    tz: str | None = None,
    auto_buckets: int = AUTO_BUCKETS,
) -> SeriesRead:
    """Read one series over [start, end).

    ``bucket`` None answers the values when the range holds at most :data:`MAX_AUTO_POINTS`,
    else at most ``auto_buckets`` UTC-aligned buckets of a round width; ``raw`` answers the
    values (at most :data:`~meterhub.history.MAX_POINTS`); a name of :data:`BUCKETS` answers
    buckets of that width (``1d``: local days in ``tz``, default the meter's zone). Buckets are
    whole: the first and last may reach beyond ``start`` and ``end``. An unknown name is a
    NotFoundError naming the meter's series.
    """
    if end <= start:
        raise InputError(f"end {end.isoformat()} must be after start {start.isoformat()}")
    if bucket is not None and bucket != "raw" and bucket not in BUCKETS:
        raise InputError(f"unknown bucket {bucket!r}; use raw or one of {', '.join(BUCKETS)}")
    meter = store.get_meter(meter_id)
    _require_series(store, meter_id, name)
    info = describe(name)

    def answer(
        chosen: str, width_s: int | None, points: list[SeriesPoint], buckets: list[SeriesBucket]
    ) -> SeriesRead:
        decimals = series_decimals(name)
        points = [SeriesPoint(p.ts, round_to(p.value, decimals)) for p in points]
        buckets = [
            SeriesBucket(
                b.start,
                b.end,
                b.count,
                round_to(b.min, decimals),
                round_to(b.avg, decimals),
                round_to(b.max, decimals),
            )
            for b in buckets
        ]
        return SeriesRead(meter_id, name, info, start, end, chosen, width_s, points, buckets)

    if bucket is None or bucket == "raw":
        limit = MAX_AUTO_POINTS if bucket is None else MAX_POINTS
        values = store.extra_points(meter_id, name, start, end, limit + 1)
        if len(values) <= limit:
            return answer("raw", None, [SeriesPoint(e.ts, e.value) for e in values], [])
        if bucket == "raw":
            raise InputError(
                f"the range holds more than {MAX_POINTS} values of {name}; ask for a bucket "
                f"({', '.join(BUCKETS)}) or a shorter range"
            )
        width_s = choose_width_s(start, end, auto_buckets)
        return answer("auto", width_s, [], _utc_buckets(store, meter_id, name, start, end, width_s))
    width_s = BUCKETS[bucket]
    if bucket == "1d":
        edges = _local_days(start, end, tz or meter.tz)
        return answer(bucket, width_s, [], _day_buckets(store, meter_id, name, edges))
    count = _fixed_width_count(start, end, width_s)
    if count > MAX_POINTS:
        raise InputError(
            f"{count} buckets of {bucket} exceed {MAX_POINTS}; choose a wider bucket or a shorter range"
        )
    return answer(bucket, width_s, [], _utc_buckets(store, meter_id, name, start, end, width_s))
