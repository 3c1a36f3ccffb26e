"""The read side of the SQLite backend: every method here is read-only."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from meterhub.errors import InputError, StoreError, UnknownMeterError
from meterhub.model import Extra, Gap, IntervalEnergy, Meter, Reading
from meterhub.store.base import Bucket, PowerColumns, SumField
from meterhub.store.coarse import COARSE_TABLES
from meterhub.store.columns import checked_bounds
from meterhub.store.rollup import Agg, RollupBuilder
from meterhub.store.sqlite_codec import DECODED_VALUES_SQL
from meterhub.store.sqlite_periods import FIGURE_FIELDS, period_figures, period_power, period_sums, table_for
from meterhub.store.sqlite_schema import EXTRA_BUCKET_MS
from meterhub.store.sqlite_writer import load_series_window
from meterhub.timeutil import from_ms, to_ms

__all__ = ["SQLiteReads", "bucket_from_agg", "extra_bucket_span"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_ROLLUP_WIDTHS_S = (900, 3600)
_FETCH_ROWS = 2000


def _avg(total: float | None, count: int | None, scale: float) -> float | None:
    return None if not count or total is None else total / count / scale


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value / scale


def extra_bucket_span(start: datetime, end: datetime, width_s: int) -> tuple[int, int, int]:
    """Return (width ms, first bucket's start ms, last bucket's end ms) of the buckets over [start, end)."""
    if width_s < 1:
        raise InputError(f"a bucket must last at least 1 s, not {width_s}")
    if end <= start:
        raise InputError(f"end {end.isoformat()} must be after start {start.isoformat()}")
    width_ms = width_s * 1000
    start_ms, end_ms = to_ms(start), to_ms(end)
    return width_ms, start_ms - start_ms % width_ms, end_ms + (-end_ms) % width_ms


def bucket_from_agg(meter_id: str, phase: int, agg: Agg, width_ms: int) -> Bucket:
    """Return the public bucket of an accumulator in canonical units."""
    return Bucket(
        meter_id,
        phase,
        from_ms(agg.bucket_ms),
        from_ms(agg.bucket_ms + width_ms),
        agg.n,
        agg.p_sum / agg.p_n if agg.p_n else None,
        agg.p_min,
        agg.p_max,
        agg.v_sum / agg.v_n if agg.v_n else None,
        agg.v_min,
        agg.v_max,
        agg.i_sum / agg.i_n if agg.i_n else None,
        None if agg.first_ms is None else from_ms(agg.first_ms),
        agg.first_imp,
        agg.first_exp,
        None if agg.last_ms is None else from_ms(agg.last_ms),
        agg.last_imp,
        agg.last_exp,
        agg.e_imp,
        agg.e_exp,
        agg.covered_ms / 1000,
    )


def _bucket_from_row(
    meter_id: str, phase: int, start_ms: int, end_ms: int, row: Sequence[int | None]
) -> Bucket:
    (
        n,
        p_n,
        p_sum,
        p_min,
        p_max,
        v_n,
        v_sum,
        v_min,
        v_max,
        i_n,
        i_sum,
        first_ms,
        first_ei,
        first_ee,
        last_ms,
        last_ei,
        last_ee,
        e_imp,
        e_exp,
        covered_ms,
    ) = row
    return Bucket(
        meter_id,
        phase,
        from_ms(start_ms),
        from_ms(end_ms),
        n or 0,
        _avg(p_sum, p_n, 1e3),
        _scaled(p_min, 1e3),
        _scaled(p_max, 1e3),
        _avg(v_sum, v_n, 1e3),
        _scaled(v_min, 1e3),
        _scaled(v_max, 1e3),
        _avg(i_sum, i_n, 1e3),
        None if first_ms is None else from_ms(first_ms),
        _scaled(first_ei, 1e6),
        _scaled(first_ee, 1e6),
        None if last_ms is None else from_ms(last_ms),
        _scaled(last_ei, 1e6),
        _scaled(last_ee, 1e6),
        (e_imp or 0) / 1e9,
        (e_exp or 0) / 1e9,
        (covered_ms or 0) / 1000,
    )


_AGGREGATE_COLUMNS = (
    "sum(r.n), sum(coalesce(r.p_n, r.n)), sum(r.p_sum), min(r.p_min), max(r.p_max), "
    "sum(coalesce(r.v_n, r.n)), sum(r.v_sum), min(r.v_min), max(r.v_max), "
    "sum(coalesce(r.i_n, r.n)), sum(r.i_sum), {edges}, sum(r.e_imp), sum(r.e_exp), sum(r.covered_ms)"
)


def _seek(column: str, lo: str, hi: str, descending: bool) -> str:
    order = " DESC" if descending else ""
    return (
        f"(SELECT x.{column} FROM readings x WHERE x.meter = :pk AND x.ts >= {lo} AND x.ts < {hi} "
        f"AND x.phase = :phase ORDER BY x.ts{order} LIMIT 1)"
    )


def _edges(lo: str, hi: str) -> str:
    """Return the first and last readings' (ts, import, export) of [lo, hi) (rollup rows ``r``).

    The rollups keep no first or last reading; the readings table is keyed (meter, ts, phase),
    so each one is the first or last row of a short range, found without a scan.
    """
    return ", ".join(
        f"CASE WHEN sum(r.n) > 0 THEN {_seek(column, lo, hi, descending)} END"  # no reading, no seek
        for descending in (False, True)
        for column in ("ts", "ei", "ee")
    )


def _aggregate_sql(table: str) -> str:
    columns = _AGGREGATE_COLUMNS.format(edges=_edges("b.lo", "b.hi"))
    return (
        "WITH b AS (SELECT CAST(key AS INTEGER) AS k, value AS lo, "
        "lead(value) OVER (ORDER BY CAST(key AS INTEGER)) AS hi FROM json_each(:bounds)) "
        f"SELECT b.lo, b.hi, {columns} FROM b LEFT JOIN {table} r "
        "ON r.meter = :pk AND r.phase = :phase AND r.bucket >= b.lo AND r.bucket < b.hi "
        "WHERE b.hi IS NOT NULL GROUP BY b.k ORDER BY b.k"
    )


_TABLES = ("rollup_15m", *COARSE_TABLES)
_AGGREGATE_SQL = {table: _aggregate_sql(table) for table in _TABLES}


def _uniform_sql(table: str) -> str:
    lo, hi = ":lo + g.k * :step", ":lo + (g.k + 1) * :step"
    return (
        "SELECT g.k, g.n, g.p_n, g.p_sum, g.p_min, g.p_max, g.v_n, g.v_sum, g.v_min, g.v_max, g.i_n, "
        f"g.i_sum, CASE WHEN g.n > 0 THEN {_seek('ts', lo, hi, False)} END, NULL, NULL, "
        f"CASE WHEN g.n > 0 THEN {_seek('ts', lo, hi, True)} END, NULL, NULL, g.e_imp, g.e_exp, g.covered_ms "
        "FROM (SELECT (r.bucket - :lo) / :step AS k, sum(r.n) AS n, sum(coalesce(r.p_n, r.n)) AS p_n, "
        "sum(r.p_sum) AS p_sum, min(r.p_min) AS p_min, max(r.p_max) AS p_max, "
        "sum(coalesce(r.v_n, r.n)) AS v_n, sum(r.v_sum) AS v_sum, min(r.v_min) AS v_min, "
        "max(r.v_max) AS v_max, sum(coalesce(r.i_n, r.n)) AS i_n, sum(r.i_sum) AS i_sum, "
        "sum(r.e_imp) AS e_imp, sum(r.e_exp) AS e_exp, sum(r.covered_ms) AS covered_ms "
        f"FROM {table} r WHERE r.meter = :pk AND r.phase = :phase AND r.bucket >= :lo AND r.bucket < :hi "
        "GROUP BY 1) g"
    )


_UNIFORM_SQL = {table: _uniform_sql(table) for table in _TABLES}
"""Equal periods merged in one GROUP BY; first and last reading times by two seeks per period."""
_ROLLUPS_SQL = (
    "SELECT r.b, "
    + _AGGREGATE_COLUMNS.format(edges=_edges("r.b", "r.b + :width"))
    + " FROM (SELECT bucket - bucket % :width AS b, * FROM rollup_15m WHERE meter = :pk AND phase = :phase "
    "AND bucket >= :lo AND bucket < :hi) r GROUP BY r.b ORDER BY r.b"
)
"""Stored 15-minute rows merged into buckets of ``:width`` ms (itself, or an hour)."""


class SQLiteReads:
    """Read-only queries; each thread reads through its own connection."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._local = threading.local()
        self._all_reads: list[sqlite3.Connection] = []
        self._reads_lock = threading.Lock()

    def _read(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            with self._reads_lock:
                self._all_reads.append(conn)
        return conn

    def _close_reads(self) -> None:
        with self._reads_lock:
            for conn in self._all_reads:
                conn.close()
            self._all_reads.clear()
        self._local = threading.local()

    def _meter_pk(self, meter_id: str) -> tuple[int, int]:
        row = self._read().execute("SELECT pk, interval_s FROM meters WHERE id = ?", (meter_id,)).fetchone()
        if row is None:
            raise UnknownMeterError(meter_id)
        return row[0], row[1]

    # --- meters -------------------------------------------------------------------------
    def get_meter(self, meter_id: str) -> Meter:
        """Return one meter or raise UnknownMeterError (read-only)."""
        row = (
            self._read()
            .execute(
                "SELECT id, vendor, phases, tz, interval_s, name, options FROM meters WHERE id = ?",
                (meter_id,),
            )
            .fetchone()
        )
        if row is None:
            raise UnknownMeterError(meter_id)
        return _meter(row)

    def list_meters(self) -> list[Meter]:
        """Return all meters ordered by id (read-only)."""
        rows = self._read().execute(
            "SELECT id, vendor, phases, tz, interval_s, name, options FROM meters ORDER BY id"
        )
        return [_meter(row) for row in rows]

    def meter_ids(self) -> list[str]:
        """Return every meter's id, unordered: what ingest checks readings against (read-only)."""
        return [row[0] for row in self._read().execute("SELECT id FROM meters")]

    # --- readings -----------------------------------------------------------------------
    def iter_readings(
        self,
        meter_ids: Sequence[str] | None,
        start: datetime,
        end: datetime,
        phase: int | None = None,
    ) -> Iterator[Reading]:
        """Stream raw readings in [start, end) ordered by meter, ts, phase (read-only)."""
        ids = sorted(meter_ids) if meter_ids is not None else [m.id for m in self.list_meters()]
        targets = [(meter_id, self._meter_pk(meter_id)[0]) for meter_id in ids]
        return self._stream(targets, to_ms(start), to_ms(end), phase)

    def _stream(
        self, targets: list[tuple[str, int]], start_ms: int, end_ms: int, phase: int | None
    ) -> Iterator[Reading]:
        conn = self._connect()
        try:
            phase_filter = "" if phase is None else " AND phase = ?"
            for meter_id, pk in targets:
                args: tuple[int, ...] = (
                    (pk, start_ms, end_ms) if phase is None else (pk, start_ms, end_ms, phase)
                )
                cursor = conn.execute(
                    f"SELECT phase, ts, {DECODED_VALUES_SQL} FROM readings "
                    f"WHERE meter = ? AND ts >= ? AND ts < ?{phase_filter} ORDER BY ts, phase",
                    args,
                )
                while rows := cursor.fetchmany(_FETCH_ROWS):
                    for phase_, ts, *values in rows:
                        yield Reading(meter_id, from_ms(ts), phase_, *values)
        finally:
            conn.close()

    def count_readings(self, meter_id: str | None = None) -> int:
        """Return the number of raw rows, of one meter or of all (read-only)."""
        if meter_id is None:
            return int(self._read().execute("SELECT count(*) FROM readings").fetchone()[0])
        pk, _ = self._meter_pk(meter_id)
        return int(self._read().execute("SELECT count(*) FROM readings WHERE meter = ?", (pk,)).fetchone()[0])

    def latest(self, meter_ids: Sequence[str] | None = None, phase: int | None = 0) -> list[Reading]:
        """Return the newest reading per meter and phase (read-only)."""
        sql = (
            f"SELECT m.id, l.phase, l.ts, {DECODED_VALUES_SQL} FROM latest l JOIN meters m ON m.pk = l.meter"
        )
        args: list[int | str] = []
        conditions = []
        if phase is not None:
            conditions.append("l.phase = ?")
            args.append(phase)
        if meter_ids is not None:
            conditions.append(f"m.id IN ({', '.join('?' * len(meter_ids))})")
            args.extend(meter_ids)
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        rows = self._read().execute(sql + " ORDER BY m.id, l.phase", args).fetchall()
        return [Reading(meter_id, from_ms(ts), phase, *values) for meter_id, phase, ts, *values in rows]

    # --- rollups ------------------------------------------------------------------------
    def rollups(
        self, meter_id: str, phase: int, start: datetime, end: datetime, width_s: int
    ) -> list[Bucket]:
        """Return stored rollup buckets of width 900 or 3600 s overlapping [start, end)."""
        if width_s not in _ROLLUP_WIDTHS_S:
            raise InputError(f"rollups are kept for 900 and 3600 s buckets, not {width_s} s")
        pk, _ = self._meter_pk(meter_id)
        width_ms = width_s * 1000
        lo, end_ms = to_ms(start), to_ms(end)
        # Buckets overlapping [start, end): from the one holding start to the last starting before end.
        rows = (
            self._read()
            .execute(
                _ROLLUPS_SQL,
                {"pk": pk, "phase": phase, "width": width_ms, "lo": lo - lo % width_ms,
                 "hi": end_ms + (-end_ms) % width_ms},
            )
            .fetchall()
        )
        return [
            _bucket_from_row(meter_id, phase, r[0], r[0] + width_ms, r[1:]) for r in rows if r[0] < end_ms
        ]

    def aggregate(
        self, meter_id: str, phase: int, boundaries: Sequence[datetime], with_registers: bool = True
    ) -> list[Bucket]:
        """Merge rollups into the periods between consecutive boundaries (read-only)."""
        checked = checked_bounds([to_ms(b) for b in boundaries])
        pk, tz = self._meter_zone(meter_id)
        if len(checked) < 2:
            return []
        table, _ = table_for(tz, checked)
        bounds: list[int] = checked.tolist()
        steps = {b2 - b1 for b1, b2 in pairwise(bounds)}
        if not with_registers and len(steps) == 1:
            return self._aggregate_uniform(meter_id, phase, pk, bounds, steps.pop(), table)
        rows = (
            self._read()
            .execute(_AGGREGATE_SQL[table], {"bounds": json.dumps(bounds), "pk": pk, "phase": phase})
            .fetchall()
        )
        return [_bucket_from_row(meter_id, phase, r[0], r[1], r[2:]) for r in rows]

    def period_sums(
        self,
        meter_id: str,
        phase: int,
        boundaries_ms: npt.NDArray[np.int64],
        fields: Sequence[SumField],
    ) -> dict[SumField, npt.NDArray[np.float64]]:
        """Return the asked sums per period between consecutive boundaries (read-only)."""
        bounds = checked_bounds(boundaries_ms)
        pk, tz = self._meter_zone(meter_id)
        return period_sums(self._read(), pk, phase, tz, bounds, fields)

    def period_power(
        self, meter_id: str, phase: int, boundaries_ms: npt.NDArray[np.int64]
    ) -> PowerColumns:
        """Return count and average, minimum and maximum power per period (read-only)."""
        bounds = checked_bounds(boundaries_ms)
        pk, tz = self._meter_zone(meter_id)
        return period_power(self._read(), pk, phase, tz, bounds)

    def period_figures(
        self,
        meter_id: str,
        phase: int,
        boundaries_ms: npt.NDArray[np.int64],
        fields: Sequence[str] = FIGURE_FIELDS,
    ) -> dict[str, npt.NDArray[np.float64]]:
        """Return per-bucket figures of ``aggregate`` (not the registers) per period, as arrays.

        ``fields`` are names of ``sqlite_periods.FIGURE_FIELDS``; NaN stands for None; the count
        is a float array of whole numbers. One scan of the coarsest rollup table that tiles the
        periods.
        """
        bounds = checked_bounds(boundaries_ms)
        pk, tz = self._meter_zone(meter_id)
        return period_figures(self._read(), pk, phase, tz, bounds, fields)

    def _meter_zone(self, meter_id: str) -> tuple[int, str]:
        row = self._read().execute("SELECT pk, tz FROM meters WHERE id = ?", (meter_id,)).fetchone()
        if row is None:
            raise UnknownMeterError(meter_id)
        return row[0], row[1]

    def _aggregate_uniform(
        self, meter_id: str, phase: int, pk: int, bounds: list[int], step_ms: int, table: str
    ) -> list[Bucket]:
        """Equal periods: one GROUP BY over the rollups, without the register look-ups."""
        found = {
            row[0]: row[1:]
            for row in self._read().execute(
                _UNIFORM_SQL[table],
                {"pk": pk, "phase": phase, "lo": bounds[0], "hi": bounds[-1], "step": step_ms},
            )
        }
        empty = (0, 0, 0, None, None, 0, 0, None, None, 0, 0, None, None, None, None, None, None, 0, 0, 0)
        return [
            _bucket_from_row(meter_id, phase, lo, lo + step_ms, found.get(k, empty))
            for k, lo in enumerate(bounds[:-1])
        ]

    def downsample_raw(
        self, meter_id: str, phase: int, start: datetime, end: datetime, width_s: int
    ) -> list[Bucket]:
        """Aggregate raw rows into UTC-aligned buckets of ``width_s`` (read-only)."""
        if width_s <= 0:
            raise InputError("bucket width must be positive")
        pk, interval_s = self._meter_pk(meter_id)
        width_ms = width_s * 1000
        start_ms = to_ms(start) - to_ms(start) % width_ms
        end_ms = to_ms(end)
        state, rows = load_series_window(self._read(), pk, phase, start_ms, end_ms)
        builder = RollupBuilder(widths_ms=(width_ms,))
        builder.feed(state, rows, 2 * interval_s * 1000, False)
        aggs, _ = builder.take()
        return [
            bucket_from_agg(meter_id, phase, agg, width_ms)
            for (_, bucket), agg in sorted(aggs.items())
            if start_ms <= bucket < end_ms
        ]

    # --- events, intervals, extras ------------------------------------------------------
    def gaps(self, meter_id: str, start: datetime, end: datetime) -> list[Gap]:
        """Return gap events that overlap [start, end), oldest first (read-only)."""
        # One query, as in ``intervals``: no row at all is an unknown meter, one of NULLs no gap.
        rows = self._read().execute(
            "SELECT g.start_ms, g.end_ms FROM meters m LEFT JOIN gaps g "
            "ON g.meter = m.pk AND g.start_ms < ? AND g.end_ms > ? WHERE m.id = ? ORDER BY g.start_ms",
            (to_ms(end), to_ms(start), meter_id),
        ).fetchall()
        if not rows:
            raise UnknownMeterError(meter_id)
        if rows[0][0] is None:
            return []
        return [Gap(meter_id, _EPOCH + a * _MS, _EPOCH + b * _MS) for a, b in rows]

    def intervals(
        self, meter_id: str, start: datetime, end: datetime, source: str | None = None
    ) -> list[IntervalEnergy]:
        """Return interval-energy records that start in [start, end) (read-only)."""
        # One query: the meter's row joined to its records, so an unknown meter still shows
        # (no row at all) while a known one without records gives one row of NULLs.
        sql = (
            "SELECT i.start_ms, i.end_ms, i.import_kwh, i.export_kwh, i.source FROM meters m "
            "LEFT JOIN intervals i ON i.meter = m.pk AND i.start_ms >= ? AND i.start_ms < ?"
        )
        args: list[int | str] = [to_ms(start), to_ms(end)]
        if source is not None:
            sql += " AND i.source = ?"
            args.append(source)
        args.append(meter_id)
        rows = self._read().execute(sql + " WHERE m.id = ? ORDER BY i.start_ms, i.source", args).fetchall()
        if not rows:
            raise UnknownMeterError(meter_id)
        if rows[0][0] is None:
            return []
        return [IntervalEnergy(meter_id, from_ms(a), from_ms(b), i, e, s) for a, b, i, e, s in rows]

    def extras(self, meter_id: str, name: str, start: datetime, end: datetime) -> list[Extra]:
        """Return one extra's values in [start, end) (read-only)."""
        pk, _ = self._meter_pk(meter_id)
        rows = self._read().execute(
            "SELECT ts, value FROM extras WHERE meter = ? AND name = ? AND ts >= ? AND ts < ? ORDER BY ts",
            (pk, name, to_ms(start), to_ms(end)),
        )
        return [Extra(meter_id, from_ms(ts), name, value) for ts, value in rows]

    def extra_series(self, meter_id: str) -> list[tuple[str, int, datetime, datetime, float]]:
        """Return (name, count, first ts, last ts, last value) per extra of a meter, by name (read-only)."""
        pk, _ = self._meter_pk(meter_id)
        conn = self._read()
        counts = conn.execute(
            "SELECT name, sum(n) FROM extras_15m WHERE meter = ? GROUP BY name ORDER BY name", (pk,)
        ).fetchall()
        series: list[tuple[str, int, datetime, datetime, float]] = []
        for name, count in counts:
            # Each is one seek along the primary key (meter, name, ts).
            first = conn.execute(
                "SELECT ts FROM extras WHERE meter = ? AND name = ? ORDER BY ts LIMIT 1", (pk, name)
            ).fetchone()
            last = conn.execute(
                "SELECT ts, value FROM extras WHERE meter = ? AND name = ? ORDER BY ts DESC LIMIT 1",
                (pk, name),
            ).fetchone()
            if first is not None and last is not None:
                series.append((name, int(count), from_ms(first[0]), from_ms(last[0]), float(last[1])))
        return series

    def extra_points(
        self, meter_id: str, name: str, start: datetime, end: datetime, limit: int
    ) -> list[Extra]:
        """Return at most ``limit`` of one extra's values in [start, end), oldest first (read-only)."""
        pk, _ = self._meter_pk(meter_id)
        rows = self._read().execute(
            "SELECT ts, value FROM extras WHERE meter = ? AND name = ? AND ts >= ? AND ts < ? "
            "ORDER BY ts LIMIT ?",
            (pk, name, to_ms(start), to_ms(end), max(limit, 0)),
        )
        return [Extra(meter_id, from_ms(ts), name, value) for ts, value in rows]

    def extra_buckets(
        self, meter_id: str, name: str, start: datetime, end: datetime, width_s: int
    ) -> list[tuple[datetime, int, float, float, float]]:
        """Return (bucket start, count, min, mean, max) of one extra per UTC-aligned bucket (read-only).

        Buckets of ``width_s`` that overlap [start, end) and hold values are returned whole,
        oldest first; widths that are multiples of 15 minutes are read from the 15-minute rollup.
        """
        pk, _ = self._meter_pk(meter_id)
        width_ms, lo, hi = extra_bucket_span(start, end, width_s)
        if width_ms % EXTRA_BUCKET_MS == 0:
            column, sql = "bucket", (
                "sum(n), min(low), sum(total), max(high) FROM extras_15m "
                "WHERE meter = ? AND name = ? AND bucket >= ? AND bucket < ?"
            )
        else:
            column, sql = "ts", (
                "count(*), min(value), sum(value), max(value) FROM extras "
                "WHERE meter = ? AND name = ? AND ts >= ? AND ts < ?"
            )
        rows = self._read().execute(
            f"SELECT {column} - (({column} % ?) + ?) % ? AS b, {sql} GROUP BY b ORDER BY b",
            (width_ms, width_ms, width_ms, pk, name, lo, hi),
        )
        return [
            (from_ms(b), int(n), float(low), float(total) / n, float(high))
            for b, n, low, total, high in rows
        ]

    # --- key-value ----------------------------------------------------------------------
    def token_get(self, scope: str, key: str) -> tuple[str, datetime | None] | None:
        """Return a stored token and its expiry, or None (read-only)."""
        row = (
            self._read()
            .execute("SELECT value, expires_ms FROM tokens WHERE scope = ? AND key = ?", (scope, key))
            .fetchone()
        )
        if row is None:
            return None
        return row[0], None if row[1] is None else from_ms(row[1])

    def quota_used(self, key: str, window_s: int, now: datetime) -> int:
        """Return the calls recorded under ``key`` within the window ending ``now`` (read-only)."""
        return int(
            self._read()
            .execute(
                "SELECT count(*) FROM quota_ledger WHERE key = ? AND ts_ms > ?",
                (key, to_ms(now) - window_s * 1000),
            )
            .fetchone()[0]
        )

    def quota_next_free(self, key: str, limit: int, window_s: int, now: datetime) -> datetime:
        """Return the earliest time a call under ``key`` fits the limit (read-only)."""
        times = [
            r[0]
            for r in self._read().execute(
                "SELECT ts_ms FROM quota_ledger WHERE key = ? AND ts_ms > ? ORDER BY ts_ms",
                (key, to_ms(now) - window_s * 1000),
            )
        ]
        if len(times) < limit:
            return now
        return from_ms(times[len(times) - limit]) + timedelta(seconds=window_s)


def _meter(row: tuple[str, str, int, str, int, str, str]) -> Meter:
    try:
        options = json.loads(row[6])
    except ValueError as exc:
        raise StoreError(f"meter {row[0]!r} has unreadable options") from exc
    return Meter(row[0], row[1], row[2], row[3], row[4], row[5], options)
