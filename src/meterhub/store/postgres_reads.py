"""The read side of the PostgreSQL backend: every method here is read-only.

Reads borrow autocommit connections from a pool, so any number of threads can read while one
writes. ``iter_readings`` holds its pooled connection (and a server-side cursor) until the
iterator is exhausted or closed.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg_pool import ConnectionPool

from meterhub.errors import InputError, StoreError, UnknownMeterError
from meterhub.model import READING_FIELDS, Extra, Gap, IntervalEnergy, Meter, Reading
from meterhub.redact import redact_text
from meterhub.store.base import Bucket, PowerColumns, SumField
from meterhub.store.columns import checked_bounds
from meterhub.store.postgres_compact import (
    PHASES,
    decoded,
    decoded_rollup,
    rollup_rows,
    series_of,
    series_range,
)
from meterhub.store.postgres_rollups import load_series_window
from meterhub.store.postgres_schema import Conn
from meterhub.store.rollup import RollupBuilder
from meterhub.store.sqlite_periods import FIGURE_FIELDS, table_for
from meterhub.store.sqlite_reads import bucket_from_agg, extra_bucket_span
from meterhub.store.sqlite_schema import EXTRA_BUCKET_MS
from meterhub.timeutil import from_ms, to_ms

__all__ = ["PostgresReads", "one_line"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

_ROLLUP_TABLE = {900: "rollup_15m", 3600: "rollup_1h"}
_FETCH_ROWS = 2000
_BUCKET_COLUMNS = (
    "n, power_n, power_sum_w, power_min_w, power_max_w, voltage_n, voltage_sum_v, voltage_min_v, "
    "voltage_max_v, current_n, current_sum_a, first_ts, first_import_kwh, first_export_kwh, "
    "last_ts, last_import_kwh, last_export_kwh, energy_import_kwh, energy_export_kwh, covered_ms"
)


def one_line(exc: BaseException) -> str:
    """Return an exception's message folded onto one line, with any connection secret hidden."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return redact_text(text) or type(exc).__name__


_FOLD_COLUMNS = tuple(name.strip() for name in _BUCKET_COLUMNS.split(","))
_FOLD_SUMS = frozenset({"n", "power_n", "power_sum_w", "voltage_n", "voltage_sum_v", "current_n",
                        "current_sum_a", "energy_import_kwh", "energy_export_kwh", "covered_ms"})
_FOLD_EDGES = {"first_ts": ("first_ts", "first_import_kwh", "first_export_kwh"),
               "last_ts": ("last_ts", "last_import_kwh", "last_export_kwh")}


def _fold(periods: int, index: Ints, values: list[Floats]) -> dict[str, Floats]:
    """Fold rollup rows (sorted by bucket, laid out as _FOLD_COLUMNS) into the periods: sums
    add, minima and maxima keep the extreme, first and last come from the earliest and latest
    row holding them. NaN stands for NULL."""
    column = dict(zip(_FOLD_COLUMNS, values, strict=True))
    folded: dict[str, Floats] = {}
    for name, data in column.items():
        if name in _FOLD_SUMS:
            folded[name] = np.bincount(index, weights=np.nan_to_num(data), minlength=periods).astype(float)
        elif name in ("power_min_w", "voltage_min_v"):
            folded[name] = np.full(periods, np.nan)
            np.fmin.at(folded[name], index, data)
        elif name in ("power_max_w", "voltage_max_v"):
            folded[name] = np.full(periods, np.nan)
            np.fmax.at(folded[name], index, data)
    for marker, names in _FOLD_EDGES.items():
        present = np.flatnonzero(~np.isnan(column[marker]))
        if marker == "last_ts":
            present = present[::-1]
        periods_of, first = np.unique(index[present], return_index=True)
        picked = present[first]
        for name in names:
            out = np.full(periods, np.nan)
            out[periods_of] = column[name][picked]
            folded[name] = out
    return folded


def _optional(values: Floats) -> list[float | None]:
    """Return the values as floats, None where NaN."""
    boxed = values.astype(object)
    boxed[np.isnan(values)] = None
    listed: list[float | None] = boxed.tolist()
    return listed


