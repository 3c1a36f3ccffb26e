"""Coarse rollups derived from the 15-minute ones: 6-hour UTC buckets and the meter's local days.

A year view reads 1,460 six-hour rows or 365 day rows instead of 35,040 quarter-hour ones. Both
tables hold sums of the stored 15-minute integers, and every column merges associatively (sums,
min, max), so rows merged batch by batch at ingest equal rows rebuilt from the 15-minute table.
A day row's bucket is the UTC instant of local midnight in the meter's zone; local midnights
fall on the 15-minute grid in every zone in use, so a day is a whole number of 15-minute buckets
even where it is 23 or 25 hours long.
"""

from __future__ import annotations

import functools
import sqlite3
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from meterhub.store.sqlite_codec import (
    ROLLUP_COLUMNS,
    ROLLUP_READ_SQL,
    STORED_ROLLUP_COLUMNS,
    compact_counts,
)
from meterhub.timeutil import to_ms

__all__ = [
    "COARSE_COLUMN_ORDER",
    "COARSE_TABLES",
    "QUARTER_MS",
    "SIX_HOURS_MS",
    "coarsen_rows",
    "compact_rollups",
    "day_buckets",
    "local_midnights_ms",
    "merge_fresh",
    "midnights_around",
    "refresh_coarse",
    "refresh_meter_days",
]

Ints = npt.NDArray[np.int64]
Rows = npt.NDArray[np.float64]

QUARTER_MS = 900_000
SIX_HOURS_MS = 21_600_000
COARSE_TABLES = ("rollup_6h", "rollup_day")

_READ_FIRST = ("e_imp", "e_exp", "covered_ms", "n", "p_n", "p_sum", "p_min", "p_max")
COARSE_COLUMN_ORDER: tuple[str, ...] = (
    *ROLLUP_COLUMNS[:3],
    *_READ_FIRST,
    *(c for c in ROLLUP_COLUMNS[3:] if c not in _READ_FIRST),
)
"""Column order of the coarse tables before migration 0010 (which migration 0006 creates); since
then every rollup table has the order of STORED_ROLLUP_COLUMNS."""

_C = {name: k for k, name in enumerate(STORED_ROLLUP_COLUMNS)}
_SUM_COLUMNS = [
    _C[c]
    for c in ("n", "p_n", "p_sum", "v_n", "v_sum", "i_n", "i_sum", "e_imp", "e_exp", "covered_ms")
]
_MIN_COLUMNS = [_C[c] for c in ("p_min", "v_min")]
_MAX_COLUMNS = [_C[c] for c in ("p_max", "v_max")]
_FIRST_YEAR, _LAST_YEAR = 1, 9998
_MEAN_YEAR_MS = 31_556_952_000


@functools.lru_cache(maxsize=256)
def _year_midnights(tz: str, year: int) -> Ints:
    zone = ZoneInfo(tz)
    first = date(year, 1, 1).toordinal()
    last = date(year + 1, 1, 1).toordinal()
    days = (date.fromordinal(k) for k in range(first, last))
    # fold=0 reads a skipped midnight with the offset before the jump: the jump itself.
    return np.fromiter(
        (
to_ms(datetime(d.year, d.month, d.day, tzinfo=zone)) for d in days
        ),
        np.int64,
    )


@functools.lru_cache(maxsize=256)
def _span_midnights(tz: str, first_year: int, last_year: int) -> Ints:
    return np.concatenate([_year_midnights(tz, year) for year in range(first_year, last_year + 1)])


def _year_near(ts_ms: int) -> int:
    """Return the UTC year of ``ts_ms``, give or take one."""
    return 1970 + ts_ms // _MEAN_YEAR_MS


def midnights_around(tz: str, lo_ms: int, hi_ms: int) -> Ints:
    """Return the local midnights of ``tz`` (UTC ms) of whole years around [lo_ms, hi_ms]."""
    return _span_midnights(
        tz, max(_FIRST_YEAR, _year_near(lo_ms) - 2), min(_LAST_YEAR, _year_near(hi_ms) + 2)
    )


def local_midnights_ms(tz: str, lo_ms: int, hi_ms: int) -> Ints:
    """Return the local midnights of ``tz`` (UTC ms) from the last at or before ``lo_ms`` to the
    first after ``hi_ms``."""
    midnights = midnights_around(tz, lo_ms, hi_ms)
    first = max(int(np.searchsorted(midnights, lo_ms, "right")) - 1, 0)
    last = int(np.searchsorted(midnights, hi_ms, "right")) + 1
    found: Ints = midnights[first:last]
    return found


