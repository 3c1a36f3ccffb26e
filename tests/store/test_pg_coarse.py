"""PostgreSQL keeps the same 6-hour and local-day rollups as SQLite, and answers from them alike.

Each test writes the same readings to a SQLite file and to a fresh PostgreSQL schema and compares
``period_sums`` / ``period_power`` on local days, six-hour buckets and months. Hand-worked counts
and energies pin what both must say where a day is 23 or 25 hours long or a late row lands.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import psycopg
import pytest

from meterhub.analytics.calendar import local_boundaries
from meterhub.model import Meter, Reading
from meterhub.store.base import Store, SumField
from meterhub.store.postgres import PostgresStore
from meterhub.store.sqlite import SQLiteStore
from tests.backends import Backend

pytestmark = pytest.mark.postgres

FIELDS: tuple[SumField, ...] = ("energy_import_kwh", "energy_export_kwh", "covered_s", "count")
OSLO = "Europe/Oslo"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """Yield a migrated SQLite store and a migrated PostgreSQL store (its schema dropped after)."""
    lite, pg = Backend("sqlite", tmp_path), Backend("postgres", tmp_path)
    try:
        yield lite.open(), pg.open()
    finally:
        lite.close()
        pg.close()


def _ms(times: Sequence[datetime]) -> npt.NDArray[np.int64]:
    return np.array([int(t.timestamp() * 1000) for t in times], dtype=np.int64)


def _utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def _both(stores: tuple[Store, Store], meter: Meter, readings: Sequence[Reading]) -> None:
    for store in stores:
        store.add_meter(meter)
        store.write_readings(readings)


def _assert_same(stores: tuple[Store, Store], meter_id: str, bounds: npt.NDArray[np.int64]) -> None:
    lite, pg = stores
    want, got = lite.period_sums(meter_id, 0, bounds, FIELDS), pg.period_sums(meter_id, 0, bounds, FIELDS)
    for field in FIELDS:
        np.testing.assert_allclose(got[field], want[field], rtol=1e-9, atol=1e-9, err_msg=field)
    for name, a, b in zip(("count", "avg", "min", "max"), lite.period_power(meter_id, 0, bounds),
                          pg.period_power(meter_id, 0, bounds), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9, err_msg=name)


def _coarse_rows(store: Store, table: str) -> int:
    assert isinstance(store, PostgresStore)
    with psycopg.connect(store._conninfo, options=f"-c search_path={store.schema}") as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def _year(start: datetime, step: timedelta, count: int) -> list[Reading]:
    return [
        Reading("y", start + k * step, power_w=200.0 + (k * 37) % 900, energy_import_kwh=round(k * 0.25, 3))
        for k in range(count)
    ]


def test_a_year_of_days_and_six_hours_equals_sqlite(pair: tuple[Store, Store]) -> None:
    rows = _year(_utc(2025, 12, 31, 23), timedelta(hours=1), 366 * 24)
    _both(pair, Meter("y", "file", tz=OSLO, interval_s=3600), rows)
    days = _ms(local_boundaries(_utc(2025, 12, 31, 23), _utc(2026, 12, 31, 23), OSLO, "day"))
    assert len(days) == 366
    _assert_same(pair, "y", days)
    six = _ms([_utc(2026, 1, 1) + k * timedelta(hours=6) for k in range(4 * 365 + 1)])
    _assert_same(pair, "y", six)
    months = _ms(local_boundaries(_utc(2025, 12, 31, 23), _utc(2026, 12, 31, 23), OSLO, "month"))
    _assert_same(pair, "y", months)
    lite, pg = pair
    assert isinstance(lite, SQLiteStore) and isinstance(pg, PostgresStore)
    for bounds in (days, six):
        want, got = lite.period_figures("y", 0, bounds), pg.period_figures("y", 0, bounds)
        assert set(got) == set(want)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-9, atol=1e-9, err_msg=name)
    # 8,784 hours: the 365 local days of 2026 and 1 January 2027, so 366 day rows; UTC 6-hour
    # buckets from 31 December 2025 18:00 to 1 January 2027 18:00, 366 days apart: 1,465 rows.
    assert _coarse_rows(pair[1], "rollup_day") == 366
    assert _coarse_rows(pair[1], "rollup_6h") == 1465
    # Each hourly reading adds 0.25 kWh: a whole (24-hour) local day in June holds 6 kWh.
    june = _ms([_utc(2026, 6, 9, 22), _utc(2026, 6, 10, 22)])
    assert pair[1].period_sums("y", 0, june, ["energy_import_kwh", "count"])["count"].tolist() == [24.0]
    assert pair[1].period_sums("y", 0, june, ["energy_import_kwh"])["energy_import_kwh"][0] == (
        pytest.approx(6.0)
    )


def test_dst_days_hold_23_and_25_hours_on_both(pair: tuple[Store, Store]) -> None:
    spring = [Reading("d", _utc(2026, 3, 28, 23) + k * timedelta(minutes=15), power_w=100.0,
                      energy_import_kwh=k * 0.01) for k in range(4 * 24)]
    autumn = [Reading("d", _utc(2026, 10, 24, 22) + k * timedelta(minutes=15), power_w=100.0,
                      energy_import_kwh=10 + k * 0.01) for k in range(4 * 26)]
    _both(pair, Meter("d", "file", tz=OSLO, interval_s=900), [*spring, *autumn])
    # Oslo's 29 March runs 23:00 UTC to 22:00 UTC (23 h); 25 October 22:00 to 23:00 UTC (25 h).
    bounds = _ms([_utc(2026, 3, 28, 23), _utc(2026, 3, 29, 22)])
    fall = _ms([_utc(2026, 10, 24, 22), _utc(2026, 10, 25, 23)])
    for store in pair:
        assert store.period_sums("d", 0, bounds, ["count"])["count"].tolist() == [92.0]
        assert store.period_sums("d", 0, fall, ["count"])["count"].tolist() == [100.0]
    days = _ms(local_boundaries(_utc(2026, 3, 27, 23), _utc(2026, 10, 26, 23), OSLO, "day"))
    _assert_same(pair, "d", days)


def test_a_late_row_changes_its_day_on_both(pair: tuple[Store, Store]) -> None:
    start = _utc(2026, 5, 1, 22)  # local midnight in Oslo (UTC+2)
    rows = [Reading("l", start + k * timedelta(hours=1), power_w=50.0, energy_import_kwh=float(k))
            for k in range(72) if k != 30]
    _both(pair, Meter("l", "file", tz=OSLO, interval_s=3600), rows)
    days = _ms([start + k * timedelta(days=1) for k in range(4)])
    for store in pair:
        assert store.period_sums("l", 0, days, ["count"])["count"].tolist() == [24.0, 23.0, 24.0]
        late = Reading("l", start + timedelta(hours=30), power_w=50.0, energy_import_kwh=30.0)
        store.write_readings([late])
        assert store.period_sums("l", 0, days, ["count"])["count"].tolist() == [24.0, 24.0, 24.0]
    _assert_same(pair, "l", days)
    _assert_same(pair, "l", _ms([start + k * timedelta(hours=6) for k in range(13)]))


def test_a_zone_change_moves_the_days_on_both(pair: tuple[Store, Store]) -> None:
    rows = [Reading("z", _utc(2026, 7, 1) + k * timedelta(minutes=30), power_w=10.0 * (k % 7),
                    energy_import_kwh=k * 0.5) for k in range(48 * 3)]
    _both(pair, Meter("z", "file", tz=OSLO, interval_s=1800), rows)
    # Oslo's July days begin at 22:00 UTC: 1 July 00:00 to 22:00 UTC holds 44 readings.
    oslo_days = _ms([_utc(2026, 6, 30, 22) + k * timedelta(days=1) for k in range(5)])
    for store in pair:
        assert store.period_sums("z", 0, oslo_days, ["count"])["count"].tolist() == [44.0, 48.0, 48.0, 4.0]
        store.update_meter(Meter("z", "file", tz="America/New_York", interval_s=1800))
    # New York's days begin at 04:00 UTC in July: the first holds 1 July 04:00 to 2 July 04:00.
    days = _ms([_utc(2026, 6, 30, 4) + k * timedelta(days=1) for k in range(5)])
    for store in pair:
        assert store.period_sums("z", 0, days, ["count"])["count"].tolist() == [8.0, 48.0, 48.0, 40.0]
    _assert_same(pair, "z", days)
    assert _coarse_rows(pair[1], "rollup_day") == 4


def test_migration_fills_and_removal_clears_the_coarse_rows(tmp_path: Path) -> None:
    rows = _year(_utc(2026, 3, 27), timedelta(minutes=20), 3 * 72)
    meter = Meter("y", "file", tz=OSLO, interval_s=1200)
    old_backend, lite_backend = Backend("postgres", tmp_path), Backend("sqlite", tmp_path)
    try:
        old = old_backend.open(migrate=False)
        # An older meterhub wrote the readings; migrations up to 0005 built the fine rollups.
        old.migrate_to("0001_core")
        old.add_meter(meter)
        old_backend.insert_raw("y", rows)
        old.migrate_to("0005_users_keys_shares")
        applied = old.migrate()
        assert applied[:2] == ["0006_coarse_rollups", "0007_extra_rollups"]
        assert "0009_compact_pg_readings" in applied
        lite = lite_backend.open()
        lite.add_meter(meter)
        lite.write_readings(rows)
        days = _ms(local_boundaries(_utc(2026, 3, 26, 23), _utc(2026, 3, 30, 22), OSLO, "day"))
        _assert_same((lite, old), "y", days)
        assert _coarse_rows(old, "rollup_day") == 4  # 27 March (from 01:00 local) to 30 March
        assert _coarse_rows(old, "rollup_6h") == 12
        old.remove_meter("y")
        assert _coarse_rows(old, "rollup_day") == 0
        assert _coarse_rows(old, "rollup_6h") == 0
    finally:
        old_backend.close()
        lite_backend.close()
