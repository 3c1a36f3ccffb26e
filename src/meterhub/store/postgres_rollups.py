"""PostgreSQL rollup persistence: bucket upserts, and rebuilds of rollups, gaps and latest rows.

Buckets are merged with ``INSERT ... ON CONFLICT DO UPDATE`` under the SQLite backend's rules
(counts and sums add, min/max combine, first/last go to the earlier/later reading). A rebuild
recomputes whole hours from the raw rows with the shared :class:`RollupBuilder`, so late rows and
migrations give what a recomputation from scratch would give.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from meterhub.model import PHASE_TOTAL, READING_FIELDS
from meterhub.store.coarse import QUARTER_MS, SIX_HOURS_MS, local_midnights_ms
from meterhub.store.postgres_schema import ROLLUP_COLUMNS, ROLLUP_TYPES, Conn, month_bounds_ms
from meterhub.store.rollup import Agg, RegisterState, RollupBuilder, Row, SeriesState

__all__ = [
    "COARSE_TABLES",
    "LATEST_COLUMNS",
    "MERGE_SQL",
    "TABLE_OF_WIDTH",
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

TABLE_OF_WIDTH = {900_000: "rollup_15m", 3_600_000: "rollup_1h"}
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


def _merge_sql(table: str) -> str:
    first_wins = (
        "EXCLUDED.first_ts IS NOT NULL AND (r.first_ts IS NULL OR EXCLUDED.first_ts < r.first_ts)"
    )
    last_wins = (
        "EXCLUDED.last_ts IS NOT NULL AND (r.last_ts IS NULL OR EXCLUDED.last_ts >= r.last_ts)"
    )
    sums = ("n", "power_n", "power_sum_w", "voltage_n", "voltage_sum_v", "current_n",
            "current_sum_a", "energy_import_kwh", "energy_export_kwh", "covered_ms")
    sets = [
        *(f"{c} = r.{c} + EXCLUDED.{c}" for c in sums),
        *(f"{c} = LEAST(r.{c}, EXCLUDED.{c})" for c in ("power_min_w", "voltage_min_v")),
        *(f"{c} = GREATEST(r.{c}, EXCLUDED.{c})" for c in ("power_max_w", "voltage_max_v")),
        # Every right-hand side sees the row as it was, so the order of these does not matter.
        *(f"{c} = CASE WHEN {first_wins} THEN EXCLUDED.{c} ELSE r.{c} END"
          for c in ("first_ts", "first_import_kwh", "first_export_kwh")),
        *(f"{c} = CASE WHEN {last_wins} THEN EXCLUDED.{c} ELSE r.{c} END"
          for c in ("last_ts", "last_import_kwh", "last_export_kwh")),
    ]
    return (
        f"INSERT INTO {table} AS r ({', '.join(ROLLUP_COLUMNS)}) "
        f"SELECT * FROM {unnest(ROLLUP_TYPES)} "
        f"ON CONFLICT (meter, phase, bucket) DO UPDATE SET {', '.join(sets)}"
    )


MERGE_SQL = {width: _merge_sql(table) for width, table in TABLE_OF_WIDTH.items()}


COARSE_TABLES = ("rollup_6h", "rollup_day")
"""6-hour UTC buckets and the meter's local days, each row the merge of its 15-minute rows."""

_PERIODS = f"{unnest(('integer', 'smallint', 'bigint', 'bigint'))} AS p(meter, phase, lo, hi)"


def _fine_edge(column: str, marker: str, descending: bool) -> str:
    order = " DESC" if descending else ""
    return f"(array_agg(r.{column} ORDER BY r.bucket{order}) FILTER (WHERE r.{marker} IS NOT NULL))[1]"


def _coarse_sql(table: str) -> tuple[str, str]:
    """Return the statements that drop and recompute the ``table`` rows of the periods given."""
    delete = (
        f"DELETE FROM {table} c USING {_PERIODS} "
        "WHERE c.meter = p.meter AND c.phase = p.phase AND c.bucket = p.lo"
    )
    insert = (
        f"INSERT INTO {table} ({', '.join(ROLLUP_COLUMNS)}) "
        "SELECT p.meter, p.phase, p.lo, sum(r.n), sum(r.power_n), sum(r.power_sum_w), "
        "min(r.power_min_w), max(r.power_max_w), sum(r.voltage_n), sum(r.voltage_sum_v), "
        "min(r.voltage_min_v), max(r.voltage_max_v), sum(r.current_n), sum(r.current_sum_a), "
        f"min(r.first_ts), {_fine_edge('first_import_kwh', 'first_ts', False)}, "
        f"{_fine_edge('first_export_kwh', 'first_ts', False)}, "
        f"max(r.last_ts), {_fine_edge('last_import_kwh', 'last_ts', True)}, "
        f"{_fine_edge('last_export_kwh', 'last_ts', True)}, "
        "sum(r.energy_import_kwh), sum(r.energy_export_kwh), sum(r.covered_ms) "
        f"FROM {_PERIODS} JOIN rollup_15m r ON r.meter = p.meter AND r.phase = p.phase "
        "AND r.bucket >= p.lo AND r.bucket < p.hi GROUP BY p.meter, p.phase, p.lo"
    )
    return delete, insert


