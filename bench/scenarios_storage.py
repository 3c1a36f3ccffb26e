"""Bytes on disk per raw phase-row and the rollups' share, from dbstat after VACUUM."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bench.fixtures import Context
from bench.harness import Goal, Result

__all__ = ["storage"]

RAW_GOAL = Goal("<=", 84, "bytes/row")
ROLLUP_SHARE_GOAL = Goal("<=", 0.10)
ROLLUP_TABLES = ("rollup_15m", "rollup_6h", "rollup_day")
"""Every rollup table SQLite keeps (hourly rollups are a view over the 15-minute table)."""
_REFERENCE_TABLE = (
    "CREATE TABLE ref (meter INTEGER NOT NULL, ts INTEGER NOT NULL, v REAL, i REAL, p REAL, "
    "pf REAL, f REAL, ei REAL, PRIMARY KEY (meter, ts)) WITHOUT ROWID"
)


def table_bytes(conn: sqlite3.Connection, table: str) -> int:
    """Return the bytes of every b-tree of ``table`` (the table and its indexes), from dbstat."""
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_schema WHERE tbl_name = ? AND type IN ('table', 'index')", (table,)
    )]
    placeholders = ", ".join("?" * len(names))
    row = conn.execute(
        f"SELECT sum(pgsize) FROM dbstat WHERE name IN ({placeholders})", names
    ).fetchone()
    return int(row[0] or 0)


def _vacuumed_copy(source: Path, target: Path) -> sqlite3.Connection:
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target, isolation_level=None)
    try:
        src.backup(dst)
    finally:
        src.close()
    dst.execute("VACUUM")
    return dst


def _reference_bytes_per_row(ctx: Context) -> float:
    series = ctx.year.series
    conn = sqlite3.connect(ctx.fresh_path("storage-ref"), isolation_level=None)
    try:
        conn.execute(_REFERENCE_TABLE)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO ref VALUES (1, ?, ?, ?, ?, ?, ?, ?)", zip(
            series.ts_ms.tolist(), series.voltage_v.tolist(), series.current_a.tolist(),
            series.power_w.tolist(), series.power_factor.tolist(), series.frequency_hz.tolist(),
            series.import_kwh.tolist(), strict=True,
        ))
        conn.execute("COMMIT")
        conn.execute("VACUUM")
        return table_bytes(conn, "ref") / series.ts_ms.size
    finally:
        conn.close()


def storage(ctx: Context) -> list[Result]:
    """Measure raw bytes per phase-row and rollup bytes against the 6-REAL reference layout."""
    year = ctx.year
    conn = _vacuumed_copy(year.path, ctx.fresh_path("storage"))
    try:
        kept = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'rollup%'"
        )}
        if kept != set(ROLLUP_TABLES):
            raise RuntimeError(f"storage: rollup tables {sorted(kept)}, expected {sorted(ROLLUP_TABLES)}")
        rows = int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])
        raw_per_row = table_bytes(conn, "readings") / rows
        rollup_per_row = sum(table_bytes(conn, table) for table in ROLLUP_TABLES) / rows
    finally:
        conn.close()
    reference_per_row = _reference_bytes_per_row(ctx)
    raw_ratio = raw_per_row / reference_per_row
    share = rollup_per_row / raw_per_row
    check = f"{rows:,} 1-phase rows at 1-minute interval, after VACUUM"
    return [
        Result(
            "storage_bytes", "bytes/row", raw_per_row, reference_per_row,
            "WITHOUT ROWID (meter, ts, 6 REAL) table of the same rows, built and VACUUMed in this "
            "run; dbstat bytes per row (goal is on the value)",
            raw_ratio, RAW_GOAL.text(), RAW_GOAL.met(raw_per_row), raw_ratio, raw_ratio, check,
        ),
        Result(
            "storage_rollup_share", "bytes/row", rollup_per_row, raw_per_row,
            "our raw readings table's bytes per row; value is the 15-minute, 6-hour and day rollups' "
            "bytes per raw row (hours are a view over the 15-minute table), ratio their share",
            share, ROLLUP_SHARE_GOAL.text(), ROLLUP_SHARE_GOAL.met(share), share, share, check,
        ),
    ]
