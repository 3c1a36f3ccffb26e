"""PostgreSQL rollup persistence: bucket upserts, and rebuilds of rollups, gaps and latest rows.

Buckets are merged with ``INSERT ... ON CONFLICT DO UPDATE`` under the SQLite backend's rules
(counts and sums add, min/max combine, first/last go to the earlier/later reading). A rebuild
recomputes whole hours from the raw rows with the shared :class:`RollupBuilder`, so late rows and
migrations give what a recomputation from scratch would give. Tables and rows have the compact
layout of :mod:`meterhub.store.postgres_compact`: series keys, whole numbers at the store's
resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from meterhub.model import PHASE_TOTAL, READING_FIELDS
from meterhub.store.coarse import QUARTER_MS, SIX_HOURS_MS, local_midnights_ms
from meterhub.store.postgres_compact import (
    QUARTER_TABLE,
    ROLLUP_COLUMNS,
    ROLLUP_TYPES,
    compact_rollup_row,
    decoded,
    is_compact,
    merge_sets,
    merged_select,
    present,
    series_of,
    series_range,
)
from meterhub.store.postgres_schema import Conn, month_bounds_ms
from meterhub.store.rollup import Agg, RegisterState, RollupBuilder, Row, SeriesState

__all__ = [
    "COARSE_TABLES",
    "LATEST_COLUMNS",
    "MERGE_SQL",
    "agg_row",
    "columns",
    "load_series_window",
    "rebuild_all",
    "rebuild_coarse",
    "rebuild_gaps",
    "rebuild_rollups",
    "refresh_coarse",
    "refresh_latest",
    "register_state",
    "scalar",
    "unnest",
]

_HOUR_MS = 3_600_000
_STATE_COLUMNS = ("imp_ts", "imp_kwh", "imp_power_w", "exp_ts", "exp_kwh", "exp_power_w")
LATEST_COLUMNS = ("meter", "phase", "ts", *READING_FIELDS, *_STATE_COLUMNS)
"""Columns of ``latest``: the newest row of a series and its newest register readings."""


def unnest(types: Sequence[str]) -> str:
    """Return ``unnest(%b::t1[], ...)``: many rows in one statement, one binary array per column."""
    return f"unnest({', '.join(f'%b::{kind}[]' for kind in types)})"


def columns(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Return the columns of ``rows``, as the arrays :func:`unnest` takes."""
    return [list(column) for column in zip(*rows, strict=True)]


MERGE_SQL = (
    f"INSERT INTO {QUARTER_TABLE} AS r ({', '.join(ROLLUP_COLUMNS)}) "
    f"SELECT * FROM {unnest(ROLLUP_TYPES)} "
    f"ON CONFLICT (series, bucket) DO UPDATE SET {', '.join(merge_sets())}"
)
"""Merge 15-minute rows (as columns, ROLLUP_COLUMNS order) into the stored ones."""


COARSE_TABLES = ("rollup_6h", "rollup_day")
"""6-hour UTC buckets and the meter's local days, each row the merge of its 15-minute rows."""

_PERIODS = f"{unnest(('integer', 'bigint', 'bigint'))} AS p(series, lo, hi)"


def _coarse_sql(table: str) -> tuple[str, str]:
    """Return the statements that drop and recompute the ``table`` rows of the periods given."""
    delete = f"DELETE FROM {table} c USING {_PERIODS} WHERE c.series = p.series AND c.bucket = p.lo"
    insert = (
        f"INSERT INTO {table} ({', '.join(ROLLUP_COLUMNS)}) SELECT {merged_select('p.lo', 'p.series')} "
        f"FROM {_PERIODS} JOIN {QUARTER_TABLE} r ON r.series = p.series "
        "AND r.bucket >= p.lo AND r.bucket < p.hi GROUP BY p.series, p.lo"
    )
    return delete, insert


_COARSE_SQL = {table: _coarse_sql(table) for table in COARSE_TABLES}

Span = tuple[int, int, int, int, str]
"""A series' changed 15-minute range: meter pk, phase, [lo_ms, hi_ms), and the meter's zone."""