_COARSE_SQL = {table: _coarse_sql(table) for table in COARSE_TABLES}

Span = tuple[int, int, int, int, str]
"""A series' changed 15-minute range: meter pk, phase, [lo_ms, hi_ms), and the meter's zone."""


def _periods(table: str, spans: Sequence[Span]) -> list[list[int]]:
    """Return the coarse periods (meter, phase, lo, hi) covering each span, as columns."""
    meters: list[int] = []
    phases: list[int] = []
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
        meters.extend([pk] * (len(bounds) - 1))
        phases.extend([phase] * (len(bounds) - 1))
    if not edges:
        return [[], [], [], []]
    los = np.concatenate([bounds[:-1] for bounds in edges]).tolist()
    his = np.concatenate([bounds[1:] for bounds in edges]).tolist()
    return [meters, phases, los, his]


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
    """Recompute every coarse row of one meter (after a migration or a change of its zone)."""
    for table in tables:
        conn.execute(f"DELETE FROM {table} WHERE meter = %s", (pk,))
    spans = conn.execute(
        "SELECT phase, min(bucket), max(bucket) FROM rollup_15m WHERE meter = %s GROUP BY phase", (pk,)
    ).fetchall()
    refresh_coarse(conn, [(pk, int(phase), int(lo), int(hi) + QUARTER_MS, tz) for phase, lo, hi in spans],
                   tables)


_REFRESH_LATEST_SQL = (
    f"INSERT INTO latest ({', '.join(LATEST_COLUMNS)}) "
    f"SELECT r.meter, r.phase, r.ts, {', '.join(f'r.{c}' for c in READING_FIELDS)}, "
    "i.ts, i.energy_import_kwh, i.power_w, e.ts, e.energy_export_kwh, e.power_w "
    "FROM (SELECT * FROM readings WHERE meter = %(pk)s AND phase = %(phase)s "
    "ORDER BY ts DESC LIMIT 1) r "
    "LEFT JOIN LATERAL (SELECT ts, energy_import_kwh, power_w FROM readings WHERE meter = %(pk)s "
    "AND phase = %(phase)s AND energy_import_kwh IS NOT NULL ORDER BY ts DESC LIMIT 1) i ON true "
    "LEFT JOIN LATERAL (SELECT ts, energy_export_kwh, power_w FROM readings WHERE meter = %(pk)s "
    "AND phase = %(phase)s AND energy_export_kwh IS NOT NULL ORDER BY ts DESC LIMIT 1) e ON true "
    "ON CONFLICT (meter, phase) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in LATEST_COLUMNS[2:])
)


def agg_row(pk: int, phase: int, agg: Agg) -> tuple[int | float | None, ...]:
    """Return the rollup-table row of an accumulator, in ROLLUP_COLUMNS order."""
    return (
        pk, phase, agg.bucket_ms, agg.n,
        agg.p_n, agg.p_sum, agg.p_min, agg.p_max,
        agg.v_n, agg.v_sum, agg.v_min, agg.v_max,
        agg.i_n, agg.i_sum,
        agg.first_ms, agg.first_imp, agg.first_exp,
        agg.last_ms, agg.last_imp, agg.last_exp,
        agg.e_imp, agg.e_exp, agg.covered_ms,
    )


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
    conn.execute(_REFRESH_LATEST_SQL, {"pk": pk, "phase": phase})


def _last_register(
    conn: Conn, pk: int, phase: int, column: str, before_ms: int
) -> RegisterState | None:
    row = conn.execute(
        f"SELECT ts, {column}, power_w FROM readings WHERE meter = %s AND phase = %s "
        f"AND {column} IS NOT NULL AND ts < %s ORDER BY ts DESC LIMIT 1", (pk, phase, before_ms)
    ).fetchone()
    return None if row is None else register_state(*row)


