"""The PostgreSQL write path: raw rows, rollups, latest values and gap events in one transaction.

The semantics are the SQLite writer's. Rows newer than everything stored for their series go in
with COPY; their rollups are folded in memory by the shared :class:`RollupBuilder` and merged with
one upsert per bucket. Older rows (late arrivals, history behind live data) are inserted with
``ON CONFLICT DO NOTHING`` and the buckets, gaps and latest values around them are rebuilt from
the raw rows, so the result is what a recomputation from scratch would give.

Every write transaction first takes a transaction-level advisory lock per meter, so the series
state read from ``latest`` is authoritative even with several processes writing. Raw rows go to
``samples`` in the compact layout of :mod:`meterhub.store.postgres_compact`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from meterhub.errors import UnknownMeterError
from meterhub.model import PHASE_TOTAL, READING_FIELDS, Reading
from meterhub.store.base import WriteResult
from meterhub.store.coarse import QUARTER_MS
from meterhub.store.postgres_compact import (
    SAMPLE_COLUMNS,
    SAMPLE_COPY_TYPES,
    encode_reading,
    present,
    series_of,
)
from meterhub.store.postgres_rollups import (
    LATEST_COLUMNS,
    MERGE_SQL,
    agg_row,
    columns,
    rebuild_gaps,
    rebuild_rollups,
    refresh_coarse,
    refresh_latest,
    register_state,
    scalar,
    unnest,
)
from meterhub.store.postgres_schema import Conn, advisory_key
from meterhub.store.rollup import RollupBuilder, Row, SeriesState

__all__ = ["lock_meters", "write_readings_tx"]

_COPY_SQL = f"COPY samples ({', '.join(SAMPLE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_INSERT_IGNORE_SQL = (
    f"INSERT INTO samples ({', '.join(SAMPLE_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(SAMPLE_COLUMNS))}) ON CONFLICT DO NOTHING "
    f"RETURNING ts, {present('energy_import_kwh')}, {present('energy_export_kwh')}"
)
_LATEST_TYPES = ("integer", "smallint", "bigint", *["double precision"] * len(READING_FIELDS),
                 *["bigint", "double precision", "double precision"] * 2)
_LATEST_SQL = (
    f"INSERT INTO latest ({', '.join(LATEST_COLUMNS)}) SELECT * FROM {unnest(_LATEST_TYPES)} "
    "ON CONFLICT (meter, phase) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in LATEST_COLUMNS[2:])
)
_GAPS_SQL = (
    "INSERT INTO gaps (meter, start_ms, end_ms) "
    f"SELECT * FROM {unnest(('integer', 'bigint', 'bigint'))} ON CONFLICT DO NOTHING"
)


_HOUR_MS = 3_600_000
"""``rebuild_rollups`` recomputes whole hours."""

Encoded = tuple[tuple[float | None, ...], list[int | None]]
"""A reading's quantised values (READING_FIELDS order) and its samples value columns."""


def _row(ts_ms: int, encoded: Encoded) -> Row:
    # READING_FIELDS order: voltage, current, power, ..., energy import (6), energy export (7).
    values = encoded[0]
    return Row(ts_ms, values[2], values[0], values[1], values[6], values[7])


def lock_meters(conn: Conn, lock_space: int, meter_ids: Iterable[str]) -> None:
    """Take this transaction's advisory lock on each meter, in one global order (no deadlocks)."""
    keys = sorted({advisory_key(meter_id) for meter_id in set(meter_ids)})
    conn.execute(
        "SELECT pg_advisory_xact_lock(%s, k) FROM unnest(%s::int[]) AS u(k)", (lock_space, keys)
    )


def _meter_infos(conn: Conn, meter_ids: Sequence[str]) -> dict[str, tuple[int, int, str]]:
    """Return each meter's pk, gap threshold (ms) and zone."""
    wanted = list(dict.fromkeys(meter_ids))
    rows = conn.execute("SELECT id, pk, interval_s, tz FROM meters WHERE id = ANY(%s)", (wanted,))
    infos = {row[0]: (int(row[1]), 2 * int(row[2]) * 1000, str(row[3])) for row in rows}
    for meter_id in wanted:
        if meter_id not in infos:
            raise UnknownMeterError(meter_id)
    return infos


