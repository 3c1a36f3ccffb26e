"""Downsampled history of one meter phase, served from the rollups wherever the bucket allows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from meterhub.analytics.calendar import BUCKETS, bucket_name, local_boundaries
from meterhub.errors import InputError
from meterhub.model import Meter
from meterhub.store.base import Bucket, PowerColumns, Store
from meterhub.store.sqlite_periods import FIGURE_FIELDS
from meterhub.timeutil import from_ms, to_ms

__all__ = [
    "BUCKET_WIDTHS_S",
    "MAX_POINTS",
    "HistoryColumns",
    "PowerArrays",
    "PowerSeries",
    "bucket_width_s",
    "choose_width_s",
    "downsample",
    "history_columns",
    "joins",
    "power_arrays",
    "power_series",
    "rollup_rows",
]

MAX_POINTS = 20_000
BUCKET_WIDTHS_S: dict[str, int] = {
    "15m": 900,
    "1h": 3600,
    "1d": 86_400,
    "1w": 7 * 86_400,
    "1mo": 30 * 86_400,
    "1y": 365 * 86_400,
}
"""Each bucket's width; 1d, 1w, 1mo and 1y are local calendar periods, and their width nominal."""
CALENDAR_BUCKETS = frozenset({"1d", "1w", "1mo", "1y"})
"""Buckets that are local calendar periods: days, ISO weeks, months and years of the zone."""
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


def bucket_width_s(start: datetime, end: datetime, points: int | None, bucket: str | None) -> int:
    """Return the width of the named bucket, or the round width giving at most ``points`` (1000)."""
    if bucket is None:
        return choose_width_s(start, end, points or 1000)
    return BUCKET_WIDTHS_S[bucket_name(bucket)]


def rollup_rows(start: datetime, end: datetime, *, points: int | None, bucket: str | None) -> int | None:
    """Return about how many rollup rows :func:`history_columns` reads at most for these buckets
    (as many as quarter hours span them), or None when it aggregates raw readings instead."""
    name = None if bucket is None else bucket_name(bucket)
    width_s = bucket_width_s(start, end, points, name)
    if name not in CALENDAR_BUCKETS and width_s % 900:
        return None
    # The buckets may reach a whole bucket (a calendar period: a few days more) beyond each end.
    spanned_s = (end - start).total_seconds() + 2 * width_s + (4 * 86_400 if name in CALENDAR_BUCKETS else 0)
    return math.ceil(spanned_s / 900)


def _calendar_edges_ms(start: datetime, end: datetime, tz: str, bucket: str) -> npt.NDArray[np.int64]:
    """Return the edges of the local calendar periods of ``bucket`` covering [start, end), epoch ms."""
    edges = local_boundaries(start, end, tz, BUCKETS[bucket])
    if len(edges) - 1 > MAX_POINTS:
        raise InputError(f"the range holds more than {MAX_POINTS} periods of {bucket}; choose a wider bucket")
    return np.array([to_ms(edge) for edge in edges], dtype=np.int64)


@dataclass(frozen=True)
class HistoryColumns:
    """The non-empty buckets of one meter phase over [start, end), as columns.

    ``figures`` holds one float array per name of ``FIGURE_FIELDS`` (the ``Bucket`` fields but
    the registers), NaN where a bucket's figure is None; ``count`` holds whole numbers.
    """

    meter: str
    phase: int
    starts_ms: npt.NDArray[np.int64]
    ends_ms: npt.NDArray[np.int64]
    figures: dict[str, npt.NDArray[np.float64]]

    def __len__(self) -> int:
        return len(self.starts_ms)


def history_columns(
    store: Store,
    meter_id: str,
    start: datetime,
    end: datetime,
    *,
    points: int | None = None,
    bucket: str | None = None,
    phase: int = 0,
    tz: str | None = None,
    meter: Meter | None = None,
    fields: Sequence[str] = FIGURE_FIELDS,
) -> HistoryColumns:
    """Return the buckets of :func:`downsample` as columns, read from the coarsest rollups that tile them.

    Buckets of 15 minutes and wider (UTC-aligned, or local days for ``bucket="1d"``) are one
    scan of a rollup table; narrower ones aggregate the raw rows. ``figures`` holds ``fields``
    (names of ``FIGURE_FIELDS``) and the count and energy, which tell the empty buckets apart.
    ``meter`` saves reading it again.
    """
    unknown = [name for name in fields if name not in FIGURE_FIELDS]
    if unknown:
        raise InputError(f"unknown field(s) {', '.join(unknown)}; choose from {', '.join(FIGURE_FIELDS)}")
    wanted = tuple(dict.fromkeys(("count", *fields, "energy_import_kwh", "energy_export_kwh")))
    if end <= start:
        raise InputError("--end must be after --start")
    meter = meter if meter is not None and meter.id == meter_id else store.get_meter(meter_id)
    bucket = None if bucket is None else bucket_name(bucket)
    width_s = bucket_width_s(start, end, points, bucket)
    if bucket in CALENDAR_BUCKETS:
        edges = _calendar_edges_ms(start, end, tz or meter.tz, bucket)
    else:
        width_ms = width_s * 1000
        first = to_ms(start) - to_ms(start) % width_ms
        count = math.ceil((to_ms(end) - first) / width_ms)
        if count > MAX_POINTS:
            raise InputError(f"{count} buckets of {width_s} s exceed {MAX_POINTS}; choose a wider bucket")
        if width_ms % 900_000:
            raw = store.downsample_raw(meter_id, phase, start, end, width_s)
            return _columns_of(meter_id, phase, raw, wanted)
        edges = first + np.arange(count + 1, dtype=np.int64) * width_ms
    figures = _period_figures(store, meter_id, phase, edges, wanted)
    keep = np.flatnonzero(
        (figures["count"] > 0) | (figures["energy_import_kwh"] != 0) | (figures["energy_export_kwh"] != 0)
    )
    return HistoryColumns(
        meter_id, phase, edges[:-1][keep], edges[1:][keep], {name: v[keep] for name, v in figures.items()}
    )