def load_series_window(
    conn: Conn, pk: int, phase: int, start: int, end: int
) -> tuple[SeriesState, list[Row]]:
    """Return the series state just before ``start`` and the rows that matter for [start, end).

    The rows are those inside the window followed by the first rows at or after ``end`` (any,
    with an import register, with an export register), which only contribute their intervals.
    """
    series = "FROM readings WHERE meter = %(pk)s AND phase = %(phase)s"
    args = {"pk": pk, "phase": phase, "start": start, "end": end}
    row = conn.execute(f"SELECT max(ts) {series} AND ts < %(start)s", args).fetchone()
    before = None if row is None or row[0] is None else int(row[0])
    state = SeriesState(
        before,
        _last_register(conn, pk, phase, "energy_import_kwh", start),
        _last_register(conn, pk, phase, "energy_export_kwh", start),
    )
    select = (
        f"SELECT ts, power_w, voltage_v, current_a, energy_import_kwh, energy_export_kwh {series}"
    )
    inside = conn.execute(f"{select} AND ts >= %(start)s AND ts < %(end)s ORDER BY ts", args)
    rows = [Row(r[0], r[1], r[2], r[3], r[4], r[5]) for r in inside]
    after_sql = " UNION ".join(
        f"({select} AND ts >= %(end)s{condition} ORDER BY ts LIMIT 1)"
        for condition in ("", " AND energy_import_kwh IS NOT NULL",
                          " AND energy_export_kwh IS NOT NULL")
    )
    after = sorted(conn.execute(after_sql, args).fetchall())
    rows.extend(Row(r[0], r[1], r[2], r[3], r[4], r[5], stats=False) for r in after)
    return state, rows


def rebuild_rollups(conn: Conn, pk: int, phase: int, lo_ms: int, hi_ms: int, gap_ms: int) -> None:
    """Recompute the rollups of the whole hours overlapping [lo_ms, hi_ms] from raw rows."""
    start = lo_ms - lo_ms % _HOUR_MS
    end = hi_ms - hi_ms % _HOUR_MS + _HOUR_MS
    state, rows = load_series_window(conn, pk, phase, start, end)
    builder = RollupBuilder()
    builder.feed(state, rows, gap_ms, False)
    aggs, _ = builder.take()
    for width, table in TABLE_OF_WIDTH.items():
        conn.execute(
            f"DELETE FROM {table} WHERE meter = %s AND phase = %s "
            "AND bucket >= %s AND bucket < %s", (pk, phase, start, end),
        )
        rows_of_width = [agg_row(pk, phase, agg) for (w, bucket), agg in aggs.items()
                         if w == width and start <= bucket < end]
        if rows_of_width:
            conn.execute(MERGE_SQL[width], columns(rows_of_width))


def rebuild_gaps(conn: Conn, pk: int, lo_ms: int, hi_ms: int, gap_ms: int) -> None:
    """Recompute the gap events between the phase-0 readings in [lo_ms, hi_ms]."""
    conn.execute(
        "DELETE FROM gaps WHERE meter = %s AND start_ms >= %s AND start_ms < %s", (pk, lo_ms, hi_ms)
    )
    conn.execute(
        "INSERT INTO gaps (meter, start_ms, end_ms) SELECT %(pk)s, ts, next_ts FROM ("
        "SELECT ts, lead(ts) OVER (ORDER BY ts) AS next_ts FROM readings "
        "WHERE meter = %(pk)s AND phase = 0 AND ts >= %(lo)s AND ts <= %(hi)s) s "
        "WHERE next_ts - ts > %(gap)s ON CONFLICT DO NOTHING",
        {"pk": pk, "lo": lo_ms, "hi": hi_ms, "gap": gap_ms},
    )


def rebuild_all(conn: Conn) -> None:
    """Recompute every rollup, gap and latest row from the raw rows, a month at a time."""
    meters = conn.execute("SELECT pk, interval_s FROM meters ORDER BY pk").fetchall()
    for pk, interval_s in meters:
        gap_ms = 2 * int(interval_s) * 1000
        spans = conn.execute(
            "SELECT phase, min(ts), max(ts) FROM readings WHERE meter = %s "
            "GROUP BY phase ORDER BY phase", (pk,),
        ).fetchall()
        for phase, lo, hi in spans:
            month_lo, _ = month_bounds_ms(int(lo))
            while month_lo <= hi:
                _, month_hi = month_bounds_ms(month_lo)
                # Month edges are hour edges: [month_lo, month_hi - 1] rebuilds exactly that month.
                rebuild_rollups(conn, pk, phase, month_lo, month_hi - 1, gap_ms)
                month_lo = month_hi
            if phase == PHASE_TOTAL:
                rebuild_gaps(conn, pk, int(lo), int(hi), gap_ms)
            refresh_latest(conn, pk, phase)