def _periods(table: str, spans: Sequence[Span]) -> list[list[int]]:
    """Return the coarse periods (series, lo, hi) covering each span, as columns."""
    keys: list[int] = []
    edges: list[np.ndarray[Any, np.dtype[np.int64]]] = []
    for pk, phase, lo_ms, hi_ms, tz in spans:
        if hi_ms <= lo_ms:
            continue
        if table == "rollup_6h":
            first = lo_ms - lo_ms % SIX_HOURS_MS
            last = -(-hi_ms // SIX_HOURS_MS) * SIX_HOURS_MS
            bounds = np.arange(first, last + SIX_HOURS_MS, SIX_HOURS_MS, dtype=np.int64)
        else:
            bounds = local_midnights_ms(tz, lo_ms, hi_ms - 1)
        edges.append(bounds)
        keys.extend([series_of(pk, phase)] * (len(bounds) - 1))
    if not edges:
        return [[], [], []]
    los = np.concatenate([bounds[:-1] for bounds in edges]).tolist()
    his = np.concatenate([bounds[1:] for bounds in edges]).tolist()
    return [keys, los, his]


def refresh_coarse(conn: Conn, spans: Sequence[Span], tables: Sequence[str] = COARSE_TABLES) -> None:
    """Recompute the coarse rows covering each span from the stored 15-minute rows.

    Spans must not overlap within a series. A day's bucket is the UTC instant of local midnight
    in the meter's zone, taken from the same calendar as SQLite's, so both backends agree.
    """
    for table in tables:
        periods = _periods(table, spans)
        if not periods[0]:
            continue
        delete, insert = _COARSE_SQL[table]
        conn.execute(delete, periods)
        conn.execute(insert, periods)


def rebuild_coarse(conn: Conn, pk: int, tz: str, tables: Sequence[str] = COARSE_TABLES) -> None:
    """Recompute every coarse row of one meter (after a migration or a change of its zone).

    Before the compact layout exists (migration 0006 on a database from before 0009) this does
    nothing: 0009 computes the coarse rows once the tables have their final shape.
    """
    if not is_compact(conn):
        return
    lo, hi = series_range(pk)
    for table in tables:
        conn.execute(f"DELETE FROM {table} WHERE series >= %s AND series < %s", (lo, hi))
    spans = conn.execute(
        "SELECT series, min(bucket), max(bucket) FROM rollup_15m WHERE series >= %s AND series < %s "
        "GROUP BY series", (lo, hi),
    ).fetchall()
    changed = [(pk, int(key) - lo, int(first), int(last) + QUARTER_MS, tz) for key, first, last in spans]
    refresh_coarse(conn, changed, tables)


def _latest_edge(field: str) -> str:
    return (
        f"LEFT JOIN LATERAL (SELECT ts, {decoded(field)} AS kwh, {decoded('power_w')} AS power_w "
        f"FROM samples WHERE series = %(series)s AND {present(field)} ORDER BY ts DESC LIMIT 1) "
    )


_REFRESH_LATEST_SQL = (
    f"INSERT INTO latest ({', '.join(LATEST_COLUMNS)}) "
    f"SELECT %(pk)s, %(phase)s, r.ts, {', '.join(decoded(f, 'r.') for f in READING_FIELDS)}, "
    "i.ts, i.kwh, i.power_w, e.ts, e.kwh, e.power_w "
    "FROM (SELECT * FROM samples WHERE series = %(series)s ORDER BY ts DESC LIMIT 1) r "
    f"{_latest_edge('energy_import_kwh')}i ON true {_latest_edge('energy_export_kwh')}e ON true "
    "ON CONFLICT (meter, phase) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in LATEST_COLUMNS[2:])
)


def agg_row(pk: int, phase: int, agg: Agg) -> tuple[int | None, ...]:
    """Return the compact rollup-table row of an accumulator, in ROLLUP_COLUMNS order."""
    return compact_rollup_row(series_of(pk, phase), agg)


def register_state(ts: Any, kwh: Any, power_w: Any) -> RegisterState | None:
    """Return the register state of stored columns, or None where the register is missing."""
    if ts is None or kwh is None:
        return None
    return RegisterState(int(ts), float(kwh), None if power_w is None else float(power_w))


def scalar(conn: Conn, query: str, args: tuple[int, ...]) -> int | None:
    """Return the integer a one-value query yields, or None."""
    row = conn.execute(query, args).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def refresh_latest(conn: Conn, pk: int, phase: int) -> None:
    """Set the series' latest row and register state from its raw rows."""
    conn.execute(_REFRESH_LATEST_SQL, {"pk": pk, "phase": phase, "series": series_of(pk, phase)})


def _last_register(conn: Conn, series: int, field: str, before_ms: int) -> RegisterState | None:
    row = conn.execute(
        f"SELECT ts, {decoded(field)}, {decoded('power_w')} FROM samples WHERE series = %s "
        f"AND {present(field)} AND ts < %s ORDER BY ts DESC LIMIT 1", (series, before_ms)
    ).fetchone()
    return None if row is None else register_state(*row)


_WINDOW_SELECT = "SELECT ts, " + ", ".join(
    decoded(f) for f in ("power_w", "voltage_v", "current_a", "energy_import_kwh", "energy_export_kwh")
) + " FROM samples WHERE series = %(series)s"


def load_series_window(
    conn: Conn, pk: int, phase: int, start: int, end: int
) -> tuple[SeriesState, list[Row]]:
    """Return the series state just before ``start`` and the rows that matter for [start, end).

    The rows are those inside the window followed by the first rows at or after ``end`` (any,
    with an import register, with an export register), which only contribute their intervals.
    """
    series = series_of(pk, phase)
    args = {"series": series, "start": start, "end": end}
    row = conn.execute(
        "SELECT max(ts) FROM samples WHERE series = %(series)s AND ts < %(start)s", args
    ).fetchone()
    before = None if row is None or row[0] is None else int(row[0])
    state = SeriesState(
        before,
        _last_register(conn, series, "energy_import_kwh", start),
        _last_register(conn, series, "energy_export_kwh", start),
    )
    with conn.cursor(binary=True) as cursor:
        inside = cursor.execute(
            f"{_WINDOW_SELECT} AND ts >= %(start)s AND ts < %(end)s ORDER BY ts", args
        ).fetchall()
    rows = [Row(r[0], r[1], r[2], r[3], r[4], r[5]) for r in inside]
    after_sql = " UNION ".join(
        f"({_WINDOW_SELECT} AND ts >= %(end)s{condition} ORDER BY ts LIMIT 1)"
        for condition in ("", f" AND {present('energy_import_kwh')}", f" AND {present('energy_export_kwh')}")
    )
    after = sorted(conn.execute(after_sql, args).fetchall())
    rows.extend(Row(r[0], r[1], r[2], r[3], r[4], r[5], stats=False) for r in after)
    return state, rows


def rebuild_rollups(conn: Conn, pk: int, phase: int, lo_ms: int, hi_ms: int, gap_ms: int) -> None:
    """Recompute the rollups of the whole hours overlapping [lo_ms, hi_ms] from raw rows."""
    start = lo_ms - lo_ms % _HOUR_MS
    end = hi_ms - hi_ms % _HOUR_MS + _HOUR_MS
    state, rows = load_series_window(conn, pk, phase, start, end)
    builder = RollupBuilder(widths_ms=(QUARTER_MS,))
    builder.feed(state, rows, gap_ms, False)
    aggs, _ = builder.take()
    conn.execute(
        f"DELETE FROM {QUARTER_TABLE} WHERE series = %s AND bucket >= %s AND bucket < %s",
        (series_of(pk, phase), start, end),
    )
    rows_in = [agg_row(pk, phase, agg) for (_, bucket), agg in aggs.items() if start <= bucket < end]
    if rows_in:
        conn.execute(MERGE_SQL, columns(rows_in))


def rebuild_gaps(conn: Conn, pk: int, lo_ms: int, hi_ms: int, gap_ms: int) -> None:
    """Recompute the gap events between the phase-0 readings in [lo_ms, hi_ms]."""
    conn.execute(
        "DELETE FROM gaps WHERE meter = %s AND start_ms >= %s AND start_ms < %s", (pk, lo_ms, hi_ms)
    )
    conn.execute(
        "INSERT INTO gaps (meter, start_ms, end_ms) SELECT %(pk)s, ts, next_ts FROM ("
        "SELECT ts, lead(ts) OVER (ORDER BY ts) AS next_ts FROM samples "
        "WHERE series = %(series)s AND ts >= %(lo)s AND ts <= %(hi)s) s "
        "WHERE next_ts - ts > %(gap)s ON CONFLICT DO NOTHING",
        {"pk": pk, "series": series_of(pk, PHASE_TOTAL), "lo": lo_ms, "hi": hi_ms, "gap": gap_ms},
    )


def rebuild_all(conn: Conn) -> None:
    """Recompute every rollup, gap and latest row from the raw rows, a month at a time.

    Before the compact layout exists (migration 0002 on a database from before 0009) this does
    nothing: 0009 computes the rollups once the tables have their final shape.
    """
    if not is_compact(conn):
        return
    meters = conn.execute("SELECT pk, interval_s FROM meters ORDER BY pk").fetchall()
    for pk, interval_s in meters:
        gap_ms = 2 * int(interval_s) * 1000
        first_key, end_key = series_range(int(pk))
        spans = conn.execute(
            "SELECT series, min(ts), max(ts) FROM samples WHERE series >= %s AND series < %s "
            "GROUP BY series ORDER BY series", (first_key, end_key),
        ).fetchall()
        for key, lo, hi in spans:
            phase = int(key) - first_key
            month_lo, _ = month_bounds_ms(int(lo))
            while month_lo <= hi:
                _, month_hi = month_bounds_ms(month_lo)
                # Month edges are hour edges: [month_lo, month_hi - 1] rebuilds exactly that month.
                rebuild_rollups(conn, pk, phase, month_lo, month_hi - 1, gap_ms)
                month_lo = month_hi
            if phase == PHASE_TOTAL:
                rebuild_gaps(conn, pk, int(lo), int(hi), gap_ms)
            refresh_latest(conn, pk, phase)
