"""The SQLite write path: raw rows, rollups, latest values and gap events in one transaction.

Rows newer than everything stored for their series (the normal case: polling and sorted
backfills) take the fast path: rollups are folded in memory and merged with one upsert per
bucket. Older rows (late arrivals, history backfilled behind live data) are inserted one by one
and the buckets and gaps around them are rebuilt from the raw rows, so the result is always what
a recomputation from scratch would give.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from meterhub.errors import UnknownMeterError
from meterhub.model import PHASE_TOTAL, Reading
from meterhub.store.base import ReadingColumns, WriteResult
from meterhub.store.coarse import COARSE_TABLES, refresh_coarse
from meterhub.store.rollup import RegisterState, RollupBuilder, Row, SeriesState
from meterhub.store.sqlite_codec import (
    ENCODING_INSERT_VALUES_SQL,
    LARGEST_STORED,
    PARTIAL_COUNTS,
    READING_COLUMNS,
    READING_SCALES,
    STORED_ROLLUP_COLUMNS,
    encode_agg,
    encode_reading,
    round_half_away_array,
    row_from_db,
    unstorable,
)

__all__ = [
    "STORED_WIDTHS_MS",
    "WriterContext",
    "load_series_window",
    "rebuild_all",
    "rebuild_series",
    "write_readings_tx",
]

_TABLE_OF_WIDTH = {900_000: "rollup_15m"}
STORED_WIDTHS_MS: tuple[int, ...] = tuple(_TABLE_OF_WIDTH)
"""Widths of the rollups SQLite stores row by row: 15 minutes (hours are four of them; 6-hour
and local-day rows are merged from them, see :mod:`meterhub.store.coarse`)."""
_HOUR_MS = 3_600_000
_VALUE_COLUMNS = "v, i, p, q, pf, f, ei, ee, qi, qe"


def _merge_sql(table: str) -> str:
    columns = ", ".join(STORED_ROLLUP_COLUMNS)
    marks = ", ".join("?" * len(STORED_ROLLUP_COLUMNS))
    sets = [
        "n = n + excluded.n",
        # A count equal to n is stored as NULL (see STORED_ROLLUP_COLUMNS); so is the merged one.
        *(
            f"{c} = nullif(coalesce({c}, n) + coalesce(excluded.{c}, excluded.n), n + excluded.n)"
            for c in PARTIAL_COUNTS
        ),
        "p_sum = p_sum + excluded.p_sum",
        "p_min = CASE WHEN p_min IS NULL OR excluded.p_min < p_min THEN excluded.p_min ELSE p_min END",
        "p_max = CASE WHEN p_max IS NULL OR excluded.p_max > p_max THEN excluded.p_max ELSE p_max END",
        "v_sum = v_sum + excluded.v_sum",
        "v_min = CASE WHEN v_min IS NULL OR excluded.v_min < v_min THEN excluded.v_min ELSE v_min END",
        "v_max = CASE WHEN v_max IS NULL OR excluded.v_max > v_max THEN excluded.v_max ELSE v_max END",
        "i_sum = i_sum + excluded.i_sum",
        "e_imp = e_imp + excluded.e_imp",
        "e_exp = e_exp + excluded.e_exp",
        "covered_ms = covered_ms + excluded.covered_ms",
    ]
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({marks}) "
        f"ON CONFLICT (meter, phase, bucket) DO UPDATE SET {', '.join(sets)}"
    )


_MERGE_SQL = {width: _merge_sql(table) for width, table in _TABLE_OF_WIDTH.items()}
_COARSE_MERGE_SQL = {table: _merge_sql(table) for table in COARSE_TABLES}
_INSERT_READING_SQL = (
    f"INSERT INTO readings (meter, phase, ts, {_VALUE_COLUMNS}) VALUES ({', '.join('?' * 13)})"
)
_INSERT_ENCODING_SQL = (
    f"INSERT INTO readings (meter, phase, ts, {_VALUE_COLUMNS}) VALUES ({ENCODING_INSERT_VALUES_SQL})"
)
_INSERT_IGNORE_READING_SQL = _INSERT_READING_SQL.replace("INSERT", "INSERT OR IGNORE", 1)
_LATEST_SQL = (
    f"INSERT OR REPLACE INTO latest (meter, phase, ts, {_VALUE_COLUMNS}, "
    "imp_ts, imp_kwh, imp_power_w, exp_ts, exp_kwh, exp_power_w) "
    f"VALUES ({', '.join('?' * 19)})"
)


@dataclass(slots=True)
class WriterContext:
    """What the writer thread remembers between transactions."""

    meters: dict[str, tuple[int, int]] = field(default_factory=dict)
    """meter id -> (pk, gap threshold in ms)"""
    states: dict[int, SeriesState] = field(default_factory=dict)
    """series key (meter pk * 4 + phase) -> where the series stands"""
    zones: dict[int, str] = field(default_factory=dict)
    """meter pk -> IANA zone, which the local-day rollups follow"""
    states_loaded: bool = False
    data_version: int | None = None

    def forget(self) -> None:
        """Drop every cached fact; they are reloaded from the database."""
        self.meters.clear()
        self.zones.clear()
        self.states.clear()
        self.states_loaded = False


def _state_from(row: tuple[int | float | None, ...]) -> SeriesState:
    last, imp_ts, imp_kwh, imp_p, exp_ts, exp_kwh, exp_p = row
    imp = None if imp_ts is None or imp_kwh is None else RegisterState(int(imp_ts), float(imp_kwh), _f(imp_p))
    exp = None if exp_ts is None or exp_kwh is None else RegisterState(int(exp_ts), float(exp_kwh), _f(exp_p))
    return SeriesState(None if last is None else int(last), imp, exp)


def _f(value: int | float | None) -> float | None:
    return None if value is None else float(value)


def _load_states(conn: sqlite3.Connection, ctx: WriterContext) -> None:
    ctx.states = {
        row[0] * 4 + row[1]: _state_from(row[2:])
        for row in conn.execute(
            "SELECT meter, phase, ts, imp_ts, imp_kwh, imp_power_w, exp_ts, exp_kwh, exp_power_w FROM latest"
        )
    }
    ctx.states_loaded = True


def _meter_info(conn: sqlite3.Connection, ctx: WriterContext, meter_id: str) -> tuple[int, int]:
    info = ctx.meters.get(meter_id)
    if info is None:
        # One query for all meters: a batch from a fleet names thousands of them.
        for found_id, pk, interval_s, tz in conn.execute("SELECT id, pk, interval_s, tz FROM meters"):
            ctx.meters[found_id] = (pk, 2 * interval_s * 1000)
            ctx.zones[pk] = tz
        info = ctx.meters.get(meter_id)
        if info is None:
            raise UnknownMeterError(meter_id)
    return info


_SCALES = np.array(READING_SCALES)
_VALUE_INDEX = {name: k for k, name in enumerate(READING_COLUMNS)}


def write_readings_tx(
    conn: sqlite3.Connection, ctx: WriterContext, readings: Sequence[Reading]
) -> WriteResult:
    """Store readings in one transaction; the caller has opened it with BEGIN IMMEDIATE.

    The readings are turned into columns once (one transpose, one array of values) and take the
    column writer, so both entry points store exactly the same rows, rollups and gaps.
    """
    from meterhub.store.sqlite_columns import write_columns_tx  # it builds on this module

    columns = reading_columns(readings)
    encoded = round_half_away_array(columns.values * _SCALES)
    too_large = np.abs(encoded) >= LARGEST_STORED  # NaN (a missing value) compares False
    if too_large.any():
        raise unstorable(readings[int(np.nonzero(too_large.any(axis=1))[0][0])])
    return write_columns_tx(conn, ctx, columns)


_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def reading_columns(readings: Sequence[Reading]) -> ReadingColumns:
    """Return readings as columns, in order: one transpose instead of work per reading and field."""
    count = len(readings)
    if not count:
        return ReadingColumns([], np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                              np.zeros((0, len(READING_COLUMNS)), np.float64))
    meter_col, ts_col, phase_col, *value_cols = zip(*readings, strict=True)
    index_of = {meter_id: k for k, meter_id in enumerate(dict.fromkeys(meter_col))}
    epoch, micro = _EPOCH, _US
    return ReadingColumns(
        list(index_of),
        np.fromiter(map(index_of.__getitem__, meter_col), np.int64, count),
        np.fromiter(((ts - epoch) // micro for ts in ts_col), np.int64, count),
        np.array(phase_col, dtype=np.int64),
        np.array(value_cols, dtype=np.float64).T,  # None reads as NaN: missing
    )


def _last_ms(state: SeriesState | None) -> float:
    return -np.inf if state is None or state.last_ms is None else float(state.last_ms)


def _gap_ms(conn: sqlite3.Connection, pk: int) -> int:
    return 2 * int(conn.execute("SELECT interval_s FROM meters WHERE pk = ?", (pk,)).fetchone()[0]) * 1000


def _latest_row(raw: tuple[int | float | None, ...], state: SeriesState) -> tuple[int | float | None, ...]:
    imp, exp = state.imp, state.exp
    return (
        *raw,
        None if imp is None else imp.ts_ms,
        None if imp is None else imp.kwh,
        None if imp is None else imp.power_w,
        None if exp is None else exp.ts_ms,
        None if exp is None else exp.kwh,
        None if exp is None else exp.power_w,
    )


def _write_late(
    conn: sqlite3.Connection,
    ctx: WriterContext,
    pk: int,
    phase: int,
    items: list[tuple[int, Reading]],
    gap_ms: int,
) -> tuple[int, int]:
    inserted: list[int] = []
    for ts_ms, reading in items:
        cursor = conn.execute(_INSERT_IGNORE_READING_SQL, encode_reading(pk, reading, ts_ms))
        if cursor.rowcount == 1:
            inserted.append(ts_ms)
    if not inserted:
        return 0, len(items)
    lo, hi = min(inserted), max(inserted)
    # The rows whose intervals change: the neighbours of the new rows, and for each register the
    # neighbouring rows that carry it (rows without a register may lie in between).
    span_lo, span_hi = lo, hi
    for column in ("1", "ei IS NOT NULL", "ee IS NOT NULL"):
        before = conn.execute(
            f"SELECT max(ts) FROM readings WHERE meter = ? AND phase = ? AND ts < ? AND {column}",
            (pk, phase, lo),
        ).fetchone()[0]
        after = conn.execute(
            f"SELECT min(ts) FROM readings WHERE meter = ? AND phase = ? AND ts > ? AND {column}",
            (pk, phase, hi),
        ).fetchone()[0]
        span_lo = span_lo if before is None else min(span_lo, before)
        span_hi = span_hi if after is None else max(span_hi, after)
    rebuild_series(conn, pk, phase, span_lo, span_hi, gap_ms)
    ctx.states[pk * 4 + phase] = _reload_state(conn, pk, phase)
    return len(inserted), len(items) - len(inserted)


def _reload_state(conn: sqlite3.Connection, pk: int, phase: int) -> SeriesState:
    row = conn.execute(
        "SELECT ts, imp_ts, imp_kwh, imp_power_w, exp_ts, exp_kwh, exp_power_w "
        "FROM latest WHERE meter = ? AND phase = ?",
        (pk, phase),
    ).fetchone()
    imp = _last_register(conn, pk, phase, "ei", None)
    exp = _last_register(conn, pk, phase, "ee", None)
    if row is None:
        newest = conn.execute(
            f"SELECT meter, phase, ts, {_VALUE_COLUMNS} FROM readings WHERE meter = ? AND phase = ? "
            "ORDER BY ts DESC LIMIT 1",
            (pk, phase),
        ).fetchone()
        if newest is None:
            return SeriesState(None, imp, exp)
        state = SeriesState(newest[2], imp, exp)
        conn.execute(_LATEST_SQL, _latest_row(tuple(newest), state))
        return state
    conn.execute(
        "UPDATE latest SET imp_ts = ?, imp_kwh = ?, imp_power_w = ?, exp_ts = ?, exp_kwh = ?, "
        "exp_power_w = ? WHERE meter = ? AND phase = ?",
        (*_register_columns(imp), *_register_columns(exp), pk, phase),
    )
    return SeriesState(row[0], imp, exp)


def _register_columns(state: RegisterState | None) -> tuple[int | float | None, ...]:
    return (None, None, None) if state is None else (state.ts_ms, state.kwh, state.power_w)


def _last_register(
    conn: sqlite3.Connection, pk: int, phase: int, column: str, before_ms: int | None
) -> RegisterState | None:
    bound = "" if before_ms is None else " AND ts < ?"
    args: tuple[int, ...] = (pk, phase) if before_ms is None else (pk, phase, before_ms)
    row = conn.execute(
        f"SELECT ts, {column}, p FROM readings WHERE meter = ? AND phase = ? AND {column} IS NOT NULL"
        f"{bound} ORDER BY ts DESC LIMIT 1",
        args,
    ).fetchone()
    if row is None:
        return None
    return RegisterState(row[0], row[1] / 1e6, None if row[2] is None else row[2] / 1e3)


def _rows(conn: sqlite3.Connection, sql: str, args: Iterable[int], stats: bool) -> list[Row]:
    return [row_from_db(r[0], r[1], r[2], r[3], r[4], r[5], stats) for r in conn.execute(sql, tuple(args))]


def load_series_window(
    conn: sqlite3.Connection, pk: int, phase: int, start: int, end: int
) -> tuple[SeriesState, list[Row]]:
    """Return the series state just before ``start`` and the rows that matter for [start, end).

    The rows are those inside the window followed by the first rows at or after ``end`` (any,
    with an import register, with an export register), which only contribute their intervals.
    """
    select = "SELECT ts, p, v, i, ei, ee FROM readings WHERE meter = ? AND phase = ?"
    before = conn.execute(
        "SELECT max(ts) FROM readings WHERE meter = ? AND phase = ? AND ts < ?", (pk, phase, start)
    ).fetchone()[0]
    state = SeriesState(
        before,
        _last_register(conn, pk, phase, "ei", start),
        _last_register(conn, pk, phase, "ee", start),
    )
    inside = _rows(conn, f"{select} AND ts >= ? AND ts < ? ORDER BY ts", (pk, phase, start, end), True)
    after: dict[int, Row] = {}
    for condition in ("1", "ei IS NOT NULL", "ee IS NOT NULL"):
        for row in _rows(
            conn,
            f"{select} AND ts >= ? AND {condition} ORDER BY ts LIMIT 1",
            (pk, phase, end),
            False,
        ):
            after[row.ts_ms] = row
    return state, [*inside, *(after[ts] for ts in sorted(after))]


def rebuild_series(
    conn: sqlite3.Connection,
    pk: int,
    phase: int,
    lo_ms: int,
    hi_ms: int,
    gap_ms: int,
    coarse: bool = True,
) -> None:
    """Recompute the rollups overlapping [lo_ms, hi_ms] (and gaps, for phase 0) from raw rows.

    ``coarse=False`` leaves out the 6-hour and day tables (for migrations older than them).
    """
    start = lo_ms - lo_ms % _HOUR_MS
    end = hi_ms - hi_ms % _HOUR_MS + _HOUR_MS
    state, rows = load_series_window(conn, pk, phase, start, end)
    builder = RollupBuilder(STORED_WIDTHS_MS)
    builder.feed(state, rows, gap_ms, False)
    aggs, _ = builder.take()
    for width, table in _TABLE_OF_WIDTH.items():
        conn.execute(
            f"DELETE FROM {table} WHERE meter = ? AND phase = ? AND bucket >= ? AND bucket < ?",
            (pk, phase, start, end),
        )
        conn.executemany(
            _MERGE_SQL[width],
            [
                encode_agg(pk, phase, agg)
                for (w, bucket), agg in aggs.items()
                if w == width and start <= bucket < end
            ],
        )
    if coarse:
        tz = conn.execute("SELECT tz FROM meters WHERE pk = ?", (pk,)).fetchone()[0]
        refresh_coarse(conn, pk, phase, start, end, tz)
    if phase == PHASE_TOTAL:
        _rebuild_gaps(conn, pk, lo_ms, hi_ms, gap_ms)


def _rebuild_gaps(conn: sqlite3.Connection, pk: int, lo_ms: int, hi_ms: int, gap_ms: int) -> None:
    conn.execute("DELETE FROM gaps WHERE meter = ? AND start_ms >= ? AND start_ms < ?", (pk, lo_ms, hi_ms))
    times = [
        r[0]
        for r in conn.execute(
            "SELECT ts FROM readings WHERE meter = ? AND phase = 0 AND ts >= ? AND ts <= ? ORDER BY ts",
            (pk, lo_ms, hi_ms),
        )
    ]
    conn.executemany(
        "INSERT OR IGNORE INTO gaps (meter, start_ms, end_ms) VALUES (?, ?, ?)",
        [(pk, a, b) for a, b in itertools.pairwise(times) if b - a > gap_ms],
    )


def rebuild_all(conn: sqlite3.Connection, coarse: bool = True) -> None:
    """Recompute every rollup, gap and register state from the raw rows."""
    meters = conn.execute("SELECT pk, interval_s FROM meters").fetchall()
    for pk, interval_s in meters:
        for phase, lo, hi in conn.execute(
            "SELECT phase, min(ts), max(ts) FROM readings WHERE meter = ? GROUP BY phase", (pk,)
        ).fetchall():
            rebuild_series(conn, pk, phase, lo, hi, 2 * interval_s * 1000, coarse)
            _reload_state(conn, pk, phase)
