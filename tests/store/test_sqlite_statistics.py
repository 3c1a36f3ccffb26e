"""SQLite keeps its planner statistics right by itself: every opening analyses the tables."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from meterhub.model import Meter, Reading
from meterhub.store import open_store


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
