"""Read scenarios on the year database, each timing what a route or command calls.

Every scenario checks that our answer equals the reference's within a stated tolerance and
raises :class:`bench.harness.AnswerMismatch` otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from bench.data import Channels, FloatArray, IntArray
from bench.fixtures import TZ, YEAR_METER, Context, raw_connection
from bench.harness import Goal, Result, calls_for, interleaved, latency_result, repeated, require
from meterhub.analytics.calendar import local_midnight
from meterhub.analytics.energy import EnergyBucket, meter_energy
from meterhub.analytics.offline import gaps_within
from meterhub.analytics.power import PowerStats, power_stats
from meterhub.api.routes.readings import DEFAULT_FIELDS
from meterhub.history import HistoryColumns, choose_width_s, downsample, history_columns
from meterhub.model import Gap
from meterhub.timeutil import to_ms

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


def _history_numpy(ts_ms: IntArray, series: Channels, edges_ms: IntArray) -> dict[str, FloatArray]:
    """A history bucket's figures from in-memory arrays: count, power avg/min/max, voltage and
    current averages, and import/export energy (registers interpolated at the edges)."""
    index = np.searchsorted(ts_ms, edges_ms)
    counts = np.diff(index)
    last = index[-1]
    starts = np.minimum(index[:-1], last - 1)  # reduceat's last segment runs to the end of its array
    empty = counts == 0
    with np.errstate(invalid="ignore", divide="ignore"):

        def mean(values: FloatArray) -> FloatArray:
            return np.where(empty, np.nan, np.add.reduceat(values[:last], starts) / counts)

        figures = {
            "count": counts.astype(np.float64),
            "power_avg_w": mean(series.power_w),
            "power_min_w": np.where(empty, np.nan, np.minimum.reduceat(series.power_w[:last], starts)),
            "power_max_w": np.where(empty, np.nan, np.maximum.reduceat(series.power_w[:last], starts)),
            "voltage_avg_v": mean(series.voltage_v),
            "current_avg_a": mean(series.current_a),
        }
    registers = {"energy_import_kwh": series.import_kwh, "energy_export_kwh": series.export_kwh}
    for name, register in registers.items():
        figures[name] = np.diff(np.interp(edges_ms, ts_ms, register))
    return figures


FIGURE_TOLERANCE = {
    "count": 0.0,
    "power_avg_w": 1e-6,
    "power_min_w": 1e-9,
    "power_max_w": 1e-9,
    "voltage_avg_v": 1e-6,
    "current_avg_a": 1e-6,
    "energy_import_kwh": 1e-6,
    "energy_export_kwh": 1e-6,
}
"""Absolute tolerance per figure: the store keeps mW, mV, mA and nWh, so averages may differ
in the last digits; counts, minima and maxima are exact."""


def _differences(ours: dict[str, FloatArray], theirs: dict[str, FloatArray]) -> dict[str, float]:
    """Return each figure's largest difference (infinite where one has a value the other lacks)."""
    differences = {}
    for name in FIGURE_TOLERANCE:
        if not np.array_equal(np.isnan(ours[name]), np.isnan(theirs[name])):
            differences[name] = math.inf
        else:
            differences[name] = float(np.nanmax(np.abs(ours[name] - theirs[name]), initial=0.0))
    return differences


def require_figures_agree(
    scenario: str, what: str, ours: dict[str, FloatArray], theirs: dict[str, FloatArray]
) -> str:
    """Fail ``scenario`` unless every figure is within :data:`FIGURE_TOLERANCE` of ``what``'s.

    Return the largest differences, as the check line shows them.
    """
    differences = _differences(ours, theirs)
    beyond = {name: d for name, d in differences.items() if d > FIGURE_TOLERANCE[name]}
    require(
        not beyond,
        f"{scenario}: differences from {what} beyond the tolerance: "
        + ", ".join(f"{name} {d:g} (tolerance {FIGURE_TOLERANCE[name]:g})" for name, d in beyond.items()),
    )
    return ", ".join(f"{name} {d:.2g}" for name, d in differences.items())


