"""Importing readings decades apart: times before 2000 are rejected with their reason, and a
register decades from its neighbour writes one rollup row per reading."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.cli.conftest import Run

RECENT = "2026-12-01T00:00:00Z"


def import_pair(run: Run, tmp_path: Path, old: str) -> str:
    path = tmp_path / "far.csv"
    path.write_text(f"ts,energy_import_kwh\n{old},1\n{RECENT},2\n")
    result = run("import", str(path), "--meter", "m", ok=False)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.stdout + result.stderr


def rollup_counts(db_url: str) -> dict[str, int]:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("readings", "rollup_15m", "rollup_1h", "rollup_6h", "rollup_day")
        }


@pytest.mark.parametrize(
    ("old", "shown"),
    [
        ("1900-01-01T00:00:00Z", "1900-01-01T00:00:00+00:00"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+00:00"),
    ],
)
def test_a_time_before_2000_is_rejected_with_its_reason(
    run: Run, tmp_path: Path, db_url: str, old: str, shown: str
) -> None:
    out = import_pair(run, tmp_path, old)
    assert "rows read: 2, stored: 1, duplicates: 0, rejected: 1" in out
    reason = f"timestamp {shown} is before 2000-01-01T00:00:00Z, the earliest time meterhub keeps"
    assert f"line 2: {reason}" in out
    assert rollup_counts(db_url) == dict.fromkeys(
        ("readings", "rollup_15m", "rollup_1h", "rollup_6h", "rollup_day"), 1
    )


def test_registers_27_years_apart_write_one_rollup_row_each(run: Run, tmp_path: Path, db_url: str) -> None:
    out = import_pair(run, tmp_path, "2000-01-01T00:00:00Z")
    assert "rows read: 2, stored: 2, duplicates: 0, rejected: 0" in out
    assert rollup_counts(db_url) == dict.fromkeys(
        ("readings", "rollup_15m", "rollup_1h", "rollup_6h", "rollup_day"), 2
    )