def _buckets_of(
    meter_id: str, phase: int, edges: list[int], folded: dict[str, Floats], with_registers: bool
) -> list[Bucket]:
    """Return the folded periods as buckets, built column by column."""
    periods = len(edges) - 1
    nothing: list[float | None] = [None] * periods

    def mean(total: str, count: str) -> list[float | None]:
        with np.errstate(invalid="ignore", divide="ignore"):
            return _optional(np.where(folded[count] > 0, folded[total] / folded[count], np.nan))

    def times(name: str) -> list[datetime | None]:
        return [None if math.isnan(v) else from_ms(int(v)) for v in folded[name].tolist()]

    def register(name: str) -> list[float | None]:
        return _optional(folded[name]) if with_registers else nothing

    starts = [from_ms(edge) for edge in edges]
    columns = zip(
        starts[:-1], starts[1:], folded["n"].astype(np.int64).tolist(),
        mean("power_sum_w", "power_n"), _optional(folded["power_min_w"]), _optional(folded["power_max_w"]),
        mean("voltage_sum_v", "voltage_n"), _optional(folded["voltage_min_v"]),
        _optional(folded["voltage_max_v"]), mean("current_sum_a", "current_n"),
        times("first_ts"), register("first_import_kwh"), register("first_export_kwh"),
        times("last_ts"), register("last_import_kwh"), register("last_export_kwh"),
        folded["energy_import_kwh"].tolist(), folded["energy_export_kwh"].tolist(),
        (folded["covered_ms"] / 1000).tolist(), strict=True,
    )  # fmt: skip
    return [Bucket(meter_id, phase, *column) for column in columns]


_FIGURE_NEEDS: dict[str, tuple[str, ...]] = {
    "count": ("n",),
    "power_avg_w": ("power_sum_w", "power_n"),
    "power_min_w": ("power_min_w",),
    "power_max_w": ("power_max_w",),
    "voltage_avg_v": ("voltage_sum_v", "voltage_n"),
    "voltage_min_v": ("voltage_min_v",),
    "voltage_max_v": ("voltage_max_v",),
    "current_avg_a": ("current_sum_a", "current_n"),
    "energy_import_kwh": ("energy_import_kwh",),
    "energy_export_kwh": ("energy_export_kwh",),
    "covered_s": ("covered_ms",),
}
"""The rollup columns each figure of ``period_figures`` reads."""

_SUM_COLUMNS: dict[SumField, tuple[str, float]] = {
    "energy_import_kwh": ("energy_import_kwh", 1.0),
    "energy_export_kwh": ("energy_export_kwh", 1.0),
    "covered_s": ("covered_ms", 1e3),
    "count": ("n", 1.0),
}
"""Each sum's rollup column and the divisor that turns it into the field's unit."""
_POWER_COLUMNS = ("n", "power_n", "power_sum_w", "power_min_w", "power_max_w")


def _period_rows(
    conn: Conn, meter_id: str, tz: str, phase: int, bounds: Ints, names: Sequence[str]
) -> tuple[Ints, list[Floats]] | None:
    """Return the rows of the coarsest rollup table tiling the periods for a meter of zone ``tz``:
    each row's period index and the asked columns (NULL as NaN). None when no meter ``meter_id``
    has that zone (any more), so the caller looks it up again."""
    table, _ = table_for(tz, bounds)
    picked = ", ".join(decoded_rollup(column, "r.") for column in ("bucket", *names))
    source = rollup_rows(table, f"m.pk * {PHASES} + %(phase)s", "%(lo)s", "%(hi)s")
    with conn.cursor(binary=True) as cursor:  # binary doubles decode several times faster than text
        rows = cursor.execute(
            f"SELECT {picked} FROM meters m LEFT JOIN LATERAL {source} r ON true "
            "WHERE m.id = %(id)s AND m.tz = %(tz)s ORDER BY r.bucket",
            {"phase": phase, "lo": int(bounds[0]), "hi": int(bounds[-1]), "id": meter_id, "tz": tz},
        ).fetchall()
    if not rows:
        return None
    if rows[0][0] is None:  # the meter, and no rollup row in the range
        rows = []
    values = np.array(rows, dtype=np.float64).reshape(len(rows), len(names) + 1).T
    index = np.searchsorted(bounds, values[0].astype(np.int64), "right") - 1
    return index, list(values[1:])


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def _avg(total: Any, count: Any) -> float | None:
    return None if not count or total is None else float(total) / int(count)


