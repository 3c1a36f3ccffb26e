"""The SQLite write path for readings given as columns (imports): no reading object per row.

It stores exactly what :func:`meterhub.store.sqlite_writer.write_readings_tx` stores for the
same readings in the same order: rows newer than their series take the vectorised path (one
``executemany`` of encoded integers, rollups folded with numpy); older rows go through the
writer's own late path, which rebuilds the rollups and gaps around them.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from meterhub.errors import InputError, StoreError
from meterhub.model import PHASE_TOTAL, Reading
from meterhub.store.base import ReadingColumns, WriteResult
from meterhub.store.coarse import merge_fresh
from meterhub.store.fastpath import SeriesBatch, rollup_batch
from meterhub.store.sqlite_codec import (
    LARGEST_STORED,
    READING_COLUMNS,
    READING_SCALES,
    compact_counts,
    encode_rollup_array,
    round_half_away_array,
)
from meterhub.store.sqlite_writer import (
    _COARSE_MERGE_SQL,
    _LATEST_SQL,
    _MERGE_SQL,
    STORED_WIDTHS_MS,
    WriterContext,
    _gap_ms,
    _last_ms,
    _latest_row,
    _load_states,
    _meter_info,
    _write_late,
)

__all__ = ["write_columns_retrying", "write_columns_tx"]

T = TypeVar("T")


class _Transactions(Protocol):
    """The SQLite store's writer thread, as far as this module uses it."""

    ctx: WriterContext

    def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...


_SCALES = np.array(READING_SCALES)
_P, _V, _I, _EI, _EE = 2, 0, 1, 6, 7
"""Positions of power, voltage, current and the energy registers among the value columns."""


def write_columns_tx(conn: sqlite3.Connection, ctx: WriterContext, columns: ReadingColumns) -> WriteResult:
    """Store readings given as columns in one transaction the caller has opened (BEGIN IMMEDIATE)."""
    version = conn.execute("PRAGMA data_version").fetchone()[0]
    if version != ctx.data_version:
        ctx.forget()
    if not ctx.states_loaded:
        _load_states(conn, ctx)
    infos = [_meter_info(conn, ctx, meter_id) for meter_id in columns.meters]
    pk_of = np.array([pk for pk, _ in infos] or [0], dtype=np.int64)
    gap_of = np.array([gap for _, gap in infos] or [0], dtype=np.int64)
    meter_index = columns.meter_index
    keys = pk_of[meter_index] * 4 + columns.phase
    ts = columns.ts_us // 1000  # floored like timeutil.to_ms
    order = np.lexsort((ts, keys))
    keys, ts = keys[order], ts[order]
    count = len(keys)
    repeated = np.zeros(count, dtype=bool)
    repeated[1:] = (keys[1:] == keys[:-1]) & (ts[1:] == ts[:-1])
    series_keys = np.unique(keys)
    last_known = np.array([_last_ms(ctx.states.get(int(k))) for k in series_keys.tolist()], dtype=np.float64)
    newer = ts > last_known[np.searchsorted(series_keys, keys)]
    fresh = newer & ~repeated
    late = ~newer & ~repeated
    duplicates = int(repeated.sum())
    stored = 0
    if fresh.any():
        positions = order[fresh]
        stored += _write_fresh(
            conn,
            ctx,
            columns,
            positions,
            keys[fresh],
            ts[fresh],
            gap_of[meter_index[positions]],
        )
    late_series: dict[int, list[tuple[int, Reading]]] = defaultdict(list)
    for position, key, ts_ms in zip(
        order[late].tolist(), keys[late].tolist(), ts[late].tolist(), strict=True
    ):
        late_series[key].append((ts_ms, columns.reading(position)))
    for key, items in late_series.items():
        pk, phase = divmod(key, 4)
        added, dup = _write_late(conn, ctx, pk, phase, items, _gap_ms(conn, pk))
        stored += added
        duplicates += dup
    return WriteResult(stored, duplicates)


