"""Impossible registers are rejected with a reason on every backend; nothing is clamped.

Every value inside ingest's bounds fits SQLite's fixed-point integers, so what is stored reads
back as it was given.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from meterhub.errors import InputError
from meterhub.ingest import MAX_REGISTER, Ingestor
from meterhub.model import Meter, Reading
from meterhub.store.base import Store
from meterhub.store.sqlite import SQLiteStore

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)


@pytest.fixture
def meter_store(store: Store) -> Store:
    store.add_meter(Meter("m", "file", interval_s=60))
    return store


def at(minute: int, **values: float) -> Reading:
    return Reading("m", T0 + timedelta(minutes=minute), **values)  # type: ignore[arg-type]


def stored(store: Store) -> list[Reading]:
    return list(store.iter_readings(["m"], T0 - timedelta(days=1), NOW, phase=None))


@pytest.mark.parametrize("late", [False, True], ids=["in-order", "late"])
def test_impossible_registers_are_rejected_and_the_rest_stored(meter_store: Store, late: bool) -> None:
    ingestor = Ingestor(meter_store, now=lambda: NOW)
    if late:  # the bad rows then come older than what is stored: the other write path
        ingestor.ingest([at(30, power_w=1.0, energy_import_kwh=12.0)])
    rows = [
        at(0, power_w=500.0, energy_import_kwh=10.0),
        at(1, power_w=500.0, energy_import_kwh=1e17),
        at(2, power_w=500.0, energy_export_kwh=1e300),
        at(3, power_w=500.0, reactive_import_kvarh=-1e300),
        at(4, power_w=500.0, frequency_hz=1e300),
        at(5, power_w=500.0, energy_import_kwh=10.1),
    ]
    report = ingestor.ingest(rows)
    assert (report.stored, report.rejected_count) == (2, 4)
    assert [r.reason for r in report.rejections] == [
        "register energy_import_kwh 1e+17 kWh outside 0..10,000,000,000 kWh",
        "register energy_export_kwh 1e+300 kWh outside 0..10,000,000,000 kWh",
        "register reactive_import_kvarh -1e+300 kvarh outside 0..10,000,000,000 kvarh",
        "frequency 1e+300 Hz outside 0..1000 Hz",
    ]
    kept = {r.ts: r for r in stored(meter_store)}
    assert kept[rows[0].ts] == rows[0] and kept[rows[5].ts] == rows[5]
    assert all(r.ts not in kept for r in rows[1:5])


def test_values_at_their_bounds_are_stored_exactly(meter_store: Store) -> None:
    largest = at(
        0,
        voltage_v=1000.0,
        current_a=-100_000.0,
        power_w=-10_000_000.0,
        reactive_power_var=10_000_000.0,
        power_factor=-1.0,
        frequency_hz=1000.0,
        energy_import_kwh=MAX_REGISTER,
        energy_export_kwh=MAX_REGISTER,
        reactive_import_kvarh=MAX_REGISTER,
        reactive_export_kvarh=MAX_REGISTER,
    )
    precise = at(1, current_a=100_000.0, energy_import_kwh=MAX_REGISTER - 0.000001)
    report = Ingestor(meter_store, now=lambda: NOW).ingest([largest, precise])
    assert (report.stored, report.rejected_count) == (2, 0)
    assert stored(meter_store) == [largest, precise]


@pytest.mark.parametrize("late", [False, True], ids=["in-order", "late"])
def test_sqlite_refuses_a_value_it_cannot_encode_instead_of_clamping(tmp_path: Path, late: bool) -> None:
    store = SQLiteStore(tmp_path / "direct.db")
    try:
        store.add_meter(Meter("m", "file", interval_s=60))
        if late:
            store.write_readings([at(30, power_w=1.0)])
        with pytest.raises(InputError, match=r"reading of meter 'm' at 2026-06-01T12:01:00\+00:00"):
            store.write_readings([at(0, power_w=1.0), at(1, power_w=1.0, energy_import_kwh=1e17)])
        assert store.count_readings("m") == (1 if late else 0)
    finally:
        store.close()
