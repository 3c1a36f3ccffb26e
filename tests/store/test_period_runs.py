"""Periods that each hold the same number of whole rollup rows (hours of four quarters, two-hour
periods of eight) fold as runs; the figures must equal ``aggregate`` over the same edges, as the
folds of uneven periods do."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from meterhub.model import Meter, Reading
from meterhub.store.sqlite import SQLiteStore
from meterhub.store.sqlite_periods import FIGURE_FIELDS
from meterhub.timeutil import to_ms

START = datetime(2026, 1, 12, tzinfo=UTC)
HOURS = 30


def _readings() -> list[Reading]:
    readings = []
    for k in range(HOURS * 60):  # every minute: every quarter of every hour holds readings
        quarter = k // 15
        readings.append(
            Reading(
                "m",
                START + timedelta(minutes=k),
                0,
                voltage_v=None if k % 4 == 0 else 230.0 + k % 9 / 10,
                current_a=1.0 + k % 5 / 10,
                power_w=None if quarter % 7 == 3 else -400.0 + k % 23 * 61.5,  # a quarter without power
                energy_import_kwh=round(50 + k * 0.004, 6),
                energy_export_kwh=round(10 + k * 0.001, 6) if quarter % 2 else None,
            )
        )
    return readings


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteStore]:
    path: Path = tmp_path_factory.mktemp("runs") / "hub.db"
    store = SQLiteStore(path)
    try:
        store.add_meter(Meter("m", "file", tz="Europe/Oslo", interval_s=60))
        store.write_readings(_readings())
        yield store
    finally:
        store.close()


def _same(got: float, want: float | None) -> bool:
    if want is None:
        return math.isnan(got)
    return not math.isnan(got) and got == pytest.approx(want, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize(
    ("width", "periods"), [(timedelta(hours=1), HOURS), (timedelta(hours=2), HOURS // 2)]
)
def test_periods_of_whole_runs_equal_aggregate(store: SQLiteStore, width: timedelta, periods: int) -> None:
    edges = [START + k * width for k in range(periods + 1)]
    figures = store.period_figures("m", 0, np.array([to_ms(e) for e in edges], dtype=np.int64), FIGURE_FIELDS)
    buckets = store.aggregate("m", 0, edges, with_registers=False)
    assert len(buckets) == periods
    for k, bucket in enumerate(buckets):
        for name in FIGURE_FIELDS:
            got, want = float(figures[name][k]), getattr(bucket, name)
            assert _same(got, want), f"{width}[{k}] {name}: {got} != {want}"
    assert all(b.count == 60 * width / timedelta(hours=1) for b in buckets)
    assert any(b.power_min_w is not None and b.power_min_w < 0 < (b.power_max_w or 0) for b in buckets)


def test_a_period_with_a_missing_quarter_folds_as_before(store: SQLiteStore) -> None:
    # Edges reaching past the readings: the last hour holds no rows, so the periods are uneven.
    edges = [START + k * timedelta(hours=1) for k in range(HOURS + 2)]
    figures = store.period_figures("m", 0, np.array([to_ms(e) for e in edges], dtype=np.int64), FIGURE_FIELDS)
    assert figures["count"].tolist() == [60.0] * HOURS + [0.0]
    assert math.isnan(figures["power_avg_w"][-1]) and math.isnan(figures["power_min_w"][-1])