def downsample_year(ctx: Context) -> list[Result]:
    """Time the readings history at <= 2000 points of a year, as the readings route asks for it."""
    year = ctx.year
    start, end = year.utc_start, year.utc_end
    width_ms = choose_width_s(start, end, MAX_POINTS) * 1000
    edges_ms = np.arange(to_ms(start), to_ms(end) + 1, width_ms, dtype=np.int64)
    ts_ms, series = year.series.ts_ms, year.series
    meter = year.store.get_meter(YEAR_METER)

    def ours() -> HistoryColumns:
        # GET /api/v1/meters/{id}/readings?points=2000 (and `meterhub readings --points 2000`).
        return history_columns(
            year.store, YEAR_METER, start, end, points=MAX_POINTS, tz=meter.tz, meter=meter,
            fields=DEFAULT_FIELDS,
        )  # fmt: skip

    def reference() -> dict[str, FloatArray]:
        return _history_numpy(ts_ms, series, edges_ms)

    got, expected = ours(), reference()
    require(
        np.array_equal(got.starts_ms, edges_ms[:-1]) and np.array_equal(got.ends_ms, edges_ms[1:]),
        f"downsample_year: {len(got)} buckets, numpy has {len(edges_ms) - 1} (every bucket holds readings)",
    )
    shown = require_figures_agree("downsample_year", "numpy's", got.figures, expected)
    def as_records() -> object:
        return downsample(year.store, YEAR_METER, start, end, points=MAX_POINTS)

    as_records_s = repeated(as_records, calls_for(as_records, ctx.sizes.target_s))()
    ours_s, reference_s = _time_pair(ctx, ours, reference)
    return [
        latency_result(
            "downsample_year",
            ours_s,
            reference_s,
            f"numpy searchsorted + reduceat (count, power avg/min/max, voltage and current avg) and "
            f"interp of the registers (energy) on in-memory arrays of the same {ts_ms.size:,} rows; "
            f"{len(edges_ms) - 1} points of {width_ms / 3_600_000:g} h",
            Goal("<=", 3),
            f"history_columns as the readings route calls it: {len(edges_ms) - 1} buckets, each figure "
            f"within its tolerance of numpy's (counts exact, minima and maxima 1e-9, averages and "
            f"energy 1e-6; largest differences: {shown}); as Bucket records (downsample, as the CLI "
            f"calls it, untimed) {as_records_s * 1e3:.1f} ms",
        )
    ]


def _save_columns(ctx: Context) -> Path:
    """Write the year's timestamps and registers as .npy files for the reference to read back."""
    folder = ctx.workdir / "year-columns"
    if not folder.exists():
        folder.mkdir()
        series = ctx.year.series
        for name in ("ts_ms", "import_kwh", "export_kwh"):
            np.save(folder / f"{name}.npy", getattr(series, name))
    return folder


def _local_midnights_ms(first: date, last: date, zone: ZoneInfo) -> IntArray:
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    seconds = [int(datetime.combine(day, time(), zone).timestamp()) for day in days]
    return np.array(seconds, dtype=np.int64) * 1000


