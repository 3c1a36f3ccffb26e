"""The Store contract: one suite, run against every backend (see conftest.py).

Every expected number below is worked out by hand in the comment beside it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from meterhub.errors import ConflictError, InputError, UnknownMeterError
from meterhub.model import Extra, Gap, IntervalEnergy, Meter, Reading
from meterhub.store.base import Bucket, Store, WriteResult

if TYPE_CHECKING:
    from tests.backends import Backend

T0 = datetime(2026, 3, 2, tzinfo=UTC)
"""A Monday, 00:00 UTC; ``at(minutes)`` counts from here."""

ALL_MIGRATIONS = [
    "0001_core",
    "0002_rollups_and_gaps",
    "0003_kv_intervals_extras",
    "0004_places_prices_health",
    "0005_users_keys_shares",
    "0006_coarse_rollups",
    "0007_extra_rollups",
    "0008_work_leases",
    "0009_compact_pg_readings",
    "0010_compact_rollups",
]
"""Both backends apply the same migrations, in the same order."""


def all_migrations(store: Store) -> list[str]:
    """Return the migrations a fully migrated store of this backend has applied."""
    return list(ALL_MIGRATIONS)


def at(minutes: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def check(bucket: Bucket, **expected: object) -> None:
    """Assert bucket fields: floats to 1e-9 (energy to 2e-9: SQLite keeps whole microwatt-hours per
    15 minutes, and an hour adds four), everything else exactly."""
    for name, want in expected.items():
        got = getattr(bucket, name)
        if isinstance(want, float):
            assert got == pytest.approx(want, rel=1e-9, abs=2e-9 if name.startswith("energy") else 1e-9), name
        else:
            assert got == want, name


def rollups_15m(store: Store, meter_id: str, hours: float = 1, phase: int = 0) -> list[Bucket]:
    return store.rollups(meter_id, phase, T0, T0 + timedelta(hours=hours), 900)


# --- meters --------------------------------------------------------------------------------


def test_meters_add_get_list(store: Store) -> None:
    grid = Meter(
        "b-meter",
        "iammeter",
        phases=3,
        tz="Europe/Oslo",
        interval_s=300,
        name="Grid",
        options={"sn": "ABC123", "token": "env:IAM_TOKEN"},
    )
    store.add_meter(grid)
    store.add_meter(Meter("a-meter", "file"))
    store.add_meter(Meter("B-meter", "file"))
    assert store.get_meter("b-meter") == grid
    # Ordered by id as code points: upper case sorts before lower case on both backends.
    assert [m.id for m in store.list_meters()] == ["B-meter", "a-meter", "b-meter"]


def test_add_existing_meter_conflicts(store: Store) -> None:
    store.add_meter(Meter("m", "iammeter"))
    with pytest.raises(ConflictError, match="'m'"):
        store.add_meter(Meter("m", "umeter"))
    assert store.get_meter("m").vendor == "iammeter"


def test_update_meter_replaces_settings(store: Store) -> None:
    store.add_meter(Meter("m", "iammeter", interval_s=60))
    changed = Meter(
        "m", "iammeter", phases=3, tz="Europe/Oslo", interval_s=300, name="Main", options={"sn": "X9"}
    )
    store.update_meter(changed)
    assert store.get_meter("m") == changed
    with pytest.raises(UnknownMeterError):
        store.update_meter(Meter("ghost", "file"))


def test_unknown_meter_raises_everywhere(store: Store) -> None:
    with pytest.raises(UnknownMeterError) as raised:
        store.get_meter("ghost")
    assert raised.value.meter_id == "ghost"
    for call in (
        lambda: store.count_readings("ghost"),
        lambda: store.rollups("ghost", 0, at(0), at(60), 900),
        lambda: store.aggregate("ghost", 0, [at(0), at(60)]),
        lambda: store.downsample_raw("ghost", 0, at(0), at(60), 600),
        lambda: store.gaps("ghost", at(0), at(60)),
        lambda: store.intervals("ghost", at(0), at(60)),
        lambda: store.extras("ghost", "rssi_dbm", at(0), at(60)),
        lambda: store.iter_readings(["ghost"], at(0), at(60)),
        lambda: store.remove_meter("ghost"),
    ):
        with pytest.raises(UnknownMeterError):
            call()


def test_remove_meter_removes_all_its_data(store: Store) -> None:
    store.add_meter(Meter("a", "file", interval_s=60))
    store.add_meter(Meter("b", "file", interval_s=60))
    # a: three rows with a gap (1 -> 10 min); b: two rows.
    store.write_readings(
        [Reading("a", at(m), power_w=100.0, energy_import_kwh=1.0 + m / 100) for m in (0, 1, 10)]
    )
    store.write_readings([Reading("b", at(m), power_w=50.0) for m in (0, 1)])
    store.write_intervals([IntervalEnergy("a", at(0), at(15), 0.1, 0.0, "umeter")])
    store.write_extras([Extra("a", at(0), "rssi_dbm", -60.0)])
    assert len(store.gaps("a", at(0), at(60))) == 1

    assert store.remove_meter("a") == 3
    with pytest.raises(UnknownMeterError):
        store.get_meter("a")
    assert store.count_readings() == 2
    assert [r.meter for r in store.latest()] == ["b"]

    store.add_meter(Meter("a", "file", interval_s=60))  # the same id again starts empty
    assert store.count_readings("a") == 0
    assert store.latest(["a"]) == []
    assert rollups_15m(store, "a") == []
    assert store.gaps("a", at(0), at(60)) == []
    assert store.intervals("a", at(0), at(60)) == []
    assert store.extras("a", "rssi_dbm", at(0), at(60)) == []


# --- idempotent writes ---------------------------------------------------------------------


def test_write_of_unknown_meter_stores_nothing(store: Store) -> None:
    store.add_meter(Meter("m", "file"))
    with pytest.raises(UnknownMeterError) as raised:
        store.write_readings([Reading("m", at(0), power_w=1.0), Reading("ghost", at(0), power_w=1.0)])
    assert raised.value.meter_id == "ghost"
    assert store.count_readings() == 0
    assert store.latest() == []


def test_second_write_of_same_rows_counts_duplicates(store: Store) -> None:
    store.add_meter(Meter("m", "file", interval_s=60))
    rows = [Reading("m", at(m), power_w=100.0, energy_import_kwh=1.0 + m / 1000) for m in (0, 1, 2)]
    assert store.write_readings(rows) == WriteResult(3, 0)
    assert store.write_readings(rows) == WriteResult(0, 3)
    # One old row and one new row: the old one is a duplicate.
    assert store.write_readings(
        [rows[1], Reading("m", at(3), power_w=100.0, energy_import_kwh=1.003)]
    ) == WriteResult(1, 1)
    assert store.count_readings("m") == 4
    (bucket,) = rollups_15m(store, "m")
    # Four rows, three register steps of 0.001 kWh, three covered minutes: nothing doubled.
    check(bucket, count=4, energy_import_kwh=0.003, covered_s=180.0)


def test_duplicate_inside_one_batch_keeps_the_first(store: Store) -> None:
    store.add_meter(Meter("m", "file", interval_s=60))
    batch = [
        Reading("m", at(0), power_w=100.0),
        Reading("m", at(0), power_w=999.0),
        Reading("m", at(1), power_w=200.0),
    ]
    assert store.write_readings(batch) == WriteResult(2, 1)
    # The same inside a batch of late rows.
    late = [Reading("m", at(0, 30), power_w=50.0), Reading("m", at(0, 30), power_w=60.0)]
    assert store.write_readings(late) == WriteResult(1, 1)
    powers = [r.power_w for r in store.iter_readings(["m"], at(0), at(2))]
    assert powers == [100.0, 50.0, 200.0]
    (bucket,) = rollups_15m(store, "m")
    check(bucket, count=3, power_max_w=200.0, power_min_w=50.0, power_avg_w=350.0 / 3)


# --- rollups -------------------------------------------------------------------------------

# Meter "m", one reading every 5 minutes (a gap is anything longer than 10 minutes).
CASE_A = [
    Reading(
        "m",
        at(5),
        power_w=1000.0,
        voltage_v=230.0,
        current_a=4.0,
        energy_import_kwh=100.0,
        energy_export_kwh=5.0,
    ),
    Reading(
        "m",
        at(10),
        power_w=2000.0,
        voltage_v=232.0,
        current_a=8.0,
        energy_import_kwh=100.1,
        energy_export_kwh=5.0,
    ),
    # 10 -> 20 min is exactly twice the interval: covered, not a gap; its 0.3 kWh crosses the
    # 00:15 edge and is pro-rated 0.15 / 0.15.
    Reading(
        "m",
        at(20),
        power_w=500.0,
        voltage_v=229.0,
        current_a=2.0,
        energy_import_kwh=100.4,
        energy_export_kwh=5.0,
    ),
    Reading(
        "m",
        at(25),
        power_w=-1000.0,
        voltage_v=235.0,
        current_a=4.5,
        energy_import_kwh=100.4,
        energy_export_kwh=5.05,
    ),
]


def check_case_a(store: Store) -> None:
    first, second = rollups_15m(store, "m")
    check(
        first,
        start=at(0),
        end=at(15),
        count=2,
        power_avg_w=1500.0,
        power_min_w=1000.0,
        power_max_w=2000.0,
        voltage_avg_v=231.0,
        voltage_min_v=230.0,
        voltage_max_v=232.0,
        current_avg_a=6.0,
        first_ts=at(5),
        first_import_kwh=100.0,
        first_export_kwh=5.0,
        last_ts=at(10),
        last_import_kwh=100.1,
        last_export_kwh=5.0,
        energy_import_kwh=0.1 + 0.15,
        energy_export_kwh=0.0,
        covered_s=300.0 + 300.0,
    )
    check(
        second,
        start=at(15),
        end=at(30),
        count=2,
        power_avg_w=-250.0,
        power_min_w=-1000.0,
        power_max_w=500.0,
        voltage_avg_v=232.0,
        voltage_min_v=229.0,
        voltage_max_v=235.0,
        current_avg_a=3.25,
        first_ts=at(20),
        first_import_kwh=100.4,
        first_export_kwh=5.0,
        last_ts=at(25),
        last_import_kwh=100.4,
        last_export_kwh=5.05,
        energy_import_kwh=0.15,
        energy_export_kwh=0.05,
        covered_s=300.0 + 300.0,
    )
    (hour,) = store.rollups("m", 0, T0, at(60), 3600)
    check(
        hour,
        start=at(0),
        end=at(60),
        count=4,
        power_avg_w=625.0,
        power_min_w=-1000.0,
        power_max_w=2000.0,
        voltage_avg_v=231.5,
        voltage_min_v=229.0,
        voltage_max_v=235.0,
        current_avg_a=4.625,
        first_ts=at(5),
        first_import_kwh=100.0,
        first_export_kwh=5.0,
        last_ts=at(25),
        last_import_kwh=100.4,
        last_export_kwh=5.05,
        energy_import_kwh=0.4,
        energy_export_kwh=0.05,
        covered_s=1200.0,
    )
    assert store.gaps("m", at(0), at(60)) == []


def test_rollups_of_readings_in_order(store: Store) -> None:
    store.add_meter(Meter("m", "file", interval_s=300))
    assert store.write_readings(CASE_A) == WriteResult(4, 0)
    check_case_a(store)
    assert rollups_15m(store, "m", phase=1) == []


def test_rollups_merged_over_many_batches(store: Store) -> None:
    store.add_meter(Meter("m", "file", interval_s=300))
    for reading in CASE_A:  # every bucket is merged from the contributions of several writes
        assert store.write_readings([reading]) == WriteResult(1, 0)
    check_case_a(store)


def test_rollups_of_a_batch_in_reverse_order(store: Store) -> None:
    store.add_meter(Meter("m", "file", interval_s=300))
    store.write_readings(CASE_A[::-1])
    check_case_a(store)


def test_late_rows_rebuild_rollups_and_gaps(store: Store) -> None:
    store.add_meter(Meter("m", "file", interval_s=300))
    store.write_readings([CASE_A[0], CASE_A[3]])
    # 5 -> 25 min: a gap; its 0.4 kWh import and 0.05 kWh export are spread 10/20 into the
    # first bucket and 10/20 into the second.
    first, second = rollups_15m(store, "m")
    check(first, count=1, energy_import_kwh=0.2, energy_export_kwh=0.025, covered_s=0.0)
    check(second, count=1, energy_import_kwh=0.2, energy_export_kwh=0.025, covered_s=0.0)
    assert store.gaps("m", at(0), at(60)) == [Gap("m", at(5), at(25))]

    assert store.write_readings([CASE_A[2]]) == WriteResult(1, 0)
    # 5 -> 20: still a gap, 0.4 kWh over 15 min (10 min before the edge, 5 after);
    # 20 -> 25: covered, export 0.05.
    first, second = rollups_15m(store, "m")
    check(first, count=1, energy_import_kwh=0.4 * 10 / 15, energy_export_kwh=0.0, covered_s=0.0)
    check(second, count=2, energy_import_kwh=0.4 * 5 / 15, energy_export_kwh=0.05, covered_s=300.0)
    assert store.gaps("m", at(0), at(60)) == [Gap("m", at(5), at(20))]

    assert store.write_readings([CASE_A[1]]) == WriteResult(1, 0)
    check_case_a(store)
    # Late rows do not change what is latest.
    assert [r.ts for r in store.latest(["m"])] == [at(25)]


def test_counter_reset(store: Store) -> None:
    store.add_meter(Meter("r", "file", interval_s=60))
    registers = [
        500.0,
        500.02,  # +0.02
        0.01,  # reset: 0.01 kWh in a minute is plausible at 1.2 kW (bound 1.9 kW): +0.01
        0.03,  # +0.02
        0.05,  # +0.02
        0.04,  # decrease to 0.04 kWh: more than 1.9 kW could meter in a minute: +0
        0.06,  # +0.02
    ]
    store.write_readings(
        [Reading("r", at(m), power_w=1200.0, energy_import_kwh=kwh) for m, kwh in enumerate(registers)]
    )
    (bucket,) = rollups_15m(store, "r")
    check(
        bucket, count=7, first_import_kwh=500.0, last_import_kwh=0.06, energy_import_kwh=0.09, covered_s=360.0
    )
    (hour,) = store.rollups("r", 0, T0, at(60), 3600)
    check(hour, energy_import_kwh=0.09)


def test_meter_replaced_by_one_with_a_higher_register(store: Store) -> None:
    store.add_meter(Meter("s", "file", interval_s=60))
    registers = [
        1000.0,
        1000.03,  # +0.03
        250000.0,  # +248999.97 kWh in a minute is ~15 GW, above 10 MW: a swap, +0
        250000.03,  # +0.03
        250166.03,  # +166 kWh in a minute is 9.96 MW, just below 10 MW: counted
    ]
    store.write_readings(
        [Reading("s", at(m), power_w=2000.0, energy_import_kwh=kwh) for m, kwh in enumerate(registers)]
    )
    (bucket,) = rollups_15m(store, "s")
    check(bucket, energy_import_kwh=166.06, first_import_kwh=1000.0, last_import_kwh=250166.03)


def test_late_register_reading_between_sparse_registers(store: Store) -> None:
    store.add_meter(Meter("p", "file", interval_s=60))
    # Power every minute for 2.5 hours; the import register only at 00:00 (0) and 02:30 (2 kWh).
    store.write_readings(
        [
            Reading(
                "p", at(m), power_w=1000.0, energy_import_kwh=0.0 if m == 0 else 2.0 if m == 150 else None
            )
            for m in range(151)
        ]
    )
    hours = store.rollups("p", 0, T0, at(180), 3600)
    assert [h.energy_import_kwh for h in hours] == pytest.approx([0.8, 0.8, 0.4])  # 2 kWh / 9000 s
    # A late register reading at 01:00:30 says 1 kWh: 1 kWh over the 3630 s before it and
    # 1 kWh over the 5370 s after it.
    store.write_readings([Reading("p", at(60, 30), power_w=1000.0, energy_import_kwh=1.0)])
    first, second, third = store.rollups("p", 0, T0, at(180), 3600)
    check(first, energy_import_kwh=3600 / 3630)
    check(second, energy_import_kwh=30 / 3630 + 3570 / 5370)
    check(third, energy_import_kwh=1800 / 5370)
    check(rollups_15m(store, "p")[0], energy_import_kwh=900 / 3630)


# --- gaps ----------------------------------------------------------------------------------


def test_gap_recorded_when_next_reading_arrives_and_repaired_by_late_ones(store: Store) -> None:
    store.add_meter(Meter("g", "file", phases=3, interval_s=60))
    store.write_readings(
        [Reading("g", at(m), power_w=100.0, energy_import_kwh=1.0 + m / 100) for m in (0, 1)]
    )
    assert store.gaps("g", at(0), at(60)) == []  # silence alone records nothing
    store.write_readings(
        [Reading("g", at(m), power_w=100.0, energy_import_kwh=1.0 + m / 100) for m in (10, 11)]
    )
    assert store.gaps("g", at(0), at(60)) == [Gap("g", at(1), at(10))]
    assert store.gaps("g", at(0), at(60))[0].duration_s == 540.0
    assert store.gaps("g", at(9), at(12)) == [Gap("g", at(1), at(10))]  # overlaps
    assert store.gaps("g", at(10), at(20)) == []
    (bucket,) = rollups_15m(store, "g")
    # The register still counts across the gap (0.11 kWh); only 0->1 and 10->11 are covered.
    check(bucket, count=4, energy_import_kwh=0.11, covered_s=120.0)

    store.write_readings([Reading("g", at(5), power_w=100.0, energy_import_kwh=1.05)])
    assert store.gaps("g", at(0), at(60)) == [Gap("g", at(1), at(5)), Gap("g", at(5), at(10))]
    store.write_readings(
        [Reading("g", at(m), power_w=100.0, energy_import_kwh=1.0 + m / 100) for m in (2, 3, 4, 6, 7, 8, 9)]
    )
    assert store.gaps("g", at(0), at(60)) == []
    (bucket,) = rollups_15m(store, "g")
    check(bucket, count=12, energy_import_kwh=0.11, covered_s=660.0)


def test_gaps_come_from_phase_zero_only(store: Store) -> None:
    store.add_meter(Meter("g", "file", phases=3, interval_s=60))
    store.write_readings([Reading("g", at(m), phase=1, power_w=10.0) for m in (0, 30)])
    assert store.gaps("g", at(0), at(60)) == []
    (bucket,) = store.rollups("g", 1, T0, at(15), 900)
    check(bucket, count=1, covered_s=0.0)


# --- aggregate and downsample --------------------------------------------------------------


def _write_dst_series(store: Store) -> None:
    # Every 15 min from Sat 2026-03-28 22:00 UTC to Sun 2026-03-29 23:00 UTC at 1 kW:
    # 0.25 kWh per step, register 10.0 at the first reading.
    store.add_meter(Meter("d", "file", tz="Europe/Oslo", interval_s=900))
    start = datetime(2026, 3, 28, 22, tzinfo=UTC)
    store.write_readings(
        [
            Reading(
                "d",
                start + timedelta(minutes=15 * k),
                power_w=1000.0,
                voltage_v=230.0,
                energy_import_kwh=10.0 + 0.25 * k,
            )
            for k in range(101)
        ]
    )


def test_aggregate_local_days_across_dst(store: Store) -> None:
    _write_dst_series(store)
    oslo = ZoneInfo("Europe/Oslo")
    days = [datetime(2026, 3, d, tzinfo=oslo).astimezone(UTC) for d in (27, 28, 29, 30)]
    # Oslo moves from +01:00 to +02:00 at 01:00 UTC on Sunday 29 March: that day has 23 hours.
    assert days == [
        datetime(2026, 3, 26, 23, tzinfo=UTC),
        datetime(2026, 3, 27, 23, tzinfo=UTC),
        datetime(2026, 3, 28, 23, tzinfo=UTC),
        datetime(2026, 3, 29, 22, tzinfo=UTC),
    ]
    friday, saturday, sunday = store.aggregate("d", 0, days)
    check(
        friday,
        start=days[0],
        end=days[1],
        count=0,
        power_avg_w=None,
        first_ts=None,
        last_ts=None,
        energy_import_kwh=0.0,
        covered_s=0.0,
    )
    # Saturday: readings 22:00, 22:15, 22:30, 22:45 UTC; steps up to 23:00 make 1 kWh.
    check(
        saturday,
        count=4,
        power_avg_w=1000.0,
        voltage_max_v=230.0,
        first_ts=datetime(2026, 3, 28, 22, tzinfo=UTC),
        first_import_kwh=10.0,
        last_ts=datetime(2026, 3, 28, 22, 45, tzinfo=UTC),
        last_import_kwh=10.75,
        energy_import_kwh=1.0,
        covered_s=3600.0,
    )
    # Sunday: 23 hours, 92 readings from 23:00 to 21:45 UTC, 23 kWh.
    check(
        sunday,
        count=92,
        first_ts=datetime(2026, 3, 28, 23, tzinfo=UTC),
        first_import_kwh=11.0,
        last_ts=datetime(2026, 3, 29, 21, 45, tzinfo=UTC),
        last_import_kwh=33.75,
        energy_import_kwh=23.0,
        covered_s=82800.0,
    )
    assert sunday.width_s == 82800.0


def test_aggregate_on_quarter_hour_boundaries(store: Store) -> None:
    _write_dst_series(store)
    kolkata = ZoneInfo("Asia/Kolkata")  # +05:30: local midnights fall on :30 UTC
    day = [datetime(2026, 3, d, tzinfo=kolkata).astimezone(UTC) for d in (29, 30)]
    assert day == [datetime(2026, 3, 28, 18, 30, tzinfo=UTC), datetime(2026, 3, 29, 18, 30, tzinfo=UTC)]
    (bucket,) = store.aggregate("d", 0, day)
    # Readings 22:00 (28th) .. 18:15 (29th): 82 of them; energy from 22:00 to 18:30 = 20.5 kWh.
    check(
        bucket,
        count=82,
        first_import_kwh=10.0,
        last_import_kwh=30.25,
        energy_import_kwh=20.5,
        covered_s=73800.0,
    )


def test_aggregate_rejects_bad_boundaries(store: Store) -> None:
    store.add_meter(Meter("m", "file"))
    with pytest.raises(InputError):
        store.aggregate("m", 0, [at(0), at(5)])
    with pytest.raises(InputError):
        store.aggregate("m", 0, [at(30), at(15)])
    assert store.aggregate("m", 0, [at(0)]) == []


def test_downsample_raw(store: Store) -> None:
    store.add_meter(Meter("m", "file", interval_s=300))
    store.write_readings(CASE_A)
    # Start 00:03 is floored to the 10-minute edge 00:00.
    first, second, third = store.downsample_raw("m", 0, at(3), at(30), 600)
    check(
        first,
        start=at(0),
        end=at(10),
        count=1,
        power_avg_w=1000.0,
        first_ts=at(5),
        energy_import_kwh=0.1,
        covered_s=300.0,
    )
    check(
        second, start=at(10), end=at(20), count=1, power_avg_w=2000.0, energy_import_kwh=0.3, covered_s=600.0
    )
    check(
        third,
        start=at(20),
        end=at(30),
        count=2,
        power_avg_w=-250.0,
        last_ts=at(25),
        energy_import_kwh=0.0,
        energy_export_kwh=0.05,
        covered_s=300.0,
    )
    (hour,) = store.downsample_raw("m", 0, at(0), at(60), 3600)
    check(hour, count=4, energy_import_kwh=0.4, energy_export_kwh=0.05, covered_s=1200.0)
    with pytest.raises(InputError):
        store.downsample_raw("m", 0, at(0), at(60), 0)
    with pytest.raises(InputError):
        store.rollups("m", 0, at(0), at(60), 600)


# --- latest and raw reads ------------------------------------------------------------------


def test_latest_with_phase_and_meter_filters(store: Store) -> None:
    store.add_meter(Meter("a", "file", phases=3, interval_s=60))
    store.add_meter(Meter("b", "file", interval_s=60))
    newest_a = [Reading("a", at(1), phase=p, power_w=1000.5 + p, voltage_v=230.1) for p in range(4)]
    store.write_readings([Reading("a", at(0), phase=p, power_w=10.0) for p in range(4)])
    store.write_readings([*newest_a, Reading("b", at(0), power_w=-42.25)])
    store.write_readings([Reading("a", at(0, 30), power_w=7.0)])  # late: not the newest
    assert store.latest() == [newest_a[0], Reading("b", at(0), power_w=-42.25)]
    assert [(r.meter, r.phase) for r in store.latest(phase=None)] == [
        ("a", 0),
        ("a", 1),
        ("a", 2),
        ("a", 3),
        ("b", 0),
    ]
    assert store.latest(["b"]) == [Reading("b", at(0), power_w=-42.25)]
    assert store.latest(["a"], phase=2) == [newest_a[2]]
    assert store.latest([]) == []


def test_iter_readings_order_range_and_phase(store: Store) -> None:
    store.add_meter(Meter("x", "file", phases=3))
    store.add_meter(Meter("w", "file", phases=3))
    rows = [
        Reading(m, at(t), phase=p, power_w=float(10 * t + p), energy_import_kwh=t / 1000)
        for m in ("x", "w")
        for t in (0, 1, 2)
        for p in (0, 1)
    ]
    store.write_readings(rows[::2])  # phase 0 first, then phase 1, in scrambled meter order
    store.write_readings(rows[1::2][::-1])
    got = list(store.iter_readings(None, at(0), at(2)))  # at(2) is excluded
    assert [(r.meter, r.ts, r.phase) for r in got] == [
        (m, at(t), p) for m in ("w", "x") for t in (0, 1) for p in (0, 1)
    ]
    assert got[0] == Reading("w", at(0), 0, power_w=0.0, energy_import_kwh=0.0)
    assert [(r.meter, r.ts) for r in store.iter_readings(["x"], at(1), at(9), phase=1)] == [
        ("x", at(1)),
        ("x", at(2)),
    ]
    assert store.count_readings() == 12
    assert store.count_readings("x") == 6


def test_iter_readings_streams_many_rows(store: Store) -> None:
    store.add_meter(Meter("m", "file", interval_s=1))
    store.write_readings([Reading("m", at(seconds=s), power_w=float(s)) for s in range(4500)])
    stream = store.iter_readings(["m"], at(0), at(120))
    assert next(stream).power_w == 0.0
    rest = list(stream)
    assert len(rest) == 4499
    assert [r.power_w for r in rest[:3]] == [1.0, 2.0, 3.0]
    assert rest[-1].ts == at(seconds=4499)
    abandoned = store.iter_readings(["m"], at(0), at(120))
    assert next(abandoned).ts == at(0)
    abandoned.close()
    assert store.count_readings("m") == 4500


# --- intervals, extras ---------------------------------------------------------------------


def test_intervals_are_idempotent_and_filtered(store: Store) -> None:
    store.add_meter(Meter("m", "file"))
    records = [
        IntervalEnergy("m", at(0), at(15), 0.25, 0.0, "umeter"),
        IntervalEnergy("m", at(15), at(30), 0.5, None, "umeter"),
        IntervalEnergy("m", at(0), at(60), 1.0, 0.125, "iammeter"),
    ]
    assert store.write_intervals(records) == WriteResult(3, 0)
    assert store.write_intervals(records) == WriteResult(0, 3)
    extra = IntervalEnergy("m", at(30), at(45), 0.75, None, "umeter")
    assert store.write_intervals([extra, extra]) == WriteResult(1, 1)
    assert store.intervals("m", at(0), at(30)) == [records[2], records[0], records[1]]
    assert store.intervals("m", at(0), at(60), source="iammeter") == [records[2]]
    assert store.intervals("m", at(15), at(30)) == [records[1]]  # by start, half-open
    corrected = IntervalEnergy("m", at(15), at(30), 0.625, 0.0, "umeter")  # a late day's correction
    assert store.write_intervals([corrected, records[0]]) == WriteResult(1, 1)
    assert store.intervals("m", at(15), at(30)) == [corrected]
    assert store.write_intervals([corrected]) == WriteResult(0, 1)
    with pytest.raises(UnknownMeterError):
        store.write_intervals([IntervalEnergy("ghost", at(0), at(15), 1.0, None, "umeter")])


def test_extras_are_idempotent_and_filtered(store: Store) -> None:
    store.add_meter(Meter("m", "file"))
    extras = [
        Extra("m", at(0), "temperature_c", 21.5),
        Extra("m", at(1), "temperature_c", 22.0),
        Extra("m", at(0), "rssi_dbm", -67.0),
    ]
    assert store.write_extras(extras) == WriteResult(3, 0)
    assert store.write_extras([*extras, Extra("m", at(2), "relay_on", 1.0)]) == WriteResult(1, 3)
    assert store.extras("m", "temperature_c", at(0), at(1)) == [extras[0]]
    assert store.extras("m", "temperature_c", at(0), at(5)) == extras[:2]
    assert store.extras("m", "rssi_dbm", at(0), at(5)) == [extras[2]]
    with pytest.raises(UnknownMeterError):
        store.write_extras([Extra("ghost", at(0), "rssi_dbm", -1.0)])


# --- tokens and quota ----------------------------------------------------------------------


def test_tokens_set_get_replace_delete(store: Store) -> None:
    expires = datetime(2026, 3, 2, 1, 0, 0, 123000, tzinfo=UTC)
    assert store.token_get("iammeter", "acct") is None
    store.token_set("iammeter", "acct", "tok-1", expires)
    assert store.token_get("iammeter", "acct") == ("tok-1", expires)
    assert store.token_get("umeter", "acct") is None
    store.token_set("iammeter", "acct", "tok-2", None)
    assert store.token_get("iammeter", "acct") == ("tok-2", None)
    store.token_delete("iammeter", "acct")
    assert store.token_get("iammeter", "acct") is None
    store.token_delete("iammeter", "acct")  # forgetting twice is fine


def test_quota_limit_window_used_and_next_free(store: Store) -> None:
    t = T0
    assert [store.quota_acquire("k", 3, 60, t + timedelta(seconds=s)) for s in (0, 1, 2, 3)] == [
        True,
        True,
        True,
        False,
    ]
    now = t + timedelta(seconds=3)
    assert store.quota_used("k", 60, now) == 3
    # The oldest of the three (t) leaves the 60 s window at t + 60 s.
    assert store.quota_next_free("k", 3, 60, now) == t + timedelta(seconds=60)
    assert store.quota_acquire("k", 3, 60, t + timedelta(seconds=59)) is False
    assert store.quota_acquire("k", 3, 60, t + timedelta(seconds=60)) is True
    # Refused calls are not recorded: t, t+1, t+2 and t+60 are.
    assert store.quota_used("k", 3600, t + timedelta(seconds=60)) == 4
    assert store.quota_used("other", 60, now) == 0
    assert store.quota_next_free("other", 3, 60, now) == now


def test_quota_acquire_is_atomic_across_stores(backend: Backend) -> None:
    stores = [backend.open(), backend.open()]  # two processes' worth of connections
    rounds, threads_n, limit = 15, 8, 5
    barrier = threading.Barrier(threads_n)
    granted: dict[str, int] = {f"key-{r}": 0 for r in range(rounds)}
    lock = threading.Lock()

    def worker(store: Store) -> None:
        for key in granted:  # every round, all threads race for the last slots of a new key
            barrier.wait()
            for _ in range(2):
                if store.quota_acquire(key, limit, 3600, T0):
                    with lock:
                        granted[key] += 1

    threads = [threading.Thread(target=worker, args=(stores[i % 2],)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted == {key: limit for key in granted}  # 16 tries a round, never more than 5
    assert stores[0].quota_used("key-0", 3600, T0) == limit


# --- concurrency ---------------------------------------------------------------------------


def test_interleaved_writers_on_one_series(backend: Backend) -> None:
    stores = [backend.open() for _ in range(3)]
    stores[0].add_meter(Meter("m", "file", interval_s=60))

    def worker(store: Store, offset: int) -> None:
        for minute in range(offset, 180, 3):  # each store writes every third minute
            store.write_readings([Reading("m", at(minute), power_w=600.0, energy_import_kwh=minute / 100)])

    threads = [threading.Thread(target=worker, args=(stores[k], k)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stores[1].count_readings("m") == 180
    buckets = rollups_15m(stores[1], "m", hours=3)
    # 0.01 kWh per minute; the last bucket holds 165..179: 14 steps, 14 covered minutes.
    assert len(buckets) == 12
    for bucket, steps in zip(buckets, [15] * 11 + [14], strict=True):
        check(bucket, count=15, energy_import_kwh=steps / 100, covered_s=steps * 60.0)
    assert stores[0].gaps("m", at(0), at(180)) == []
    assert [r.ts for r in stores[2].latest()] == [at(179)]


def test_writes_from_many_threads(store: Store) -> None:
    meters = [f"m{i}" for i in range(6)]
    for meter_id in meters:
        store.add_meter(Meter(meter_id, "file", interval_s=60))

    def worker(meter_id: str) -> None:
        for minute in range(30):
            store.write_readings(
                [Reading(meter_id, at(minute), power_w=600.0, energy_import_kwh=minute / 100)]
            )

    threads = [threading.Thread(target=worker, args=(m,)) for m in meters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.count_readings() == 180
    for meter_id in meters:
        (hour,) = store.rollups(meter_id, 0, T0, at(60), 3600)
        check(hour, count=30, energy_import_kwh=0.29, covered_s=29 * 60.0)


# --- migrations ----------------------------------------------------------------------------


def test_migrations_applied_lists_all_three(store: Store) -> None:
    assert store.migrations_applied() == all_migrations(store)
    assert store.migrate() == []


def test_migrate_to_builds_an_older_database(backend: Backend) -> None:
    old = backend.open(migrate=False)
    assert old.migrations_applied() == []
    assert old.migrate_to("0001_core") == ["0001_core"]
    assert old.migrations_applied() == ["0001_core"]


def test_migrate_to_an_applied_migration_applies_nothing(backend: Backend) -> None:
    old = backend.open(migrate=False)
    old.migrate_to("0001_core")
    assert old.migrate_to("0001_core") == []
    assert old.migrations_applied() == ["0001_core"]


# CASE_A plus a reading after a gap (25 -> 40 min is longer than 2 x 5 min).
OLD_ROWS = [*CASE_A, Reading("m", at(40), power_w=100.0, energy_import_kwh=100.5, energy_export_kwh=5.05)]


def _older_database(backend: Backend) -> Store:
    old = backend.open(migrate=False)
    old.migrate_to("0001_core")
    old.add_meter(Meter("m", "file", interval_s=300))
    backend.insert_raw("m", OLD_ROWS)
    assert old.migrate() == all_migrations(old)[1:]
    return old


def test_older_database_is_migrated_keeping_its_data(backend: Backend) -> None:
    store = _older_database(backend)
    assert store.migrations_applied() == all_migrations(store)
    assert list(store.iter_readings(["m"], at(0), at(60))) == OLD_ROWS
    first, second, third = rollups_15m(store, "m")
    check(first, count=2, energy_import_kwh=0.25, covered_s=600.0)
    # 25 -> 40 carries 0.1 kWh over 15 min, 5 of them before 00:30: +0.1/3 here, 0.2/3 after.
    check(second, count=2, energy_import_kwh=0.15 + 0.1 / 3, energy_export_kwh=0.05, covered_s=600.0)
    check(third, count=1, energy_import_kwh=0.2 / 3, covered_s=0.0, first_ts=at(40))
    assert store.gaps("m", at(0), at(60)) == [Gap("m", at(25), at(40))]
    assert store.write_intervals([IntervalEnergy("m", at(0), at(15), 0.25, None, "x")]).stored == 1


def test_migrated_database_continues_its_series(backend: Backend) -> None:
    store = _older_database(backend)
    assert store.latest() == [OLD_ROWS[-1]]
    assert store.write_readings(
        [Reading("m", at(45), power_w=100.0, energy_import_kwh=100.55, energy_export_kwh=5.05)]
    ) == WriteResult(1, 0)
    third, fourth = rollups_15m(store, "m")[2:]
    # 40 -> 45 adds 0.05 kWh and 5 covered minutes to 00:30-00:45; the new row sits in the next.
    check(third, count=1, energy_import_kwh=0.2 / 3 + 0.05, covered_s=300.0)
    check(fourth, start=at(45), count=1, energy_import_kwh=0.0)
    assert store.write_readings([OLD_ROWS[3]]) == WriteResult(0, 1)


def test_aggregate_without_registers_matches_the_full_merge(store: Store) -> None:
    store.add_meter(Meter("m", "file", interval_s=60))
    rows = [
        Reading(
            "m",
            at(k),
            power_w=100.0 + (k * 37) % 900,
            voltage_v=229.0 + k % 3,
            current_a=1.0,
            energy_import_kwh=5.0 + k / 60,
        )
        for k in range(0, 600, 1)
        if not 200 <= k < 260  # an hour-long gap
    ]
    store.write_readings(rows)
    for step_minutes in (15, 60, 120):
        edges = [at(step_minutes * k) for k in range(600 // step_minutes + 2)]
        full = store.aggregate("m", 0, edges)
        lean = store.aggregate("m", 0, edges, with_registers=False)
        assert len(lean) == len(full) == len(edges) - 1
        for a, b in zip(full, lean, strict=True):
            assert (a.start, a.end, a.count, a.power_min_w, a.power_max_w, a.voltage_max_v) == (
                b.start,
                b.end,
                b.count,
                b.power_min_w,
                b.power_max_w,
                b.voltage_max_v,
            )
            assert a.power_avg_w == pytest.approx(b.power_avg_w)
            assert a.energy_import_kwh == pytest.approx(b.energy_import_kwh, abs=1e-9)
            assert a.covered_s == b.covered_s and a.first_ts == b.first_ts and a.last_ts == b.last_ts
            assert b.first_import_kwh is None and b.last_import_kwh is None
    # The register rises 1/60 kWh a minute from minute 0 to 599, gap included: 599/60 kWh.
    whole = store.aggregate("m", 0, [at(0), at(600)], with_registers=False)
    assert whole[0].energy_import_kwh == pytest.approx(599 / 60)
