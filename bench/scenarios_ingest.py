"""Ingest throughput: the real pipeline against raw executemany into the same readings table."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bench.fixtures import Context, EncodedRow, raw_connection
from bench.harness import Goal, Measure, Result, interleaved, throughput_result
from meterhub.ingest import Ingestor
from meterhub.model import Reading
from meterhub.store.sqlite import SQLiteStore

__all__ = ["ingest_backfill", "ingest_poll_order"]

RAW_BATCH = 10_000
_INSERT = (
    "INSERT INTO readings (meter, phase, ts, v, i, p, q, pf, f, ei, ee, qi, qe) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _ours(ctx: Context, readings: Sequence[Reading], stored: list[int]) -> Measure:
    def measure() -> float:
        path = ctx.copy_of_template()
        store = SQLiteStore(path)
        try:
            ingestor = Ingestor(store)
            started = time.perf_counter()
            report = ingestor.ingest(readings)
            elapsed = time.perf_counter() - started
        finally:
            store.close()
            ctx.discard(path)
        stored.append(report.stored)
        return elapsed

    return measure


def _raw(ctx: Context, rows: Sequence[EncodedRow]) -> Measure:
    def measure() -> float:
        path = ctx.copy_of_template()
        conn = raw_connection(path)
        try:
            started = time.perf_counter()
            for offset in range(0, len(rows), RAW_BATCH):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(_INSERT, rows[offset:offset + RAW_BATCH])
                conn.execute("COMMIT")
            elapsed = time.perf_counter() - started
        finally:
            conn.close()
            ctx.discard(path)
        return elapsed

    return measure


def _ingest(ctx: Context, name: str, readings: Sequence[Reading], rows: Sequence[EncodedRow],
            order: str) -> Result:
    stored: list[int] = []
    ours_s, reference_s = interleaved(_ours(ctx, readings, stored), _raw(ctx, rows), ctx.rounds)
    complete = all(n == len(readings) for n in stored)
    check = f"{len(readings):,} rows a round, all stored every round: {complete}"
    if not complete:
        raise RuntimeError(f"{name}: the store kept {sorted(set(stored))} of {len(readings)} rows")
    meters = len(ctx.fleet.meter_ids)
    return throughput_result(
        name, len(readings), ours_s, reference_s,
        f"raw executemany of the same pre-encoded rows ({order}) into the same readings table, "
        f"batches of {RAW_BATCH:,}, WAL, synchronous=NORMAL; {meters} 1-phase meters, "
        f"{len(readings):,} rows a round",
        Goal(">=", 0.5), check,
    )


def ingest_poll_order(ctx: Context) -> list[Result]:
    """Time the fleet's parsed readings in poll order through Ingestor on a fresh SQLite file."""
    fleet = ctx.fleet
    return [_ingest(ctx, "ingest_poll_order", fleet.poll_order, fleet.poll_order_rows,
                    "poll order")]


def ingest_backfill(ctx: Context) -> list[Result]:
    """Time the same rows sorted by meter, then time (a history backfill)."""
    fleet = ctx.fleet
    return [_ingest(ctx, "ingest_backfill", fleet.backfill, fleet.backfill_rows,
                    "meter, time order")]