def energy_days_year(ctx: Context) -> list[Result]:
    """Time import and export energy per local day (Europe/Oslo) as `meterhub energy --groupby day` asks."""
    year = ctx.year
    zone = ZoneInfo(TZ)
    folder = _save_columns(ctx)
    first_day = year.start.astimezone(zone).date()
    last_day = year.end.astimezone(zone).date()

    def ours() -> list[EnergyBucket]:
        return meter_energy(year.store, YEAR_METER, year.start, year.end, "day")

    def reference() -> tuple[FloatArray, FloatArray]:
        ts_ms = np.load(folder / "ts_ms.npy")
        edges_ms = _local_midnights_ms(first_day, last_day, zone)
        imported = np.diff(np.interp(edges_ms, ts_ms, np.load(folder / "import_kwh.npy")))
        exported = np.diff(np.interp(edges_ms, ts_ms, np.load(folder / "export_kwh.npy")))
        return imported, exported

    days = ours()
    ref_import, ref_export = reference()
    got_import = np.array([d.energy_import_kwh for d in days])
    got_export = np.array([d.energy_export_kwh for d in days])
    require(len(days) == len(ref_import), f"energy_days_year: {len(days)} days, numpy has {len(ref_import)}")
    off_kwh = float(max(np.abs(got_import - ref_import).max(), np.abs(got_export - ref_export).max()))
    require(off_kwh <= 1e-6, f"energy_days_year: a day's energy differs from numpy's by {off_kwh:g} kWh")
    hours = np.array([d.width_s for d in days]) / 3600
    estimated = sum(d.estimated for d in days)
    ours_s, reference_s = _time_pair(ctx, ours, reference)
    return [
        latency_result(
            "energy_days_year",
            ours_s,
            reference_s,
            f"numpy reading the same {year.series.ts_ms.size:,} timestamps and both registers from .npy "
            f"files, local midnights from zoneinfo, registers interpolated at them (np.interp)",
            Goal("<=", 3),
            f"meter_energy by local day: {len(days)} days ({int((hours == 23).sum())} of 23 h, "
            f"{int((hours == 25).sum())} of 25 h, {estimated} with a gap), import {got_import.sum():,.3f} "
            f"kWh, export {got_export.sum():,.3f} kWh; every day within 1e-6 kWh of numpy's "
            f"(worst {off_kwh:.2g})",
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
        require(agree, f"power_stats_7d: ours {figures}, the SQL answer {expected} (tolerance 1e-6 W)")
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
            f"avg {got.avg_w or 0:.1f} W, daytime {got.daytime_avg_w or 0:.1f} W; all four equal "
            f"to the SQL answer within 1e-6 W",
        )
    ]


def _gaps_numpy(ts_ms: IntArray, lo_ms: int, hi_ms: int, threshold_ms: int) -> list[tuple[int, int]]:
    """Stretches longer than the threshold between consecutive readings, clipped to [lo, hi)."""
    after = np.flatnonzero(np.diff(ts_ms) > threshold_ms)
    starts = np.maximum(ts_ms[after], lo_ms)
    ends = np.minimum(ts_ms[after + 1], hi_ms)
    inside = ends > starts
    return list(zip(starts[inside].tolist(), ends[inside].tolist(), strict=True))


def offline_year(ctx: Context) -> list[Result]:
    """Time the gaps of a year as GET /api/v1/meters/{id}/analysis/offline finds them (gaps_within)."""
    year = ctx.year
    ts_ms = year.series.ts_ms
    lo_ms, hi_ms = to_ms(year.start), to_ms(year.end)
    threshold_ms = 2 * 60 * 1000  # a gap is a silence longer than twice the meter's interval

    def ours() -> list[Gap]:
        return gaps_within(year.store, YEAR_METER, year.start, year.end)

    def reference() -> list[tuple[int, int]]:
        return _gaps_numpy(ts_ms, lo_ms, hi_ms, threshold_ms)

    got = [(to_ms(g.start), to_ms(g.end)) for g in ours()]
    expected = reference()
    require(
        len(expected) == year.gaps,
        f"offline_year: the fixture should hold {year.gaps} gaps, numpy finds {len(expected)}",
    )
    require(
        got == expected,
        f"offline_year: {len(got)} gaps, numpy finds {len(expected)}; first differing: "
        f"{next(((a, b) for a, b in zip(got, expected, strict=False) if a != b), None)}",
    )
    offline_h = sum(b - a for a, b in got) / 3_600_000
    ours_s, reference_s = _time_pair(ctx, ours, reference)
    return [
        latency_result(
            "offline_year",
            ours_s,
            reference_s,
            f"numpy diff of the same {ts_ms.size:,} in-memory timestamps, silences over 2 minutes "
            f"clipped to the range",
            Goal("<=", 1),
            f"gaps_within as the offline-analysis route calls it: {len(got)} gaps "
            f"({offline_h:.1f} h offline), each equal to numpy's to the millisecond",
        )
    ]
