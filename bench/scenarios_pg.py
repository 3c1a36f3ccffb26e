"""The year's user paths on PostgreSQL, against the same paths on SQLite in the same run.

The year's readings are written through the PostgreSQL store's real write path into a fresh
schema of the bench server (dropped afterwards). Each scenario checks that PostgreSQL's answer
equals SQLite's within a stated tolerance and raises :class:`bench.harness.AnswerMismatch`
otherwise. The PostgreSQL tables' bytes per reading are reported beside a plain keyed table of
the same rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import psycopg

from bench.fixtures import YEAR_METER, Context
from bench.harness import Goal, Result, calls_for, interleaved, latency_result, repeated, require
from bench.scenarios_reads import require_figures_agree
from meterhub.analytics.energy import EnergyBucket, meter_energy
from meterhub.api.routes.readings import DEFAULT_FIELDS
from meterhub.history import HistoryColumns, history_columns
from meterhub.ingest import Ingestor
from meterhub.model import Meter
from meterhub.store.base import Store
from meterhub.store.postgres import PostgresStore

__all__ = ["pg_year_reads"]

POSTGRES_URL = os.environ.get("METERHUB_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MAX_POINTS = 2000
GOAL = Goal("<=", 3)
_ROLLUPS = ("rollup_15m", "rollup_1h", "rollup_6h", "rollup_day")
"""Rollup relations; those that are views (hourly rows merged when read) hold no bytes."""


@contextmanager
def _pg_year(ctx: Context) -> Iterator[PostgresStore]:
    """Yield a PostgreSQL store holding the year's readings, in a schema dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    store = PostgresStore(POSTGRES_URL, schema=schema)
    try:
        meter = ctx.year.store.get_meter(YEAR_METER)
        store.add_meter(Meter(meter.id, meter.vendor, meter.phases, meter.tz, meter.interval_s))
        series = ctx.year.series
        report = Ingestor(store).ingest(series.readings(YEAR_METER))
        if report.stored != series.ts_ms.size:
            raise RuntimeError(f"the PostgreSQL year kept {report.stored} of {series.ts_ms.size} rows")
        yield store
    finally:
        store.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _time_pair(
    ctx: Context, ours: Callable[[], object], reference: Callable[[], object]
) -> tuple[list[float], list[float]]:
    return interleaved(
        repeated(ours, calls_for(ours, ctx.sizes.target_s)),
        repeated(reference, calls_for(reference, ctx.sizes.target_s)),
        ctx.rounds,
    )


def _downsample(ctx: Context, pg: PostgresStore) -> Result:
    year = ctx.year
    start, end = year.utc_start, year.utc_end
    meter = year.store.get_meter(YEAR_METER)

    def on(store: Store) -> Callable[[], HistoryColumns]:
        def call() -> HistoryColumns:
            # GET /api/v1/meters/{id}/readings?points=2000 (and `meterhub readings --points 2000`).
            return history_columns(
                store, YEAR_METER, start, end, points=MAX_POINTS, tz=meter.tz, meter=meter,
                fields=DEFAULT_FIELDS,
            )  # fmt: skip

        return call

    ours, reference = on(pg), on(year.store)
    got, expected = ours(), reference()
    require(
        np.array_equal(got.starts_ms, expected.starts_ms) and np.array_equal(got.ends_ms, expected.ends_ms),
        f"pg_downsample_year: {len(got)} buckets on PostgreSQL, {len(expected)} on SQLite",
    )
    shown = require_figures_agree("pg_downsample_year", "SQLite's", got.figures, expected.figures)
    ours_s, reference_s = _time_pair(ctx, ours, reference)
    width_h = (int(got.ends_ms[0]) - int(got.starts_ms[0])) / 3_600_000
    return latency_result(
        "pg_downsample_year",
        ours_s,
        reference_s,
        f"the same history_columns call on the SQLite year store, same rows, same run; "
        f"{len(got)} points of {width_h:g} h",
        GOAL,
        f"history_columns on PostgreSQL as the readings route calls it: {len(got)} buckets equal to "
        f"SQLite's (counts exact, minima and maxima 1e-9, averages and energy 1e-6; largest "
        f"differences: {shown})",
    )


