"""Latest reading of every meter: the store's latest table against a bare 2000-row SELECT."""

from __future__ import annotations

from bench.fixtures import Context, raw_connection
from bench.harness import Goal, Result, calls_for, interleaved, latency_result, repeated
from meterhub.ingest import Ingestor
from meterhub.model import READING_FIELDS, Reading
from meterhub.store.sqlite import SQLiteStore
from meterhub.timeutil import to_ms

__all__ = ["latest_all"]

POLLS_BEFORE = 2
"""Polls ingested before timing, so each meter's latest row replaced an earlier one."""


def latest_all(ctx: Context) -> list[Result]:
    """Time store.latest() of all meters (phase 0) against SELECT * of a 2000-row table."""
    meters = len(ctx.fleet.meter_ids)
    path = ctx.copy_of_template()
    store = SQLiteStore(path)
    ref_conn = raw_connection(ctx.fresh_path("latest-ref"))
    try:
        Ingestor(store).ingest(ctx.fleet.poll_order[: POLLS_BEFORE * meters])
        latest = store.latest()
        value_columns = ", ".join(f"{name} REAL" for name in READING_FIELDS)
        ref_conn.execute(
            "CREATE TABLE latest_ref (meter TEXT PRIMARY KEY, phase INTEGER, ts INTEGER, "
            f"{value_columns})"
        )
        ref_conn.executemany(
            f"INSERT INTO latest_ref VALUES ({', '.join('?' * (3 + len(READING_FIELDS)))})",
            [(r.meter, r.phase, to_ms(r.ts), *r.values()) for r in latest],
        )

        def ours() -> list[Reading]:
            return store.latest()

        def reference() -> list[tuple[object, ...]]:
            rows: list[tuple[object, ...]] = ref_conn.execute("SELECT * FROM latest_ref").fetchall()
            return rows

        ours_s, reference_s = interleaved(
            repeated(ours, calls_for(ours, ctx.sizes.target_s)),
            repeated(reference, calls_for(reference, ctx.sizes.target_s)),
            ctx.rounds,
        )
    finally:
        store.close()
        ref_conn.close()
    return [latency_result(
        "latest_all", ours_s, reference_s,
        f"SELECT * of a {len(latest)}-row table (meter TEXT key, phase, ts, 10 REAL) into tuples; "
        f"ours returns model Readings",
        Goal("<=", 3), f"{len(latest)} readings for {meters} meters",
    )]
