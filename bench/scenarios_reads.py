"""Read scenarios on the year database: rollups and events against numpy or one raw SQL scan."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

import numpy as np

from bench.data import FloatArray, IntArray
from bench.fixtures import TZ, YEAR_METER, Context, raw_connection
from bench.harness import Goal, Result, calls_for, interleaved, latency_result, repeated
from meterhub.analytics.calendar import local_boundaries, local_midnight
from meterhub.analytics.offline import offline_stats
from meterhub.analytics.power import PowerStats, power_stats
from meterhub.history import choose_width_s
from meterhub.store.base import PowerColumns
from meterhub.timeutil import from_ms, to_ms

__all__ = ["downsample_year", "energy_days_year", "offline_year", "power_stats_7d"]

MAX_POINTS = 2000


def _time_pair(
    ctx: Context, ours: Callable[[], object], reference: Callable[[], object]
) -> tuple[list[float], list[float]]:
    return interleaved(
        repeated(ours, calls_for(ours, ctx.sizes.target_s)),
        repeated(reference, calls_for(reference, ctx.sizes.target_s)),
        ctx.rounds,
    )


def _downsample_numpy(
    ts_ms: IntArray, power_w: FloatArray, edges_ms: IntArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    index = np.searchsorted(ts_ms, edges_ms)
    counts = np.diff(index)
    inside = power_w[: index[-1]]  # reduceat's last segment runs to the end of its array
    starts = np.minimum(index[:-1], inside.size - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.add.reduceat(inside, starts) / counts
    low = np.minimum.reduceat(inside, starts)
    high = np.maximum.reduceat(inside, starts)
    empty = counts == 0
    return np.where(empty, np.nan, avg), np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def downsample_year(ctx: Context) -> list[Result]:
    """Time a year of minutes to <= 2000 points of avg/min/max power via store.period_power."""
    year = ctx.year
    start, end = year.utc_start, year.utc_end
    # The width the history view picks for 2000 points: the smallest round width that fits.
    width_ms = choose_width_s(start, end, MAX_POINTS) * 1000
    edges_ms = np.arange(to_ms(start), to_ms(end) + 1, width_ms, dtype=np.int64)
    ts_ms, power_w = year.series.ts_ms, year.series.power_w

    def ours() -> PowerColumns:
        return year.store.period_power(YEAR_METER, 0, edges_ms)

    def reference() -> tuple[FloatArray, FloatArray, FloatArray]:
        return _downsample_numpy(ts_ms, power_w, edges_ms)

    got = ours()
    avg, low, high = reference()
    agree = (
        np.allclose(got.power_avg_w, avg, equal_nan=True, atol=1e-6)
        and np.allclose(got.power_min_w, low, equal_nan=True)
        and np.allclose(got.power_max_w, high, equal_nan=True)
    )
    # What the same periods cost through aggregate() on the hourly rollups, for the record.
    hour_edges = [from_ms(e) for e in edges_ms.tolist()]
    hourly_s = repeated(lambda: year.store.aggregate(YEAR_METER, 0, hour_edges, with_registers=False), 5)()
    ours_s, reference_s = _time_pair(ctx, ours, reference)
    return [
        latency_result(
            "downsample_year",
            ours_s,
            reference_s,
            f"numpy searchsorted + add/minimum/maximum.reduceat on in-memory arrays of the same "
            f"{ts_ms.size:,} rows; {len(edges_ms) - 1} points of {width_ms // 3_600_000} h",
            Goal("<=", 3),
            f"{len(edges_ms) - 1} points from the 6-hour rollups, avg/min/max equal to numpy's: "
            f"{agree}; aggregate() as Bucket records (untimed) takes {hourly_s * 1e3:.1f} ms",
        )
    ]


def energy_days_year(ctx: Context) -> list[Result]:
    """Time import energy per local day (Europe/Oslo) from the day rollups via store.period_sums."""
    year = ctx.year
    ts_ms, import_kwh = year.series.ts_ms, year.series.import_kwh
    edges = local_boundaries(year.start, year.end, TZ, "day")
    edges_ms = np.array([to_ms(e) for e in edges], dtype=np.int64)
    edges_s = repeated(lambda: local_boundaries(year.start, year.end, TZ, "day"), 20)()

    def ours() -> FloatArray:
        return year.store.period_sums(YEAR_METER, 0, edges_ms, ("energy_import_kwh",))["energy_import_kwh"]

    def reference() -> FloatArray:
        index = np.searchsorted(ts_ms, edges_ms)
        energy: FloatArray = import_kwh[index[1:] - 1] - import_kwh[index[:-1]]
        return energy

    days = ours()
    ref_days = reference()
    via_aggregate = np.array(
        [b.energy_import_kwh for b in year.store.aggregate(YEAR_METER, 0, edges, with_registers=False)]
    )
    hours = np.diff(edges_ms) / 3_600_000
    index = np.searchsorted(ts_ms, edges_ms)
    register_kwh = float(import_kwh[index[-1] - 1] - import_kwh[index[0]])
    # Ours pro-rates intervals across midnight (and gaps); last-minus-first per day drops them.
    check = (
        f"{len(days)} days ({int((hours == 23).sum())} of 23 h, {int((hours == 25).sum())} "
        f"of 25 h); ours sum to {float(days.sum()):,.2f} kWh, the register rose {register_kwh:,.2f} "
        f"kWh, numpy's days sum to {float(ref_days.sum()):,.2f} kWh (midnight-crossing "
        f"intervals dropped); equal to aggregate() per day: "
        f"{bool(np.allclose(days, via_aggregate, atol=1e-9))}; the edges (untimed) take "
        f"{edges_s * 1e3:.2f} ms"
    )
    ours_s, reference_s = _time_pair(ctx, ours, reference)
    return [
        latency_result(
            "energy_days_year",
            ours_s,
            reference_s,
            f"numpy searchsorted of the same local-midnight edges, last-minus-first import register "
            f"per day on in-memory arrays of the same {ts_ms.size:,} rows",
            Goal("<=", 10),
            check,
        )
    ]


def power_stats_7d(ctx: Context) -> list[Result]:
    """Time avg, daytime avg, min, max over 7 local days from the rollups."""
    year = ctx.year
    zone = ZoneInfo(TZ)
    into_year = timedelta(days=min(152, ctx.sizes.year_days - 8))
    first_day = year.start.astimezone(zone).date() + into_year
    start = local_midnight(first_day, zone)
    end = local_midnight(first_day + timedelta(days=7), zone)
    offset_ms = (start.astimezone(zone).utcoffset() or timedelta()) // timedelta(milliseconds=1)
    if (end.astimezone(zone).utcoffset() or timedelta()) // timedelta(milliseconds=1) != offset_ms:
        raise RuntimeError("the 7-day window crosses a DST change; the reference needs one")
    conn = raw_connection(year.path)
    sql = (
        "SELECT avg(p) / 1e3, avg(CASE WHEN (ts + :off) % 86400000 >= 28800000 "
        "AND (ts + :off) % 86400000 < 72000000 THEN p END) / 1e3, min(p) / 1e3, max(p) / 1e3 "
        "FROM readings WHERE meter = (SELECT pk FROM meters WHERE id = :meter) AND phase = 0 "
        "AND ts >= :lo AND ts < :hi"
    )
    args = {"off": offset_ms, "meter": YEAR_METER, "lo": to_ms(start), "hi": to_ms(end)}

    def ours() -> PowerStats:
        return power_stats(year.store, YEAR_METER, start, end, TZ)

    def reference() -> tuple[float, float, float, float]:
        row: tuple[float, float, float, float] = conn.execute(sql, args).fetchone()
        return row

    try:
        got, expected = ours(), reference()
        figures = (got.avg_w, got.daytime_avg_w, got.min_w, got.max_w)
        agree = all(
            a is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
            for a, b in zip(figures, expected, strict=True)
        )
        ours_s, reference_s = _time_pair(ctx, ours, reference)
    finally:
        conn.close()
    return [
        latency_result(
            "power_stats_7d",
            ours_s,
            reference_s,
            f"one SQL aggregate (avg, daytime avg, min, max) over the same raw rows "
            f"({first_day.isoformat()} + 7 local days)",
            Goal("<=", 2),
            f"avg {got.avg_w or 0:.1f} W, daytime {got.daytime_avg_w or 0:.1f} W; "
            f"equal to the SQL answer: {agree}",
        )
    ]


def offline_year(ctx: Context) -> list[Result]:
    """Time gap statistics over the year from gap events (store.gaps)."""
    year = ctx.year
    conn = raw_connection(year.path)
    sql = (
        "SELECT count(*), sum(p) FROM readings "
        "WHERE meter = (SELECT pk FROM meters WHERE id = ?) "
        "AND phase = 0 AND ts >= ? AND ts < ?"
    )
    args = (YEAR_METER, to_ms(year.start), to_ms(year.end))

    def ours() -> object:
        return offline_stats(year.store, YEAR_METER, year.start, year.end)

    def reference() -> tuple[int, int]:
        row: tuple[int, int] = conn.execute(sql, args).fetchone()
        return row

    try:
        stats = offline_stats(year.store, YEAR_METER, year.start, year.end)
        scanned = reference()[0]
        ours_s, reference_s = _time_pair(ctx, ours, reference)
    finally:
        conn.close()
    return [
        latency_result(
            "offline_year",
            ours_s,
            reference_s,
            f"SELECT count(*), sum(p) over the meter's {scanned:,} raw rows in the same range",
            Goal("<=", 1),
            f"{stats.gaps} gaps (expected {year.gaps}), {stats.total_offline_s / 3600:.1f} h offline",
        )
    ]