def _energy_days(ctx: Context, pg: PostgresStore) -> Result:
    year = ctx.year

    def ours() -> list[EnergyBucket]:
        return meter_energy(pg, YEAR_METER, year.start, year.end, "day")

    def reference() -> list[EnergyBucket]:
        return meter_energy(year.store, YEAR_METER, year.start, year.end, "day")

    got, expected = ours(), reference()
    require(
        [(d.start, d.end) for d in got] == [(d.start, d.end) for d in expected],
        f"pg_energy_days_year: {len(got)} days on PostgreSQL, {len(expected)} on SQLite",
    )
    off_kwh = max(
        (max(abs(a.energy_import_kwh - b.energy_import_kwh), abs(a.energy_export_kwh - b.energy_export_kwh))
         for a, b in zip(got, expected, strict=True)),
        default=0.0,
    )
    require(off_kwh <= 1e-6, f"pg_energy_days_year: a day's energy differs from SQLite's by {off_kwh:g} kWh")
    pairs = zip(got, expected, strict=True)
    flags = sum(a.estimated != b.estimated or a.source != b.source for a, b in pairs)
    require(flags == 0, f"pg_energy_days_year: {flags} days differ from SQLite's in source or estimate")
    ours_s, reference_s = _time_pair(ctx, ours, reference)
    return latency_result(
        "pg_energy_days_year",
        ours_s,
        reference_s,
        "the same meter_energy call by local day on the SQLite year store, same rows, same run",
        GOAL,
        f"meter_energy by local day on PostgreSQL: {len(got)} days, each within 1e-6 kWh of SQLite's "
        f"(worst {off_kwh:.2g}), sources and estimates equal; {_bytes_note(ctx, pg)}",
    )


def _bytes_note(ctx: Context, pg: PostgresStore) -> str:
    """Return PostgreSQL's bytes per reading (raw table, rollups) beside a plain keyed table's."""
    series = ctx.year.series
    rows = series.ts_ms.size
    with psycopg.connect(POSTGRES_URL, options=f"-c search_path={pg.schema}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        raw = _relation_bytes(conn, "samples")
        rollups = sum(_relation_bytes(conn, table) for table in _ROLLUPS)
        conn.execute(
            "CREATE TABLE plain_ref (meter integer NOT NULL, ts bigint NOT NULL, v double precision, "
            "i double precision, p double precision, pf double precision, f double precision, "
            "ei double precision, PRIMARY KEY (meter, ts))"
        )
        with conn.cursor() as cursor, cursor.copy("COPY plain_ref FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "int8", *["float8"] * 6])
            for row in zip(
                series.ts_ms.tolist(), series.voltage_v.tolist(), series.current_a.tolist(),
                series.power_w.tolist(), series.power_factor.tolist(), series.frequency_hz.tolist(),
                series.import_kwh.tolist(), strict=True,
            ):
                copy.write_row((1, *row))
        conn.execute("VACUUM ANALYZE plain_ref")
        plain = _relation_bytes(conn, "plain_ref")
    return (
        f"PostgreSQL bytes per reading: readings {raw / rows:.1f}, rollups {rollups / rows:.1f}, "
        f"together {(raw + rollups) / rows:.1f}; a plain keyed table (meter, ts, 6 doubles) "
        f"{plain / rows:.1f}"
    )


def _relation_bytes(conn: psycopg.Connection[tuple[object, ...]], table: str) -> int:
    """Return pg_total_relation_size of ``table`` and of every partition under it (0 if no such table)."""
    row = conn.execute(
        "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c WHERE c.oid = to_regclass(%(t)s) "
        "OR c.oid IN (SELECT relid FROM pg_partition_tree(to_regclass(%(t)s)))", {"t": table}
    ).fetchone()
    return 0 if row is None or row[0] is None else int(str(row[0]))


def pg_year_reads(ctx: Context) -> list[Result]:
    """Time the year's downsample and energy by local day on PostgreSQL against SQLite's."""
    wanted = ctx.wanted
    results = []
    with _pg_year(ctx) as pg:
        if wanted is None or "pg_downsample_year" in wanted:
            results.append(_downsample(ctx, pg))
        if wanted is None or "pg_energy_days_year" in wanted:
            results.append(_energy_days(ctx, pg))
    return results