def _bucket(meter_id: str, phase: int, start_ms: int, end_ms: int, row: Sequence[Any]) -> Bucket:
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
        first_imp,
        first_exp,
        last_ms,
        last_imp,
        last_exp,
        e_imp,
        e_exp,
        covered_ms,
    ) = row
    return Bucket(
        meter_id,
        phase,
        from_ms(start_ms),
        from_ms(end_ms),
        int(n or 0),
        _avg(p_sum, p_n),
        _opt(p_min),
        _opt(p_max),
        _avg(v_sum, v_n),
        _opt(v_min),
        _opt(v_max),
        _avg(i_sum, i_n),
        None if first_ms is None else from_ms(int(first_ms)),
        _opt(first_imp),
        _opt(first_exp),
        None if last_ms is None else from_ms(int(last_ms)),
        _opt(last_imp),
        _opt(last_exp),
        float(e_imp or 0.0),
        float(e_exp or 0.0),
        int(covered_ms or 0) / 1000,
    )


def _reading(meter_id: str, row: Sequence[Any]) -> Reading:
    """Return the reading of a row laid out (phase, ts, *READING_FIELDS)."""
    return Reading(meter_id, from_ms(int(row[1])), int(row[0]), *(_opt(v) for v in row[2:]))


def _meter(row: Sequence[Any]) -> Meter:
    options = row[6]
    if not isinstance(options, dict):
        raise StoreError(f"meter {row[0]!r} has unreadable options")
    return Meter(
        row[0], row[1], int(row[2]), row[3], int(row[4]), row[5], {str(k): str(v) for k, v in options.items()}
    )


_METER_SELECT = "SELECT id, vendor, phases, tz, interval_s, name, options FROM meters"
_READING_SELECT = (
    f"SELECT mod(series, {PHASES}) AS phase, ts, {', '.join(decoded(f) for f in READING_FIELDS)} FROM samples"
)


_STREAM_SQL = f"{_READING_SELECT} WHERE series = %(series)s AND ts >= %(start)s AND ts < %(end)s ORDER BY ts"
"""One series' rows in a time range, in time order (along the key: no sort)."""


def _time_then_phase(row: tuple[Any, ...]) -> tuple[int, int]:
    return int(row[1]), int(row[0])
_BUCKET_SELECT = ", ".join(
    decoded_rollup(name.strip(), "r.") for name in ("bucket", *_BUCKET_COLUMNS.split(","))
)