def _period_figures(
    store: Store, meter_id: str, phase: int, edges_ms: npt.NDArray[np.int64], fields: Sequence[str]
) -> dict[str, npt.NDArray[np.float64]]:
    # Both backends fold the coarsest tiling rollup table into arrays (``period_figures``); a
    # store without it answers through ``aggregate``. Duck-typed, so readings never import psycopg.
    figures_of = getattr(store, "period_figures", None)
    if callable(figures_of):
        found: dict[str, npt.NDArray[np.float64]] = figures_of(meter_id, phase, edges_ms, fields)
        return found
    buckets = store.aggregate(meter_id, phase, [from_ms(e) for e in edges_ms.tolist()], with_registers=False)
    return _columns_of(meter_id, phase, buckets, fields).figures


def _columns_of(meter_id: str, phase: int, buckets: list[Bucket], fields: Sequence[str]) -> HistoryColumns:
    def column(name: str) -> npt.NDArray[np.float64]:
        values = [getattr(b, name) for b in buckets]
        return np.array([math.nan if v is None else v for v in values], dtype=np.float64)

    return HistoryColumns(
        meter_id,
        phase,
        np.array([to_ms(b.start) for b in buckets], dtype=np.int64),
        np.array([to_ms(b.end) for b in buckets], dtype=np.int64),
        {name: column(name) for name in fields},
    )


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
    """Return the non-empty buckets of [start, end) for one meter phase; days are local to the meter's zone.

    The buckets of :func:`history_columns` as records; their register fields are None.
    """
    columns = history_columns(store, meter_id, start, end, points=points, bucket=bucket, phase=phase, tz=tz)
    figures = {name: _none_if_nan(values) for name, values in columns.figures.items()}
    counts = columns.figures["count"].astype(np.int64).tolist()
    no_registers = (None,) * 6
    return [
        Bucket._make((meter_id, phase, lo, hi, n, *power_and_mains, *no_registers,
                      e_imp or 0.0, e_exp or 0.0, covered or 0.0))
        for lo, hi, n, *power_and_mains, e_imp, e_exp, covered in zip(
            _utc_datetimes(columns.starts_ms),
            _utc_datetimes(columns.ends_ms),
            counts,
            *(figures[name] for name in FIGURE_FIELDS[1:]),
            strict=True,
        )
    ]


@dataclass(frozen=True)
class PowerSeries:
    """Power of one meter phase per bucket of [start, end), as columns ready to draw.

    ``starts_ms`` are the bucket starts (epoch ms); ``avg_w``/``min_w``/``max_w`` are None where
    a bucket holds no reading. ``connected[i]`` tells whether a line may join bucket ``i`` to
    the previous bucket that holds a reading: False across a stretch longer than the meter's
    readings allow (see :func:`joins`), so an offline gap is drawn as a gap.
    """

    meter: str
    phase: int
    start: datetime
    end: datetime
    width_s: int
    """The bucket width; 86400 stands for local days, which may be 23 or 25 hours long."""
    starts_ms: list[int]
    count: list[int]
    avg_w: list[float | None]
    min_w: list[float | None]
    max_w: list[float | None]
    connected: list[bool]


def _none_if_nan(values: npt.NDArray[np.float64]) -> list[float | None]:
    plain: list[float | None] = values.tolist()
    return [None if math.isnan(v) else v for v in values.tolist()] if np.isnan(values).any() else plain


def _utc_datetimes(ts_ms: npt.NDArray[np.int64]) -> list[datetime]:
    """Return epoch milliseconds as aware UTC datetimes, equal to ``from_ms``'s."""
    naive: list[datetime] = ts_ms.astype("datetime64[ms]").astype("datetime64[us]").tolist()
    return [moment.replace(tzinfo=UTC) for moment in naive]