def _load_states(conn: Conn, pks: list[int]) -> dict[tuple[int, int], SeriesState]:
    rows = conn.execute(
        "SELECT meter, phase, ts, imp_ts, imp_kwh, imp_power_w, exp_ts, exp_kwh, exp_power_w "
        "FROM latest WHERE meter = ANY(%s)", (pks,)
    )
    return {
        (int(r[0]), int(r[1])): SeriesState(int(r[2]), register_state(*r[3:6]), register_state(*r[6:9]))
        for r in rows
    }


def write_readings_tx(
    conn: Conn,
    lock_space: int,
    readings: Sequence[Reading],
    ts_values: Sequence[int],
    all_late: bool = False,
) -> WriteResult:
    """Store readings (at ``ts_values`` epoch ms) in the caller's transaction.

    ``all_late`` sends every row the slow way: inserted one by one and rebuilt around.
    """
    meter_ids = [reading.meter for reading in readings]
    lock_meters(conn, lock_space, meter_ids)
    infos = _meter_infos(conn, meter_ids)
    states = _load_states(conn, sorted({pk for pk, _, _ in infos.values()}))
    series: dict[tuple[int, int], list[tuple[int, Reading]]] = defaultdict(list)
    for reading, ts_ms in zip(readings, ts_values, strict=True):
        series[(infos[reading.meter][0], reading.phase)].append((ts_ms, reading))
    gap_of = {pk: gap_ms for pk, gap_ms, _ in infos.values()}
    zone_of = {pk: tz for pk, _, tz in infos.values()}
    changed: dict[tuple[int, int], tuple[int, int]] = {}
    stored = duplicates = 0
    raw_rows: list[tuple[int | None, ...]] = []
    latest_rows: list[tuple[int | float | None, ...]] = []
    merges: list[tuple[int | None, ...]] = []
    gap_rows: list[tuple[int, int, int]] = []
    late: list[tuple[int, int, list[tuple[int, Encoded]]]] = []
    builder = RollupBuilder(widths_ms=(QUARTER_MS,))  # hours and longer merge 15-minute rows
    for (pk, phase), items in series.items():
        items.sort(key=lambda item: item[0])
        state = states.get((pk, phase), SeriesState())
        fresh: list[tuple[int, Encoded]] = []
        older: list[tuple[int, Encoded]] = []
        previous_ms = None
        for ts_ms, reading in items:
            if ts_ms == previous_ms:
                duplicates += 1
                continue
            previous_ms = ts_ms
            newer = state.last_ms is None or ts_ms > state.last_ms
            (fresh if newer and not all_late else older).append((ts_ms, encode_reading(reading)))
        if older:
            late.append((pk, phase, older))
        if not fresh:
            continue
        new_state = builder.feed(
            state, (_row(ts, values) for ts, values in fresh), gap_of[pk], phase == PHASE_TOTAL
        )
        aggs, gaps = builder.take()
        merges.extend(agg_row(pk, phase, agg) for agg in aggs.values())
        quarters = [bucket for _, bucket in aggs]
        if quarters:
            _widen(changed, (pk, phase), min(quarters), max(quarters) + QUARTER_MS)
        gap_rows.extend((pk, start, end) for start, end in gaps)
        key = series_of(pk, phase)
        raw_rows.extend((ts, key, *encoded[1]) for ts, encoded in fresh)
        last_ts, (last_values, _) = fresh[-1]
        latest_rows.append((pk, phase, last_ts, *last_values, *_state_columns(new_state)))
    stored += _copy_readings(conn, raw_rows)
    # One statement, whatever the number of buckets and series in the batch.
    if merges:
        conn.execute(MERGE_SQL, columns(merges))
    if latest_rows:
        conn.execute(_LATEST_SQL, columns(latest_rows))
    if gap_rows:
        conn.execute(_GAPS_SQL, columns(gap_rows))
    for pk, phase, older in late:
        added, dup, window = _write_late(conn, pk, phase, older, gap_of[pk])
        stored += added
        duplicates += dup
        if window is not None:
            _widen(changed, (pk, phase), *window)
    # The coarse rows follow the 15-minute rows they merge, whichever path changed those.
    refresh_coarse(conn, [(pk, phase, lo, hi, zone_of[pk]) for (pk, phase), (lo, hi) in changed.items()])
    return WriteResult(stored, duplicates)


