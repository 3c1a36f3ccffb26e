"""Period figures where readings lack some values: the stored power, voltage and current counts.

A rollup row stores a value's count only where it differs from the row's reading count; the period
reads put every stored count back in its row. Hours, quarters, six-hour periods and local days
read this way must equal ``aggregate`` over the same edges, on both backends.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from meterhub.analytics.calendar import local_boundaries
from meterhub.model import Meter, Reading
from meterhub.store.base import Store
from meterhub.store.sqlite_periods import FIGURE_FIELDS
from meterhub.timeutil import to_ms
from tests.backends import Backend

START = datetime(2026, 3, 27, 22, tzinfo=UTC)
DAYS = 3
SILENT = (START + timedelta(hours=7, minutes=20), START + timedelta(hours=9, minutes=40))


def _readings() -> list[Reading]:
    readings = []
    for k in range(DAYS * 24 * 20):  # one every 3 minutes
        ts = START + timedelta(minutes=3 * k)
        if SILENT[0] <= ts < SILENT[1]:
            continue
        readings.append(
            Reading(
                "m",
                ts,
                0,
                voltage_v=None if k % 3 == 0 else 229.0 + k % 11 / 10,
                current_a=None if k % 7 == 0 else 1.0 + k % 13 / 10,
                power_w=None if k % 5 == 0 or 200 <= k < 220 else 150.0 + k % 17 * 40,
                energy_import_kwh=round(100 + k * 0.01, 6),
            )
        )
    return readings


def _store(backend: Backend) -> Store:
    store = backend.open()
    store.add_meter(Meter("m", "file", tz="Europe/Oslo", interval_s=180))
    store.write_readings(_readings())
    return store


def _edges() -> dict[str, list[datetime]]:
    end = START + timedelta(days=DAYS)
    return {
        "hours": [START + k * timedelta(hours=1) for k in range(DAYS * 24 + 1)],
        "quarters": [START + k * timedelta(minutes=15) for k in range(4 * 14 + 1)],
        "six_hours": [START + timedelta(hours=2) + k * timedelta(hours=6) for k in range(11)],
        "local_days": local_boundaries(START, end, "Europe/Oslo", "day"),
        "two_hours_from_a_gap": [SILENT[0].replace(minute=0) + k * timedelta(hours=2) for k in range(5)],
    }


def _same(got: float, want: float | None) -> bool:
    if want is None:
        return math.isnan(got)
    return not math.isnan(got) and got == pytest.approx(want, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("case", list(_edges()))
def test_figures_with_missing_values_equal_aggregate(backend: Backend, case: str) -> None:
    store = _store(backend)
    edges = _edges()[case]
    figures = store.period_figures("m", 0, np.array([to_ms(e) for e in edges], dtype=np.int64), FIGURE_FIELDS)
    buckets = store.aggregate("m", 0, edges, with_registers=False)
    assert len(buckets) == len(edges) - 1
    checked = 0
    for k, bucket in enumerate(buckets):
        for name in FIGURE_FIELDS:
            want = getattr(bucket, name)
            got = float(figures[name][k])
            assert _same(got, want), f"{case}[{k}] {bucket.start.isoformat()} {name}: {got} != {want}"
            checked += want is not None
    # Every kind of row is in there: partial counts, no power at all, an empty bucket.
    assert checked > len(buckets) * 8
    if case in ("hours", "quarters"):
        assert any(b.count > 0 and b.power_avg_w is None for b in buckets)
        assert any(b.count == 0 for b in buckets)
    averages = [b.voltage_avg_v for b in buckets if b.voltage_avg_v is not None]
    assert averages and all(229.0 <= v <= 230.0 for v in averages)
