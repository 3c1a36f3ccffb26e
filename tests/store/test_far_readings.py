"""A reading far from its neighbours costs a bounded number of rollup rows, on every backend.

An interval longer than 92 days spreads nothing: its energy is unknown and it covers no time,
while its gap event is kept. The tests count the rollup rows written, never the time taken.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from meterhub.model import Meter, Reading
from meterhub.store.base import Store
from meterhub.store.fastpath import SeriesBatch, rollup_batch
from meterhub.store.rollup import MAX_SPREAD_MS, RollupBuilder, Row, SeriesState
from tests.backends import Backend

Y2000 = datetime(2000, 1, 1, tzinfo=UTC)
DEC_2026 = datetime(2026, 12, 1, tzinfo=UTC)
SPREAD = timedelta(milliseconds=MAX_SPREAD_MS)

_ENERGY_COLUMN = {"sqlite": ("e_imp", 1e9), "postgres": ("energy_import", 1e9)}


def rollup_rows(backend: Backend, table: str) -> tuple[int, float]:
    """Return how many rows ``table`` holds and the import energy they sum to, in kWh."""
    column, scale = _ENERGY_COLUMN[backend.name]
    query = f"SELECT count(*), coalesce(sum({column}), 0) FROM {table}"
    if backend.name == "sqlite":
        with sqlite3.connect(backend.sqlite_path) as conn:
            count, energy = conn.execute(query).fetchone()
    else:
        with psycopg.connect(backend.postgres_url, options=f"-c search_path={backend.schema}") as pg:
            row = pg.execute(query).fetchone()
            assert row is not None
            count, energy = row
    return int(count), float(energy) / scale


def tables(backend: Backend) -> tuple[str, ...]:
    if backend.name == "postgres":
        return ("rollup_15m",)  # PostgreSQL merges its hourly rollups from these when read
    return ("rollup_15m", "rollup_1h", "rollup_6h", "rollup_day")


def reading(ts: datetime, register_kwh: float) -> Reading:
    return Reading("m", ts, power_w=500.0, energy_import_kwh=register_kwh)


@pytest.fixture
def meter_store(store: Store) -> Store:
    store.add_meter(Meter("m", "file", interval_s=60))
    return store


@pytest.mark.parametrize("apart", [SPREAD + timedelta(minutes=15), DEC_2026 - Y2000])
@pytest.mark.parametrize("one_write", [True, False], ids=["one-write", "two-writes"])
def test_readings_far_apart_write_one_bucket_each(
    backend: Backend, meter_store: Store, apart: timedelta, one_write: bool
) -> None:
    first, second = reading(DEC_2026 - apart, 1.0), reading(DEC_2026, 2.0)
    if one_write:
        meter_store.write_readings([first, second])
    else:
        meter_store.write_readings([first])
        meter_store.write_readings([second])
    for table in tables(backend):
        assert rollup_rows(backend, table) == (2, 0.0), table
    gaps = meter_store.gaps("m", first.ts, second.ts)
    assert [(g.start, g.end) for g in gaps] == [(first.ts, second.ts)]


def test_an_interval_of_the_longest_spread_is_still_spread(backend: Backend, meter_store: Store) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    meter_store.write_readings([reading(start, 1.0), reading(start + SPREAD, 2.0)])
    quarters = MAX_SPREAD_MS // 900_000
    count, energy_kwh = rollup_rows(backend, "rollup_15m")
    assert count == quarters + 1  # every quarter the interval crosses, and the second reading's
    assert energy_kwh == pytest.approx(1.0, abs=1e-5)  # each quarter rounds to 1 µWh


def test_a_reading_decades_older_arriving_late_rebuilds_little(
    backend: Backend, meter_store: Store
) -> None:
    recent = [reading(DEC_2026 - timedelta(minutes=1), 1.0), reading(DEC_2026, 1.01)]
    meter_store.write_readings(recent)
    meter_store.write_readings([reading(Y2000, 0.5)])  # older than everything: the late path
    meter_store.write_readings([reading(datetime(2013, 6, 1, tzinfo=UTC), 0.7)])  # between
    for table in tables(backend):
        count, energy_kwh = rollup_rows(backend, table)
        assert count <= 4, table
        assert energy_kwh == pytest.approx(0.01), table
    assert meter_store.count_readings("m") == 4
    assert len(meter_store.gaps("m", Y2000, DEC_2026)) == 2


def test_buckets_before_1970_keep_their_meter(backend: Backend, meter_store: Store) -> None:
    meter_store.add_meter(Meter("n", "file", interval_s=60))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    meter_store.write_readings(
        [
            Reading("n", epoch - timedelta(minutes=20), power_w=100.0, energy_import_kwh=3.0),
            Reading("n", epoch + timedelta(minutes=10), power_w=100.0, energy_import_kwh=3.05),
        ]
    )
    hour = meter_store.aggregate("n", 0, [epoch - timedelta(hours=1), epoch + timedelta(hours=1)])
    assert hour[0].count == 2
    assert hour[0].energy_import_kwh == pytest.approx(0.05)
    assert meter_store.aggregate("m", 0, [epoch - timedelta(hours=1), epoch])[0].count == 0


def test_the_fast_path_and_the_builder_agree_on_far_intervals() -> None:
    times = [-2_208_988_800_000]  # 1900-01-01
    for step in (60_000, MAX_SPREAD_MS + 1, MAX_SPREAD_MS, 900_000, 27 * 365 * 86_400_000):
        times.append(times[-1] + step)
    rows = [Row(t, 100.0, 230.0, 1.0, float(k), None) for k, t in enumerate(times)]
    builder = RollupBuilder()
    state = builder.feed(SeriesState(), rows, 120_000, True)
    expected, gaps = builder.take()
    batch = SeriesBatch(
        keys=np.full(len(rows), 5, dtype=np.int64),
        ts_ms=np.array(times, dtype=np.int64),
        power_w=np.full(len(rows), 100.0),
        voltage_v=np.full(len(rows), 230.0),
        current_a=np.full(len(rows), 1.0),
        import_kwh=np.arange(len(rows), dtype=np.float64),
        export_kwh=np.full(len(rows), np.nan),
        gap_ms=np.full(len(rows), 120_000, dtype=np.int64),
        track_gaps=np.ones(len(rows), dtype=bool),
    )
    rollups, batch_gaps, states = rollup_batch(batch, {})
    got = {
        (int(w), int(b)): (int(n), float(e))
        for w, k, b, n, e in zip(
            rollups.width_ms, rollups.keys, rollups.bucket_ms, rollups.n, rollups.e_imp, strict=True
        )
        if k == 5
    }
    assert len(got) == len(rollups.keys)  # every bucket kept its series
    assert set(got) == set(expected)
    for key, agg in expected.items():
        assert got[key] == (agg.n, pytest.approx(agg.e_imp, abs=1e-12)), key
    assert batch_gaps == [(5, a, b) for a, b in gaps] and states == {5: state}
    quarters = MAX_SPREAD_MS // 900_000
    assert len(expected) < 2 * (quarters + quarters // 4)  # one interval of 92 days, not decades
    assert sum(agg.e_imp for (w, _), agg in expected.items() if w == 900_000) == pytest.approx(3.0)