def _midnights_near(tz: str, times_ms: Ints) -> Ints:
    """Return the local midnights of the whole years around each time, in order.

    Only the years the times fall in are built, so buckets decades apart cost a few years each.
    """
    near = (1970 + np.unique(times_ms // _MEAN_YEAR_MS)).tolist()
    years = sorted({year + k for year in near for k in range(-2, 3)})
    years = [year for year in years if _FIRST_YEAR <= year <= _LAST_YEAR]
    return np.concatenate([_year_midnights(tz, year) for year in years])


def day_buckets(tz: str, buckets_ms: Ints) -> Ints:
    """Return the local midnight (UTC ms) that begins the day of each bucket."""
    midnights = _midnights_near(tz, buckets_ms)
    # Clipped, not wrapped: a bucket before the first midnight of year 1 joins that first day.
    index = np.maximum(np.searchsorted(midnights, buckets_ms, "right") - 1, 0)
    day: Ints = midnights[index]
    return day


def coarsen_rows(rows: Rows, coarse_ms: Ints) -> Rows:
    """Merge rollup rows (sorted by meter, phase, bucket) into the coarse buckets given per row.

    Rows are laid out as STORED_ROLLUP_COLUMNS with whole counts, NaN standing for NULL; the
    result has the same layout.
    """
    count = len(rows)
    if count == 0:
        return rows
    meter, phase = rows[:, 0], rows[:, 1]
    starts = np.ones(count, dtype=bool)
    starts[1:] = (meter[1:] != meter[:-1]) | (phase[1:] != phase[:-1]) | (coarse_ms[1:] != coarse_ms[:-1])
    groups = np.nonzero(starts)[0]
    out = np.full((len(groups), rows.shape[1]), np.nan)
    out[:, 0], out[:, 1] = meter[groups], phase[groups]
    out[:, 2] = coarse_ms[groups].astype(np.float64)
    for column in _SUM_COLUMNS:
        out[:, column] = np.add.reduceat(np.nan_to_num(rows[:, column]), groups)
    for column in _MIN_COLUMNS:
        out[:, column] = np.fmin.reduceat(rows[:, column], groups)
    for column in _MAX_COLUMNS:
        out[:, column] = np.fmax.reduceat(rows[:, column], groups)
    return out


def _day_column(rows: Rows, zones: dict[int, str]) -> Ints:
    """Return each row's local-day bucket, by the zone of its meter."""
    buckets = rows[:, 2].astype(np.int64)
    meters = rows[:, 0].astype(np.int64)
    days = np.empty_like(buckets)
    by_zone: dict[str, list[int]] = {}
    for pk in np.unique(meters).tolist():
        by_zone.setdefault(zones[pk], []).append(pk)
    for tz, pks in by_zone.items():
        pick = np.isin(meters, pks) if len(by_zone) > 1 else np.ones(len(meters), dtype=bool)
        days[pick] = day_buckets(tz, buckets[pick])
    return days


def merge_fresh(
    conn: sqlite3.Connection, merge_sql: dict[str, str], fine: Rows, zones: dict[int, str]
) -> None:
    """Merge a batch's 15-minute rows (sorted by meter, phase, bucket; counts whole) into the
    coarse tables."""
    if len(fine) == 0:
        return
    buckets = fine[:, 2].astype(np.int64)
    six = coarsen_rows(fine, buckets - buckets % SIX_HOURS_MS)
    conn.executemany(merge_sql["rollup_6h"], compact_counts(six).tolist())
    days = coarsen_rows(fine, _day_column(fine, zones))
    conn.executemany(merge_sql["rollup_day"], compact_counts(days).tolist())


def refresh_coarse(
    conn: sqlite3.Connection, pk: int, phase: int, lo_ms: int, hi_ms: int, tz: str
) -> None:
    """Recompute the coarse rows that cover [lo_ms, hi_ms) from the stored 15-minute rows."""
    if hi_ms <= lo_ms:
        return
    six_lo = lo_ms - lo_ms % SIX_HOURS_MS
    six_hi = -(-hi_ms // SIX_HOURS_MS) * SIX_HOURS_MS
    midnights = _midnights_near(tz, np.array([lo_ms, hi_ms - 1], dtype=np.int64))
    day_lo = int(midnights[max(int(np.searchsorted(midnights, lo_ms, "right")) - 1, 0)])
    day_hi = int(midnights[min(int(np.searchsorted(midnights, hi_ms - 1, "right")), len(midnights) - 1)])
    select = ", ".join(ROLLUP_READ_SQL[c] for c in STORED_ROLLUP_COLUMNS)
    fetched = conn.execute(
        f"SELECT {select} FROM rollup_15m WHERE meter = ? AND phase = ? AND bucket >= ? AND bucket < ? "
        "ORDER BY bucket",
        (pk, phase, min(six_lo, day_lo), max(six_hi, day_hi)),
    ).fetchall()
    fine = np.array(fetched, dtype=np.float64).reshape(-1, len(STORED_ROLLUP_COLUMNS))
    buckets = fine[:, 2].astype(np.int64)
    names = ", ".join(STORED_ROLLUP_COLUMNS)
    insert = f"INSERT INTO {{}} ({names}) VALUES ({', '.join('?' * len(STORED_ROLLUP_COLUMNS))})"
    for table, lo, hi in (("rollup_6h", six_lo, six_hi), ("rollup_day", day_lo, day_hi)):
        conn.execute(
            f"DELETE FROM {table} WHERE meter = ? AND phase = ? AND bucket >= ? AND bucket < ?",
            (pk, phase, lo, hi),
        )
        inside = (buckets >= lo) & (buckets < hi)
        if not inside.any():
            continue
        part = fine[inside]
        coarse = (
            buckets[inside] - buckets[inside] % SIX_HOURS_MS
            if table == "rollup_6h"
            else day_buckets(tz, buckets[inside])
        )
        conn.executemany(insert.format(table), compact_counts(coarsen_rows(part, coarse)).tolist())


def refresh_meter_days(conn: sqlite3.Connection, pk: int, tz: str) -> None:
    """Recompute every coarse row of one meter (after its zone changed)."""
    for phase, lo, hi in conn.execute(
        "SELECT phase, min(bucket), max(bucket) FROM rollup_15m WHERE meter = ? GROUP BY phase", (pk,)
    ).fetchall():
        conn.execute("DELETE FROM rollup_day WHERE meter = ? AND phase = ?", (pk, phase))
        refresh_coarse(conn, pk, phase, lo, hi + QUARTER_MS, tz)


def _compact_table_sql(name: str) -> str:
    value_columns = ", ".join(f"{c} INTEGER" for c in STORED_ROLLUP_COLUMNS[3:])
    return (
        f"CREATE TABLE {name} (meter INTEGER NOT NULL, phase INTEGER NOT NULL, bucket INTEGER NOT NULL, "
        f"{value_columns}, PRIMARY KEY (meter, phase, bucket)) WITHOUT ROWID"
    )


HOURLY_VIEW_SQL = (
    "CREATE VIEW rollup_1h AS SELECT meter, phase, bucket - bucket % 3600000 AS bucket, "
    "sum(e_imp) AS e_imp, sum(e_exp) AS e_exp, sum(covered_ms) AS covered_ms, sum(n) AS n, "
    "sum(coalesce(p_n, n)) AS p_n, sum(p_sum) AS p_sum, min(p_min) AS p_min, max(p_max) AS p_max, "
    "sum(coalesce(v_n, n)) AS v_n, sum(v_sum) AS v_sum, min(v_min) AS v_min, max(v_max) AS v_max, "
    "sum(coalesce(i_n, n)) AS i_n, sum(i_sum) AS i_sum "
    "FROM rollup_15m GROUP BY meter, phase, bucket - bucket % 3600000"
)
"""Hourly rollups as a view over the 15-minute table, for SQL written against the old table."""


def compact_rollups(conn: sqlite3.Connection) -> None:
    """Migration 0010: rollup tables without first/last readings, with counts compacted, and the
    hourly table dropped (four 15-minute rows tile each hour; a view keeps its name readable).

    Each table is copied into its compact layout, column for column, and the copy takes its name.
    """
    expressions = {column: column for column in STORED_ROLLUP_COLUMNS}
    expressions.update({column: f"nullif({column}, n)" for column in ("p_n", "v_n", "i_n")})
    select = ", ".join(expressions[c] for c in STORED_ROLLUP_COLUMNS)
    for table in ("rollup_15m", *COARSE_TABLES):
        conn.execute(_compact_table_sql(f"{table}_compact"))
        conn.execute(
            f"INSERT INTO {table}_compact ({', '.join(STORED_ROLLUP_COLUMNS)}) SELECT {select} FROM {table}"
        )
        conn.execute(f"DROP TABLE {table}")
        conn.execute(f"ALTER TABLE {table}_compact RENAME TO {table}")
    conn.execute("DROP TABLE rollup_1h")
    conn.execute(HOURLY_VIEW_SQL)
