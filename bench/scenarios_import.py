"""Import throughput: ``meterhub import`` of a CSV against csv + executemany into a bare table."""

from __future__ import annotations

import csv
import math
import sqlite3
import time
from pathlib import Path

from bench.fixtures import Context, raw_connection
from bench.harness import Goal, Measure, Result, interleaved, throughput_result
from meterhub.importer import import_file
from meterhub.model import CANONICAL_COLUMNS
from meterhub.store.sqlite import SQLiteStore

__all__ = ["import_csv"]

ROWS = 1_000_000
QUICK_ROWS = 100_000
METERS = 10
BATCH_ROWS = 50_000
"""The batch ``meterhub import`` takes by default (METERHUB_IMPORT_BATCH_ROWS)."""
START_S = 1_735_689_600  # 2025-01-01T00:00:00Z
_REFERENCE_TABLE = (
    "CREATE TABLE readings (meter TEXT NOT NULL, ts TEXT NOT NULL, phase INTEGER NOT NULL, "
    + ", ".join(f"{name} REAL" for name in CANONICAL_COLUMNS[3:])
    + ", PRIMARY KEY (meter, ts, phase)) WITHOUT ROWID"
)
_REFERENCE_INSERT = f"INSERT INTO readings VALUES ({', '.join('?' * len(CANONICAL_COLUMNS))})"


def write_csv(path: Path, rows: int) -> tuple[int, float]:
    """Write an export-shaped CSV of 1-minute readings, meter by meter; return (rows, sum of power)."""
    per_meter = rows // METERS
    power_mw_sum = 0
    with path.open("w", newline="") as sink:
        sink.write(",".join(CANONICAL_COLUMNS) + "\n")
        for m in range(METERS):
            lines = []
            register_wh = 1_000_000 * (m + 1)
            for k in range(per_meter):
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(START_S + 60 * k))
                power_mw = 250_000 + (k * 7919 + m * 104_729) % 3_000_000
                power_mw_sum += power_mw
                register_wh += power_mw // 60_000
                lines.append(
                    f"house-{m},{stamp},0,{229 + k % 3}.{k % 10},{power_mw / 230_000:.3f},"
                    f"{power_mw / 1000:.3f},,,,{register_wh / 1000:.3f},,,\n"
                )
            sink.write("".join(lines))
    return per_meter * METERS, power_mw_sum / 1000


def _ours(ctx: Context, path: Path, outcomes: list[tuple[int, float]]) -> Measure:
    def measure() -> float:
        db = ctx.fresh_path("import")
        store = SQLiteStore(db)
        try:
            started = time.perf_counter()
            report = import_file(store, path, None, batch_rows=BATCH_ROWS)
            elapsed = time.perf_counter() - started
        finally:
            store.close()
        with sqlite3.connect(db) as conn:
            count, power_mw = conn.execute("SELECT count(*), sum(p) FROM readings").fetchone()
            rollup_n = conn.execute("SELECT sum(n) FROM rollup_15m").fetchone()[0]
        ctx.discard(db)
        if report.rejected_count or report.stored != count or rollup_n != count:
            raise RuntimeError(
                f"import_csv: stored {report.stored}, rejected {report.rejected_count}, "
                f"{count} rows in the table, {rollup_n} in the 15-minute rollups"
            )
        outcomes.append((count, power_mw / 1000))
        return elapsed

    return measure


def _reference(ctx: Context, path: Path, outcomes: list[tuple[int, float]]) -> Measure:
    def measure() -> float:
        db = ctx.fresh_path("reference")
        conn = raw_connection(db)
        try:
            conn.execute(_REFERENCE_TABLE)
            started = time.perf_counter()
            with path.open(newline="") as source:
                reader = csv.reader(source)
                next(reader)
                batch: list[list[str]] = []
                for row in reader:
                    batch.append(row)
                    if len(batch) >= BATCH_ROWS:
                        conn.execute("BEGIN IMMEDIATE")
                        conn.executemany(_REFERENCE_INSERT, batch)
                        conn.execute("COMMIT")
                        batch = []
                if batch:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.executemany(_REFERENCE_INSERT, batch)
                    conn.execute("COMMIT")
            elapsed = time.perf_counter() - started
            outcomes.append(conn.execute("SELECT count(*), sum(power_w) FROM readings").fetchone())
        finally:
            conn.close()
            ctx.discard(db)
        return elapsed

    return measure


def import_csv(ctx: Context) -> list[Result]:
    """Time ``import_file`` as ``meterhub import`` calls it (rollups included) on a fresh database."""
    path = ctx.workdir / "import.csv"
    rows, power_sum = write_csv(path, QUICK_ROWS if ctx.quick else ROWS)
    ours: list[tuple[int, float]] = []
    reference: list[tuple[int, float]] = []
    ours_s, reference_s = interleaved(_ours(ctx, path, ours), _reference(ctx, path, reference), ctx.rounds)
    for count, total in ours + reference:
        if count != rows or not math.isclose(total, power_sum, rel_tol=1e-9, abs_tol=1e-6):
            raise RuntimeError(
                f"import_csv: a round stored {count} rows with power summing to {total} W; "
                f"the file holds {rows} rows summing to {power_sum} W"
            )
    check = (
        f"{rows:,} rows a round; ours and the reference each stored all of them with power summing "
        f"to {power_sum:,.3f} W every round"
    )
    return [
        throughput_result(
            "import_csv",
            rows,
            ours_s,
            reference_s,
            f"csv.reader + executemany of the same file into a bare WITHOUT ROWID table keyed "
            f"(meter, ts, phase), fields bound as read, batches of {BATCH_ROWS:,}, WAL, "
            f"synchronous=NORMAL; {METERS} meters, 13 columns of which 6 empty",
            Goal(">=", 1.0),
            check,
        )
    ]
