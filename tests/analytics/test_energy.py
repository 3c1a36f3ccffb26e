"""Energy per local period from registers, with resets, swaps, gaps, interval records and DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meterhub.analytics.energy import EnergyBucket, energy_between, meter_energy, total
from meterhub.errors import InputError
from meterhub.model import IntervalEnergy, Meter, Reading
from meterhub.store.sqlite import SQLiteStore
from tests.analytics.builders import OSLO, local, steady, write_power

DAY = datetime(2026, 1, 14, tzinfo=UTC)
HOUR = timedelta(hours=1)
QUARTER = timedelta(minutes=15)


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-9, abs=1e-9)


def test_steady_load_gives_exact_hours_and_days_from_registers(store: SQLiteStore) -> None:
    write_power(store, "m", DAY, DAY + timedelta(days=2), steady(1200.0))
    hours = meter_energy(store, "m", DAY, DAY + timedelta(days=1), "hour")
    assert len(hours) == 24
    assert all(h.energy_import_kwh == approx(1.2) for h in hours)
    assert {(h.source, h.estimated) for h in hours} == {("registers", False)}
    (day,) = meter_energy(store, "m", DAY, DAY + timedelta(days=1), "day")
    assert day.energy_import_kwh == approx(28.8)
    assert day.covered_s == 86_400


def test_a_counter_reset_is_neither_negative_nor_doubled(store: SQLiteStore) -> None:
    store.add_meter(Meter("m", "file", interval_s=60))
    readings = [
        Reading("m", DAY + timedelta(minutes=k), power_w=6000.0, energy_import_kwh=500.0 + 0.1 * k)
        for k in range(31)
    ]
    # The register restarts from zero at 00:31 and counts on: 0.1 kWh a minute throughout.
    readings += [
        Reading("m", DAY + timedelta(minutes=k), power_w=6000.0, energy_import_kwh=0.1 * (k - 30))
        for k in range(31, 61)
    ]
    store.write_readings(readings)
    (hour,) = energy_between(store, "m", [DAY, DAY + HOUR])
    assert hour.energy_import_kwh == approx(6.0)
    assert hour.source == "registers"


def test_a_meter_replacement_counts_no_jump(store: SQLiteStore) -> None:
    store.add_meter(Meter("m", "file", interval_s=60))
    old = [
        Reading("m", DAY + timedelta(minutes=k), power_w=600.0, energy_import_kwh=90_000 + 0.01 * k)
        for k in range(30)
    ]
    # The new meter starts at 7 kWh: far more than 600 W can do in a minute after the old 90 MWh.
    new = [
        Reading("m", DAY + timedelta(minutes=k), power_w=600.0, energy_import_kwh=7 + 0.01 * (k - 30))
        for k in range(30, 61)
    ]
    store.write_readings(old + new)
    (hour,) = energy_between(store, "m", [DAY, DAY + HOUR])
    # 59 one-minute intervals at 0.01 kWh, and the swap interval counts nothing.
    assert hour.energy_import_kwh == approx(0.59)
    assert hour.energy_import_kwh >= 0


def test_a_gap_is_pro_rated_and_flagged_estimated(store: SQLiteStore) -> None:
    write_power(
        store,
        "m",
        DAY,
        DAY + 4 * HOUR,
        steady(1000.0),
        skip=lambda ts: DAY + HOUR < ts < DAY + 3 * HOUR,
    )
    hours = energy_between(store, "m", [DAY + k * HOUR for k in range(5)])
    assert [h.energy_import_kwh for h in hours] == [approx(1.0)] * 4
    assert [h.estimated for h in hours] == [False, True, True, False]
    assert [h.source for h in hours] == ["registers", "estimated", "estimated", "registers"]
    assert hours[1].covered_s == 0


def test_interval_records_fill_where_readings_are_missing(store: SQLiteStore) -> None:
    write_power(
        store, "m", DAY, DAY + 4 * HOUR, steady(1000.0), skip=lambda ts: DAY + HOUR < ts < DAY + 3 * HOUR
    )
    # UMeter says what happened in the gap, quarter by quarter: 0.5 kWh each (2 kW).
    store.write_intervals(
        [
            IntervalEnergy("m", DAY + HOUR + k * QUARTER, DAY + HOUR + (k + 1) * QUARTER, 0.5, 0.0, "umeter")
            for k in range(8)
        ]
    )
    hours = energy_between(store, "m", [DAY + k * HOUR for k in range(5)])
    assert [h.energy_import_kwh for h in hours] == [approx(1.0), approx(2.0), approx(2.0), approx(1.0)]
    assert [h.source for h in hours] == ["registers", "interval:umeter", "interval:umeter", "registers"]
    assert not any(h.estimated for h in hours)
    (whole,) = energy_between(store, "m", [DAY, DAY + 4 * HOUR])
    assert whole.energy_import_kwh == approx(6.0)
    assert whole.source == "registers+interval:umeter"
    assert whole.covered_s == 4 * 3600


def test_an_hourly_record_gives_its_hour_exactly_around_covered_quarters(store: SQLiteStore) -> None:
    # Readings stop at 01:20 and resume at 01:40: the 01:15 and 01:30 quarters are uncovered.
    write_power(
        store,
        "m",
        DAY,
        DAY + 3 * HOUR,
        steady(1200.0),
        skip=lambda ts: DAY + timedelta(minutes=80) < ts < DAY + timedelta(minutes=100),
    )
    store.write_intervals([IntervalEnergy("m", DAY + HOUR, DAY + 2 * HOUR, 1.5, 0.0, "amsreader")])
    (hour,) = energy_between(store, "m", [DAY + HOUR, DAY + 2 * HOUR])
    assert hour.energy_import_kwh == approx(1.5)
    assert hour.source == "registers+interval:amsreader"
    assert not hour.estimated
    quarters = energy_between(store, "m", [DAY + HOUR + k * QUARTER for k in range(5)])
    # Covered quarters keep their 0.3 kWh; the record's other 0.9 kWh go to the two gaps.
    assert [q.energy_import_kwh for q in quarters] == [approx(0.3), approx(0.45), approx(0.45), approx(0.3)]
    assert [q.estimated for q in quarters] == [False, True, True, False]


def test_the_finer_of_two_overlapping_sources_wins(store: SQLiteStore) -> None:
    store.add_meter(Meter("m", "file", interval_s=60))
    day_record = IntervalEnergy("m", DAY, DAY + timedelta(days=1), None, 30.0, "iammeter")
    hour_records = [
        IntervalEnergy("m", DAY + k * HOUR, DAY + (k + 1) * HOUR, 1.0, 0.0, "amsreader") for k in range(24)
    ]
    store.write_intervals([day_record, *hour_records])
    (day,) = energy_between(store, "m", [DAY, DAY + timedelta(days=1)])
    assert (day.energy_import_kwh, day.energy_export_kwh) == (approx(24.0), approx(0.0))
    assert day.source == "interval:amsreader"


def test_a_meter_with_only_records_and_a_period_with_nothing(store: SQLiteStore) -> None:
    store.add_meter(Meter("m", "file", interval_s=60))
    store.write_intervals(
        [
            IntervalEnergy(
                "m",
                DAY + k * 5 * timedelta(minutes=1),
                DAY + (k + 1) * 5 * timedelta(minutes=1),
                0.1,
                0.02,
                "intellimeter",
            )
            for k in range(12)
        ]
    )
    hours = energy_between(store, "m", [DAY, DAY + HOUR, DAY + 2 * HOUR])
    assert (hours[0].energy_import_kwh, hours[0].energy_export_kwh) == (approx(1.2), approx(0.24))
    assert (hours[0].source, hours[0].estimated) == ("interval:intellimeter", False)
    assert (hours[1].energy_import_kwh, hours[1].source, hours[1].estimated) == (0.0, "none", True)


@pytest.mark.parametrize(("day", "hours"), [((2026, 3, 29), 23), ((2026, 10, 25), 25), ((2026, 6, 1), 24)])
def test_oslo_days_have_their_local_hours(store: SQLiteStore, day: tuple[int, int, int], hours: int) -> None:
    start = local(OSLO, *day)
    end = start + timedelta(days=2)
    write_power(store, "m", start - HOUR, end, lambda ts: 500.0 + (ts.hour * 97) % 800, tz=OSLO)
    buckets = meter_energy(store, "m", start, start + timedelta(hours=1), "day")
    assert len(buckets) == 1
    (whole_day,) = buckets
    assert whole_day.width_s == hours * 3600
    local_hours = meter_energy(store, "m", whole_day.start, whole_day.end, "hour")
    assert len(local_hours) == hours
    assert sum(h.energy_import_kwh for h in local_hours) == approx(whole_day.energy_import_kwh)
    assert local_hours[0].start == whole_day.start and local_hours[-1].end == whole_day.end


@pytest.mark.parametrize(
    ("tz", "minute"), [("Asia/Kathmandu", 15), ("Asia/Kolkata", 30), ("America/St_Johns", 30)]
)
def test_odd_offset_zones_have_hours_off_the_utc_hour(store: SQLiteStore, tz: str, minute: int) -> None:
    start = local(tz, 2026, 1, 15)
    write_power(
        store, "m", start - HOUR, start + timedelta(days=1, hours=1), lambda ts: 100.0 * (ts.hour + 1), tz=tz
    )
    hours = meter_energy(store, "m", start, start + timedelta(days=1), "hour")
    assert len(hours) == 24
    assert {h.start.minute for h in hours} == {minute}
    (day,) = meter_energy(store, "m", start, start + timedelta(days=1), "day")
    assert sum(h.energy_import_kwh for h in hours) == approx(day.energy_import_kwh)


def test_months_and_years_are_local(store: SQLiteStore) -> None:
    start = local(OSLO, 2026, 1, 31, 22)
    write_power(store, "m", start, start + timedelta(hours=4), steady(1000.0), tz=OSLO, interval_s=300)
    months = meter_energy(store, "m", start, start + timedelta(hours=3), "month")
    assert [m.start for m in months] == [local(OSLO, 2026, 1, 1), local(OSLO, 2026, 2, 1)]
    assert [m.energy_import_kwh for m in months] == [approx(2.0), approx(2.0)]
    (year,) = meter_energy(store, "m", start, start + timedelta(hours=3), "year")
    assert (year.start, year.end) == (local(OSLO, 2026, 1, 1), local(OSLO, 2027, 1, 1))
    assert year.energy_import_kwh == approx(4.0)
    assert year.estimated and year.source == "registers+estimated"


def test_tz_overrides_the_meter_zone(store: SQLiteStore) -> None:
    write_power(store, "m", DAY, DAY + timedelta(days=2), steady(1000.0), tz=OSLO)
    (utc_day,) = meter_energy(store, "m", DAY, DAY + HOUR, "day", tz="UTC")
    (oslo_day,) = meter_energy(store, "m", DAY + 2 * HOUR, DAY + 3 * HOUR, "day")
    assert utc_day.start == DAY
    assert oslo_day.start == DAY - HOUR


def test_total_adds_periods_and_merges_sources() -> None:
    a = EnergyBucket(DAY, DAY + HOUR, 1.0, 0.5, 3600.0, "registers", False)
    b = EnergyBucket(DAY + HOUR, DAY + 2 * HOUR, 2.0, 0.0, 1800.0, "interval:umeter+estimated", True)
    assert total([a, b]) == EnergyBucket(
        DAY, DAY + 2 * HOUR, 3.0, 0.5, 5400.0, "registers+interval:umeter+estimated", True
    )


def test_bad_ranges_are_refused(store: SQLiteStore) -> None:
    store.add_meter(Meter("m", "file"))
    with pytest.raises(InputError, match="not after start"):
        meter_energy(store, "m", DAY, DAY, "hour")
    with pytest.raises(InputError, match="coarser"):
        meter_energy(store, "m", DAY, DAY + timedelta(days=600), "15m")
    with pytest.raises(InputError, match="unknown calendar unit"):
        meter_energy(store, "m", DAY, DAY + HOUR, "fortnight")