def _write_fresh(
    conn: sqlite3.Connection,
    ctx: WriterContext,
    columns: ReadingColumns,
    positions: npt.NDArray[np.int64],
    keys: npt.NDArray[np.int64],
    ts: npt.NDArray[np.int64],
    gap_ms: npt.NDArray[np.int64],
) -> int:
    values = columns.values[positions]
    encoded = round_half_away_array(values * _SCALES)
    too_large = np.abs(encoded) >= LARGEST_STORED  # NaN (a missing value) compares False
    if too_large.any():
        row = int(positions[np.nonzero(too_large.any(axis=1))[0][0]])
        raise InputError(f"reading at row {row} of the batch holds a value too large to store")
    stored_values = encoded / _SCALES
    pks, phases = np.divmod(keys, 4)
    # Rows are inserted grouped by the values they carry, naming only those columns: binding the
    # integers SQLite's CAST(round(value * scale) AS INTEGER) gives the row path, and no NULLs.
    present = ~np.isnan(encoded)
    patterns = present.astype(np.int64) @ (1 << np.arange(present.shape[1], dtype=np.int64))
    whole = np.where(present, encoded, 0).astype(np.int64)
    before = conn.total_changes
    for pattern in np.unique(patterns).tolist():
        rows = patterns == pattern
        carried = [k for k in range(present.shape[1]) if pattern >> k & 1]
        names = ", ".join(["meter", "phase", "ts", *(READING_COLUMNS[k] for k in carried)])
        params = np.column_stack((pks[rows], phases[rows], ts[rows], whole[rows][:, carried]))
        conn.executemany(
            f"INSERT INTO readings ({names}) VALUES ({', '.join('?' * (3 + len(carried)))})",
            _tuples(params),
        )
    stored = conn.total_changes - before
    batch = SeriesBatch(
        keys,
        ts,
        stored_values[:, _P],
        stored_values[:, _V],
        stored_values[:, _I],
        stored_values[:, _EI],
        stored_values[:, _EE],
        gap_ms,
        phases == PHASE_TOTAL,
    )
    states = {key: ctx.states[key] for key in np.unique(keys).tolist() if key in ctx.states}
    rollups, gaps, new_states = rollup_batch(batch, states, STORED_WIDTHS_MS)
    (width,) = STORED_WIDTHS_MS
    rows = encode_rollup_array(rollups, width)
    conn.executemany(_MERGE_SQL[width], _tuples(compact_counts(rows)))
    merge_fresh(conn, _COARSE_MERGE_SQL, rows, ctx.zones)
    last_rows = np.append(np.nonzero(keys[1:] != keys[:-1])[0], len(keys) - 1)
    raw_last = np.column_stack((pks[last_rows], phases[last_rows], ts[last_rows], encoded[last_rows]))
    latest_rows = []
    for key, raw_row in zip(keys[last_rows].tolist(), raw_last.tolist(), strict=True):
        state = new_states[key]
        latest_rows.append(_latest_row(tuple(raw_row), state))
        ctx.states[key] = state
    conn.executemany(_LATEST_SQL, latest_rows)
    conn.executemany(
        "INSERT OR IGNORE INTO gaps (meter, start_ms, end_ms) VALUES (?, ?, ?)",
        [(key // 4, start, end) for key, start, end in gaps],
    )
    return stored


def write_columns_retrying(writer: _Transactions, columns: ReadingColumns) -> WriteResult:
    """Write in one transaction of ``writer``; retry once from the database as ``write_readings`` does."""
    if not columns.rows:
        return WriteResult(0, 0)
    try:
        return writer.transaction(lambda conn: write_columns_tx(conn, writer.ctx, columns))
    except StoreError as exc:
        if not isinstance(exc.__cause__, sqlite3.IntegrityError):
            raise
    # Another process wrote these series since the writer's cache was filled.
    return writer.transaction(lambda conn: write_columns_tx(conn, writer.ctx, columns))


def _tuples(table: npt.NDArray[np.int64] | npt.NDArray[np.float64]) -> Iterator[tuple[float | int, ...]]:
    """Return the rows of a 2-D array as tuples of Python numbers (column lists zipped: cheaper)."""
    return zip(*table.T.tolist(), strict=True)