def _widen(changed: dict[tuple[int, int], tuple[int, int]], key: tuple[int, int], lo: int, hi: int) -> None:
    """Record that a series' rollups changed in [lo, hi), merged with what changed before."""
    before = changed.get(key)
    changed[key] = (lo, hi) if before is None else (min(before[0], lo), max(before[1], hi))


def _copy_readings(conn: Conn, rows: list[tuple[int | None, ...]]) -> int:
    if not rows:
        return 0
    with conn.cursor() as cursor, cursor.copy(_COPY_SQL) as copy:
        copy.set_types(SAMPLE_COPY_TYPES)
        for row in rows:
            copy.write_row(row)
    return len(rows)


def _state_columns(state: SeriesState) -> tuple[int | float | None, ...]:
    columns: list[int | float | None] = []
    for register in (state.imp, state.exp):
        if register is None:
            columns.extend((None, None, None))
        else:
            columns.extend((register.ts_ms, register.kwh, register.power_w))
    return tuple(columns)


def _write_late(
    conn: Conn, pk: int, phase: int, items: list[tuple[int, Encoded]], gap_ms: int
) -> tuple[int, int, tuple[int, int] | None]:
    """Insert rows behind the series' newest and rebuild around them; return the counts stored
    and duplicate, and the range [lo, hi) whose rollups were rebuilt (None when nothing was new)."""
    inserted: list[tuple[int, bool, bool]] = []
    key = series_of(pk, phase)
    with conn.cursor() as cursor:
        cursor.executemany(
            _INSERT_IGNORE_SQL, [(ts, key, *encoded[1]) for ts, encoded in items], returning=True
        )
        while True:
            inserted.extend((int(r[0]), bool(r[1]), bool(r[2])) for r in cursor.fetchall())
            if not cursor.nextset():
                break
    if not inserted:
        return 0, len(items), None
    lo = min(ts for ts, _, _ in inserted)
    hi = max(ts for ts, _, _ in inserted)
    series = "FROM samples WHERE series = %s"
    before = scalar(conn, f"SELECT max(ts) {series} AND ts < %s", (key, lo))
    after = scalar(conn, f"SELECT min(ts) {series} AND ts > %s", (key, hi))
    span_lo = lo if before is None else before
    span_hi = hi if after is None else after
    window_lo, window_hi = span_lo, span_hi
    # A new register reading splits the increment between the register readings around it,
    # which may lie well beyond the neighbouring rows when registers come sparser than power.
    for field, carried in (("energy_import_kwh", 1), ("energy_export_kwh", 2)):
        if any(row[carried] for row in inserted):
            where = f"{series} AND {present(field)}"
            previous = scalar(conn, f"SELECT max(ts) {where} AND ts < %s", (key, lo))
            following = scalar(conn, f"SELECT min(ts) {where} AND ts > %s", (key, hi))
            window_lo = window_lo if previous is None else min(window_lo, previous)
            window_hi = window_hi if following is None else max(window_hi, following)
    rebuild_rollups(conn, pk, phase, window_lo, window_hi, gap_ms)
    if phase == PHASE_TOTAL:
        rebuild_gaps(conn, pk, span_lo, span_hi, gap_ms)
    refresh_latest(conn, pk, phase)
    rebuilt = (window_lo - window_lo % _HOUR_MS, window_hi - window_hi % _HOUR_MS + _HOUR_MS)
    return len(inserted), len(items) - len(inserted), rebuilt


