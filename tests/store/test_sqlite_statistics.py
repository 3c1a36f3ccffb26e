"""SQLite keeps its planner statistics right by itself: every opening analyses the tables."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from meterhub.importer import BIG_IMPORT_ROWS, import_file
from meterhub.model import Meter, Reading
from meterhub.store import open_store
from meterhub.store.postgres import PostgresStore
from meterhub.store.sqlite import SQLiteStore
from tests.backends import Backend


def _stat_rows(path: Path, table: str) -> int:
    """Return the row count the planner's statistics hold for ``table`` (0 when none)."""
    with sqlite3.connect(path) as conn:
        found = conn.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = ?", (table,)).fetchall()
    return max((int(str(stat).split()[0]) for (stat,) in found), default=0)


def test_statistics_follow_the_data_from_one_opening_to_the_next(tmp_path: Path) -> None:
    path = tmp_path / "stats.db"
    store = open_store(f"sqlite:///{path}")
    store.add_meter(Meter("m", "file"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert _stat_rows(path, "readings") == 0  # analysed while empty
    store.write_readings([Reading("m", start + timedelta(minutes=i), power_w=float(i)) for i in range(3000)])
    store.close()
    assert _stat_rows(path, "readings") == 0  # not yet: statistics of the empty file
    open_store(f"sqlite:///{path}").close()
    assert 2000 <= _stat_rows(path, "readings") <= 4000  # sampled: an estimate near 3000
    assert _stat_rows(path, "meters") == 1


PG_ESTIMATE = (
    "SELECT coalesce(sum(c.reltuples), 0) FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid "
    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'samples' "
    "AND c.relnamespace = to_regnamespace(current_schema())::oid"
)
"""The planner's row estimate of this schema's raw-reading partitions (-1 each before any ANALYZE)."""


def _pg_readings_estimate(conn: Any) -> int:
    row = conn.execute(PG_ESTIMATE).fetchone()
    assert row is not None
    return int(row[0])


def test_a_big_import_refreshes_the_statistics_on_both_backends(backend: Backend, tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    lines = (f"big,{(start + timedelta(minutes=i)).isoformat()},{i % 700}" for i in range(BIG_IMPORT_ROWS))
    rows.write_text("meter,ts,power_w\n" + "\n".join(lines) + "\n", encoding="utf-8")
    store = backend.open()
    assert import_file(store, rows, None).stored == BIG_IMPORT_ROWS
    if isinstance(store, SQLiteStore):
        estimate = _stat_rows(Path(store.path), "readings")
    else:
        assert isinstance(store, PostgresStore)
        estimate = store._transaction(_pg_readings_estimate)
    assert BIG_IMPORT_ROWS * 2 // 3 <= estimate <= BIG_IMPORT_ROWS * 4 // 3