@dataclass(frozen=True)
class PowerArrays:
    """What :class:`PowerSeries` holds, as arrays: NaN where a bucket has no power."""

    width_s: int
    starts_ms: npt.NDArray[np.int64]
    columns: PowerColumns
    connected: npt.NDArray[np.bool_]


def joins(
    starts_ms: npt.NDArray[np.int64], present: npt.NDArray[np.bool_], width_s: int, interval_s: int
) -> npt.NDArray[np.bool_]:
    """Tell, per bucket, whether a line may join it to the previous bucket holding a value.

    Two buckets with readings are joined when the time between their starts is at most one
    bucket plus the larger of one bucket and twice the meter's interval: sparse readings still
    draw a line, a stretch where the meter was silent does not.
    """
    allowed_ms = (width_s + max(width_s, 2 * interval_s)) * 1000
    joined = np.zeros(len(starts_ms), dtype=np.bool_)
    shown = np.flatnonzero(present)
    if len(shown) > 1:
        joined[shown[1:]] = np.diff(starts_ms[shown]) <= allowed_ms
    return joined


def power_arrays(
    store: Store,
    meter_id: str,
    start: datetime,
    end: datetime,
    *,
    points: int | None = None,
    bucket: str | None = None,
    phase: int = 0,
    tz: str | None = None,
    meter: Meter | None = None,
) -> PowerArrays:
    """Return a meter phase's power per bucket over [start, end), from rollups where they tile it.

    Buckets of 15 minutes and more come from ``Store.period_power`` (rollups, so a year costs
    as little as a day); a day or wider means the local days of ``tz`` (default: the meter's
    zone). Narrower buckets aggregate the raw rows. ``meter`` saves reading it again.
    """
    if end <= start:
        raise InputError("--end must be after --start")
    meter = meter if meter is not None and meter.id == meter_id else store.get_meter(meter_id)
    bucket = None if bucket is None else bucket_name(bucket)
    width_s = bucket_width_s(start, end, points, bucket)
    if bucket in CALENDAR_BUCKETS or width_s >= 86_400:
        calendar = bucket if bucket in CALENDAR_BUCKETS else "1d"
        width_s = BUCKET_WIDTHS_S[calendar]
        edges = _calendar_edges_ms(start, end, tz or meter.tz, calendar)
    elif width_s % 900 == 0:
        width_ms = width_s * 1000
        first = to_ms(start) - to_ms(start) % width_ms
        edges = np.arange(first, to_ms(end) + width_ms, width_ms, dtype=np.int64)  # the last edge is >= end
    else:
        return _raw_arrays(store, meter_id, start, end, width_s, phase, meter.interval_s)
    if len(edges) - 1 > MAX_POINTS:
        raise InputError(f"{len(edges) - 1} buckets exceed {MAX_POINTS}; choose a wider bucket")
    columns = store.period_power(meter_id, phase, edges)
    starts_ms = edges[:-1]
    return PowerArrays(
        width_s, starts_ms, columns, joins(starts_ms, columns.count > 0, width_s, meter.interval_s)
    )


def _raw_arrays(
    store: Store, meter_id: str, start: datetime, end: datetime, width_s: int, phase: int, interval_s: int
) -> PowerArrays:
    buckets = [b for b in store.downsample_raw(meter_id, phase, start, end, width_s) if b.count > 0]
    starts_ms = np.array([to_ms(b.start) for b in buckets], dtype=np.int64)

    def column(values: list[float | None]) -> npt.NDArray[np.float64]:
        return np.array([math.nan if v is None else v for v in values], dtype=np.float64)

    columns = PowerColumns(
        np.array([b.count for b in buckets], dtype=np.int64),
        column([b.power_avg_w for b in buckets]),
        column([b.power_min_w for b in buckets]),
        column([b.power_max_w for b in buckets]),
    )
    present = np.ones(len(buckets), dtype=np.bool_)
    return PowerArrays(width_s, starts_ms, columns, joins(starts_ms, present, width_s, interval_s))


def power_series(
    store: Store,
    meter_id: str,
    start: datetime,
    end: datetime,
    *,
    points: int | None = None,
    bucket: str | None = None,
    phase: int = 0,
    tz: str | None = None,
) -> PowerSeries:
    """Return :func:`power_arrays` as lists, None where a bucket has no power."""
    arrays = power_arrays(store, meter_id, start, end, points=points, bucket=bucket, phase=phase, tz=tz)
    columns = arrays.columns
    return PowerSeries(
        meter_id,
        phase,
        start,
        end,
        arrays.width_s,
        arrays.starts_ms.tolist(),
        columns.count.tolist(),
        _none_if_nan(columns.power_avg_w),
        _none_if_nan(columns.power_min_w),
        _none_if_nan(columns.power_max_w),
        arrays.connected.tolist(),
    )