class PostgresReads:
    """Read-only queries through a pool of autocommit connections."""

    def __init__(self, pool: ConnectionPool[Conn]) -> None:
        self._pool = pool
        self._zones: dict[str, str] = {}
        """The zone last read of each meter: period reads check it in their one query."""

    def _period_rows_of(
        self, meter_id: str, phase: int, bounds: Ints, names: Sequence[str]
    ) -> tuple[Ints, list[Floats]] | None:
        """Return :func:`_period_rows` of the meter in one query when its zone is known, or None
        when there is no period (fewer than two boundaries); raise UnknownMeterError."""
        with self._read() as conn:
            if len(bounds) < 2:
                self._meter_zone(conn, meter_id)
                return None
            for _ in range(3):
                tz = self._zones.get(meter_id)
                if tz is None:
                    _, tz = self._meter_zone(conn, meter_id)
                    self._zones[meter_id] = tz
                found = _period_rows(conn, meter_id, tz, phase, bounds, names)
                if found is not None:
                    return found
                self._zones.pop(meter_id, None)
        raise StoreError(f"meter {meter_id!r} changed its zone during every read; try again")

    @contextmanager
    def _read(self) -> Iterator[Conn]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise StoreError(f"database read failed: {one_line(exc)}") from exc

    @staticmethod
    def _meter_zone(conn: Conn, meter_id: str) -> tuple[int, str]:
        row = conn.execute("SELECT pk, tz FROM meters WHERE id = %s", (meter_id,)).fetchone()
        if row is None:
            raise UnknownMeterError(meter_id)
        return int(row[0]), str(row[1])

    @staticmethod
    def _meter_pk(conn: Conn, meter_id: str) -> tuple[int, int]:
        row = conn.execute("SELECT pk, interval_s FROM meters WHERE id = %s", (meter_id,)).fetchone()
        if row is None:
            raise UnknownMeterError(meter_id)
        return int(row[0]), int(row[1])

    # --- meters -------------------------------------------------------------------------
    def get_meter(self, meter_id: str) -> Meter:
        """Return one meter or raise UnknownMeterError (read-only)."""
        with self._read() as conn:
            row = conn.execute(f"{_METER_SELECT} WHERE id = %s", (meter_id,)).fetchone()
        if row is None:
            raise UnknownMeterError(meter_id)
        return _meter(row)

    def list_meters(self) -> list[Meter]:
        """Return all meters ordered by id (read-only)."""
        with self._read() as conn:
            rows = conn.execute(f'{_METER_SELECT} ORDER BY id COLLATE "C"').fetchall()
        return [_meter(row) for row in rows]

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
        with self._read() as conn:
            targets = [(meter_id, self._meter_pk(conn, meter_id)[0]) for meter_id in ids]
        return self._stream(targets, to_ms(start), to_ms(end), phase)

    def _stream(
        self, targets: list[tuple[str, int]], start_ms: int, end_ms: int, phase: int | None
    ) -> Iterator[Reading]:
        # One index range per phase, each already in time order; merged here by (ts, phase) as
        # they stream, so the server never sorts a meter's whole range first.
        phases = range(PHASES) if phase is None else [phase]
        with self._read() as conn, conn.transaction():
            for meter_id, pk in targets:
                cursors = [conn.cursor(name=f"meterhub_stream_{k}") for k in phases]
                try:
                    for k, cursor in zip(phases, cursors, strict=True):
                        cursor.itersize = _FETCH_ROWS
                        args = {"series": series_of(pk, k), "start": start_ms, "end": end_ms}
                        cursor.execute(_STREAM_SQL, args)
                    for row in heapq.merge(*cursors, key=_time_then_phase):
                        yield _reading(meter_id, row)
                finally:
                    for cursor in cursors:
                        cursor.close()

    def count_readings(self, meter_id: str | None = None) -> int:
        """Return the number of raw rows, of one meter or of all (read-only)."""
        with self._read() as conn:
            if meter_id is None:
                row = conn.execute("SELECT count(*) FROM samples").fetchone()
            else:
                pk, _ = self._meter_pk(conn, meter_id)
                row = conn.execute(
                    "SELECT count(*) FROM samples WHERE series >= %s AND series < %s", series_range(pk)
                ).fetchone()
        return 0 if row is None else int(row[0])

    def latest(self, meter_ids: Sequence[str] | None = None, phase: int | None = 0) -> list[Reading]:
        """Return the newest reading per meter and phase (read-only)."""
        conditions = []
        if phase is not None:
            conditions.append("l.phase = %(phase)s")
        if meter_ids is not None:
            conditions.append("m.id = ANY(%(ids)s)")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        query = (
            f"SELECT m.id, l.phase, l.ts, {', '.join(f'l.{c}' for c in READING_FIELDS)} "
            f"FROM latest l JOIN meters m ON m.pk = l.meter{where} "
            'ORDER BY m.id COLLATE "C", l.phase'
        )
        args = {"phase": phase, "ids": None if meter_ids is None else list(meter_ids)}
        with self._read() as conn:
            rows = conn.execute(query, args).fetchall()
        return [_reading(row[0], row[1:]) for row in rows]

    # --- rollups ------------------------------------------------------------------------
    def rollups(
        self, meter_id: str, phase: int, start: datetime, end: datetime, width_s: int
    ) -> list[Bucket]:
        """Return stored rollup buckets of width 900 or 3600 s overlapping [start, end)."""
        table = _ROLLUP_TABLE.get(width_s)
        if table is None:
            raise InputError(f"rollups are kept for 900 and 3600 s buckets, not {width_s} s")
        width_ms = width_s * 1000
        # The buckets overlapping [start, end): those starting from start's bucket until end.
        lo = to_ms(start) - to_ms(start) % width_ms
        hi = to_ms(end) - 1 - (to_ms(end) - 1) % width_ms + width_ms
        source = rollup_rows(table, "%(series)s", "%(lo)s", "%(hi)s")
        with self._read() as conn:
            pk, _ = self._meter_pk(conn, meter_id)
            rows = conn.execute(
                f"SELECT {_BUCKET_SELECT} FROM {source} r ORDER BY r.bucket",
                {"series": series_of(pk, phase), "lo": lo, "hi": hi},
            ).fetchall()
        return [_bucket(meter_id, phase, int(r[0]), int(r[0]) + width_ms, r[1:]) for r in rows]

    def aggregate(
        self, meter_id: str, phase: int, boundaries: Sequence[datetime], with_registers: bool = True
    ) -> list[Bucket]:
        """Merge rollups into the periods between consecutive boundaries (read-only)."""
        bounds = checked_bounds([to_ms(b) for b in boundaries])
        found = self._period_rows_of(meter_id, phase, bounds, _FOLD_COLUMNS)
        if found is None:
            return []
        index, values = found
        edges: list[int] = bounds.tolist()
        return _buckets_of(meter_id, phase, edges, _fold(len(edges) - 1, index, values), with_registers)

    def period_figures(
        self,
        meter_id: str,
        phase: int,
        boundaries_ms: npt.NDArray[np.int64],
        fields: Sequence[str] = FIGURE_FIELDS,
    ) -> dict[str, npt.NDArray[np.float64]]:
        """Return per-bucket figures of ``aggregate`` (not the registers) per period, as arrays,
        as SQLite's ``period_figures`` does: NaN stands for None, the count is a float array."""
        unknown = set(fields) - set(FIGURE_FIELDS)
        if unknown:
            raise StoreError(f"unknown period figures: {', '.join(sorted(unknown))}")
        bounds = checked_bounds(boundaries_ms)
        needed = tuple(dict.fromkeys(column for name in fields for column in _FIGURE_NEEDS[name]))
        found = self._period_rows_of(meter_id, phase, bounds, needed)
        if found is None:
            return {name: np.zeros(0) for name in fields}
        index, values = found
        present = dict(zip(needed, values, strict=True))
        absent = np.full(len(index), np.nan)
        folded = _fold(len(bounds) - 1, index, [present.get(column, absent) for column in _FOLD_COLUMNS])

        def mean(total: str, count: str) -> Floats:
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(folded[count] > 0, folded[total] / folded[count], np.nan)

        figure: dict[str, Callable[[], Floats]] = {
            "count": lambda: folded["n"],
            "power_avg_w": lambda: mean("power_sum_w", "power_n"),
            "power_min_w": lambda: folded["power_min_w"],
            "power_max_w": lambda: folded["power_max_w"],
            "voltage_avg_v": lambda: mean("voltage_sum_v", "voltage_n"),
            "voltage_min_v": lambda: folded["voltage_min_v"],
            "voltage_max_v": lambda: folded["voltage_max_v"],
            "current_avg_a": lambda: mean("current_sum_a", "current_n"),
            "energy_import_kwh": lambda: folded["energy_import_kwh"],
            "energy_export_kwh": lambda: folded["energy_export_kwh"],
            "covered_s": lambda: folded["covered_ms"] / 1000,
        }
        return {name: figure[name]() for name in fields}

    def period_sums(
        self,
        meter_id: str,
        phase: int,
        boundaries_ms: npt.NDArray[np.int64],
        fields: Sequence[SumField],
    ) -> dict[SumField, npt.NDArray[np.float64]]:
        """Return the asked sums per period between consecutive boundaries (read-only).

        One scan of the coarsest rollup table whose buckets tile the periods: local days read the
        day table, six-hour multiples the 6-hour table, and so on, as SQLite does.
        """
        bounds = checked_bounds(boundaries_ms)
        sources = [_SUM_COLUMNS[field] for field in fields]
        found = self._period_rows_of(meter_id, phase, bounds, [column for column, _ in sources])
        if found is None:
            return {field: np.zeros(0) for field in fields}
        index, values = found
        periods = len(bounds) - 1
        return {
            field: np.bincount(index, weights=np.nan_to_num(column), minlength=periods) / scale
            for field, (_, scale), column in zip(fields, sources, values, strict=True)
        }

    def period_power(
        self, meter_id: str, phase: int, boundaries_ms: npt.NDArray[np.int64]
    ) -> PowerColumns:
        """Return count and average, minimum and maximum power per period (read-only)."""
        bounds = checked_bounds(boundaries_ms)
        found = self._period_rows_of(meter_id, phase, bounds, _POWER_COLUMNS)
        if found is None:
            return PowerColumns(np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0), np.zeros(0))
        index, (n, p_n, p_sum, p_min, p_max) = found
        periods = len(bounds) - 1
        count = np.bincount(index, weights=np.nan_to_num(n), minlength=periods)
        powered = np.bincount(index, weights=np.nan_to_num(p_n), minlength=periods)
        total = np.bincount(index, weights=np.nan_to_num(p_sum), minlength=periods)
        low = np.full(periods, np.nan)
        high = np.full(periods, np.nan)
        np.fmin.at(low, index, p_min)
        np.fmax.at(high, index, p_max)
        with np.errstate(invalid="ignore", divide="ignore"):
            avg = np.where(powered > 0, total / powered, np.nan)
        return PowerColumns(count.astype(np.int64), avg, low, high)

    def downsample_raw(
        self, meter_id: str, phase: int, start: datetime, end: datetime, width_s: int
    ) -> list[Bucket]:
        """Aggregate raw rows into UTC-aligned buckets of ``width_s`` (read-only)."""
        if width_s <= 0:
            raise InputError("bucket width must be positive")
        width_ms = width_s * 1000
        start_ms = to_ms(start) - to_ms(start) % width_ms
        end_ms = to_ms(end)
        with self._read() as conn:
            pk, interval_s = self._meter_pk(conn, meter_id)
            state, rows = load_series_window(conn, pk, phase, start_ms, end_ms)
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
        with self._read() as conn:
            pk, _ = self._meter_pk(conn, meter_id)
            rows = conn.execute(
                "SELECT start_ms, end_ms FROM gaps WHERE meter = %s AND start_ms < %s "
                "AND end_ms > %s ORDER BY start_ms",
                (pk, to_ms(end), to_ms(start)),
            ).fetchall()
        return [Gap(meter_id, from_ms(int(a)), from_ms(int(b))) for a, b in rows]

    def intervals(
        self, meter_id: str, start: datetime, end: datetime, source: str | None = None
    ) -> list[IntervalEnergy]:
        """Return interval-energy records that start in [start, end) (read-only)."""
        source_filter = "" if source is None else " AND i.source = %(source)s"
        with self._read() as conn:
            # One query: no row at all means no such meter; one empty row, no record in range.
            rows = conn.execute(
                "SELECT i.start_ms, i.end_ms, i.import_kwh, i.export_kwh, i.source FROM meters m "
                "LEFT JOIN intervals i ON i.meter = m.pk AND i.start_ms >= %(start)s "
                f"AND i.start_ms < %(end)s{source_filter} WHERE m.id = %(id)s "
                'ORDER BY i.start_ms, i.source COLLATE "C"',
                {"id": meter_id, "start": to_ms(start), "end": to_ms(end), "source": source},
            ).fetchall()
        if not rows:
            raise UnknownMeterError(meter_id)
        return [
            IntervalEnergy(meter_id, from_ms(int(a)), from_ms(int(b)), _opt(i), _opt(e), s)
            for a, b, i, e, s in rows
            if a is not None
        ]

    def extras(self, meter_id: str, name: str, start: datetime, end: datetime) -> list[Extra]:
        """Return one extra's values in [start, end) (read-only)."""
        with self._read() as conn:
            pk, _ = self._meter_pk(conn, meter_id)
            rows = conn.execute(
                "SELECT ts, value FROM extras WHERE meter = %s AND name = %s "
                "AND ts >= %s AND ts < %s ORDER BY ts",
                (pk, name, to_ms(start), to_ms(end)),
            ).fetchall()
        return [Extra(meter_id, from_ms(int(ts)), name, float(value)) for ts, value in rows]

    def extra_series(self, meter_id: str) -> list[tuple[str, int, datetime, datetime, float]]:
        """Return (name, count, first ts, last ts, last value) per extra of a meter, by name (read-only)."""
        with self._read() as conn:
            pk, _ = self._meter_pk(conn, meter_id)
            # The counts come from the 15-minute rollup; first and last are seeks along the primary key.
            rows = conn.execute(
                "SELECT c.name, c.count, f.ts, l.ts, l.value FROM "
                "(SELECT name, sum(n) AS count FROM extras_15m WHERE meter = %(pk)s GROUP BY name) c "
                "CROSS JOIN LATERAL (SELECT ts FROM extras e WHERE e.meter = %(pk)s AND e.name = c.name "
                "ORDER BY ts LIMIT 1) f "
                "CROSS JOIN LATERAL (SELECT ts, value FROM extras e WHERE e.meter = %(pk)s "
                "AND e.name = c.name ORDER BY ts DESC LIMIT 1) l "
                'ORDER BY c.name COLLATE "C"',
                {"pk": pk},
            ).fetchall()
        return [
            (str(name), int(count), from_ms(int(first)), from_ms(int(last)), float(value))
            for name, count, first, last, value in rows
        ]

    def extra_points(
        self, meter_id: str, name: str, start: datetime, end: datetime, limit: int
    ) -> list[Extra]:
        """Return at most ``limit`` of one extra's values in [start, end), oldest first (read-only)."""
        with self._read() as conn:
            pk, _ = self._meter_pk(conn, meter_id)
            rows = conn.execute(
                "SELECT ts, value FROM extras WHERE meter = %s AND name = %s "
                "AND ts >= %s AND ts < %s ORDER BY ts LIMIT %s",
                (pk, name, to_ms(start), to_ms(end), max(limit, 0)),
            ).fetchall()
        return [Extra(meter_id, from_ms(int(ts)), name, float(value)) for ts, value in rows]

    def extra_buckets(
        self, meter_id: str, name: str, start: datetime, end: datetime, width_s: int
    ) -> list[tuple[datetime, int, float, float, float]]:
        """Return (bucket start, count, min, mean, max) of one extra per UTC-aligned bucket (read-only).

        Buckets of ``width_s`` that overlap [start, end) and hold values are returned whole,
        oldest first; widths that are multiples of 15 minutes are read from the 15-minute rollup.
        """
        width_ms, lo, hi = extra_bucket_span(start, end, width_s)
        if width_ms % EXTRA_BUCKET_MS == 0:
            column, source = "bucket", (
                "sum(n), min(low), sum(total), max(high) FROM extras_15m "
                "WHERE meter = %(pk)s AND name = %(name)s AND bucket >= %(lo)s AND bucket < %(hi)s"
            )
        else:
            column, source = "ts", (
                "count(*), min(value), sum(value), max(value) FROM extras "
                "WHERE meter = %(pk)s AND name = %(name)s AND ts >= %(lo)s AND ts < %(hi)s"
            )
        with self._read() as conn:
            pk, _ = self._meter_pk(conn, meter_id)
            rows = conn.execute(
                f"SELECT {column} - mod(mod({column}, %(w)s) + %(w)s, %(w)s) AS b, {source} "
                "GROUP BY b ORDER BY b",
                {"w": width_ms, "pk": pk, "name": name, "lo": lo, "hi": hi},
            ).fetchall()
        return [
            (from_ms(int(b)), int(n), float(low), float(total) / int(n), float(high))
            for b, n, low, total, high in rows
        ]

    # --- key-value ----------------------------------------------------------------------
    def token_get(self, scope: str, key: str) -> tuple[str, datetime | None] | None:
        """Return a stored token and its expiry, or None (read-only)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT value, expires_ms FROM tokens WHERE scope = %s AND key = %s", (scope, key)
            ).fetchone()
        if row is None:
            return None
        return str(row[0]), None if row[1] is None else from_ms(int(row[1]))

    def quota_used(self, key: str, window_s: int, now: datetime) -> int:
        """Return the calls recorded under ``key`` within the window ending ``now`` (read-only)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT count(*) FROM quota_ledger WHERE key = %s AND ts_ms > %s",
                (key, to_ms(now) - window_s * 1000),
            ).fetchone()
        return 0 if row is None else int(row[0])

    def quota_next_free(self, key: str, limit: int, window_s: int, now: datetime) -> datetime:
        """Return the earliest time a call under ``key`` fits the limit (read-only)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT ts_ms FROM quota_ledger WHERE key = %s AND ts_ms > %s ORDER BY ts_ms",
                (key, to_ms(now) - window_s * 1000),
            ).fetchall()
        times = [int(row[0]) for row in rows]
        if len(times) < limit:
            return now
        return from_ms(times[len(times) - limit]) + timedelta(seconds=window_s)
