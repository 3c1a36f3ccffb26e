"""Listing a meter's extra series and reading them in buckets, on every backend.

Every expected number is worked out by hand in the comment beside it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from meterhub.errors import InputError, UnknownMeterError
from meterhub.model import Extra, Meter
from meterhub.store.base import Store, WriteResult

if TYPE_CHECKING:
    from tests.backends import Backend

T0 = datetime(2026, 3, 2, tzinfo=UTC)
"""A Monday, 00:00 UTC."""


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_series_list_names_counts_first_last_and_last_value(store: Store) -> None:
    store.add_meter(Meter("m", "file"))
    store.add_meter(Meter("other", "file"))
    extras = [
        Extra("m", at(0), "temperature_c", 21.5),
        Extra("m", at(10), "temperature_c", 22.0),
        Extra("m", at(70), "temperature_c", 23.25),
        Extra("m", at(5), "rssi_dbm", -67.0),
        Extra("m", at(3), "relay_on", 1.0),
        Extra("m", at(4), "relay_on", 0.0),
        Extra("other", at(99), "temperature_c", 5.0),
    ]
    assert store.write_extras(extras) == WriteResult(7, 0)
    # Re-sent values are duplicates and must not count twice.
    assert store.write_extras(extras[:3]) == WriteResult(0, 3)
    assert store.extra_series("m") == [
        ("relay_on", 2, at(3), at(4), 0.0),
        ("rssi_dbm", 1, at(5), at(5), -67.0),
        ("temperature_c", 3, at(0), at(70), 23.25),
    ]
    assert store.extra_series("other") == [("temperature_c", 1, at(99), at(99), 5.0)]


def test_series_list_of_a_meter_without_extras_is_empty(store: Store) -> None:
    store.add_meter(Meter("m", "file"))
    assert store.extra_series("m") == []
    with pytest.raises(UnknownMeterError):
        store.extra_series("ghost")


def test_an_older_value_sent_late_does_not_become_the_last(store: Store) -> None:
    store.add_meter(Meter("m", "file"))
    store.write_extras([Extra("m", at(60), "rssi_dbm", -70.0)])
    store.write_extras([Extra("m", at(1), "rssi_dbm", -50.0)])
    assert store.extra_series("m") == [("rssi_dbm", 2, at(1), at(60), -70.0)]


def test_points_stop_at_the_limit(store: Store) -> None:
    store.add_meter(Meter("m", "file"))
    store.write_extras([Extra("m", at(i), "uptime_s", 60.0 * i) for i in range(10)])
    assert [e.value for e in store.extra_points("m", "uptime_s", at(2), at(9), 3)] == [120.0, 180.0, 240.0]
    assert len(store.extra_points("m", "uptime_s", at(0), at(60), 100)) == 10
    assert store.extra_points("m", "nothing", at(0), at(60), 100) == []


def _temperatures(store: Store) -> None:
    store.add_meter(Meter("m", "file"))
    # 00:00 20, 00:10 22, 00:20 24 (first quarter hour: 20, 22; second: 24)
    # 01:05 10, 01:50 30; 02:30 -4.
    values = [(0, 20.0), (10, 22.0), (20, 24.0), (65, 10.0), (110, 30.0), (150, -4.0)]
    store.write_extras([Extra("m", at(m), "temperature_c", v) for m, v in values])


def test_hour_buckets_come_whole_from_the_rollup(store: Store) -> None:
    _temperatures(store)
    # 00:00-01:00 holds 20, 22, 24: n 3, min 20, mean 22, max 24.
    # 01:00-02:00 holds 10, 30: n 2, min 10, mean 20, max 30.
    # 02:00-03:00 holds -4 only.
    assert store.extra_buckets("m", "temperature_c", at(0), at(180), 3600) == [
        (at(0), 3, 20.0, 22.0, 24.0),
        (at(60), 2, 10.0, 20.0, 30.0),
        (at(120), 1, -4.0, -4.0, -4.0),
    ]
    # A range inside 00:30-01:10 touches the first two hours: both come whole.
    assert store.extra_buckets("m", "temperature_c", at(30), at(70), 3600) == [
        (at(0), 3, 20.0, 22.0, 24.0),
        (at(60), 2, 10.0, 20.0, 30.0),
    ]


def test_quarter_hour_and_day_buckets(store: Store) -> None:
    _temperatures(store)
    # Quarter hours with values: 00:00 (20, 22), 00:15 (24), 01:00 (10), 01:45 (30), 02:30 (-4).
    assert store.extra_buckets("m", "temperature_c", at(0), at(180), 900) == [
        (at(0), 2, 20.0, 21.0, 22.0),
        (at(15), 1, 24.0, 24.0, 24.0),
        (at(60), 1, 10.0, 10.0, 10.0),
        (at(105), 1, 30.0, 30.0, 30.0),
        (at(150), 1, -4.0, -4.0, -4.0),
    ]
    # One UTC day: all six, sum 102, mean 17.
    assert store.extra_buckets("m", "temperature_c", at(0), at(180), 86_400) == [(at(0), 6, -4.0, 17.0, 30.0)]


def test_buckets_narrower_than_a_quarter_hour_read_the_raw_values(store: Store) -> None:
    _temperatures(store)
    # Five-minute buckets over 00:00-00:25: 00:00 (20), 00:10 (22), 00:20 (24).
    assert store.extra_buckets("m", "temperature_c", at(0), at(25), 300) == [
        (at(0), 1, 20.0, 20.0, 20.0),
        (at(10), 1, 22.0, 22.0, 22.0),
        (at(20), 1, 24.0, 24.0, 24.0),
    ]
    # Twenty-minute buckets (not a multiple of 15): 00:00-00:20 (20, 22), 00:20-00:40 (24).
    assert store.extra_buckets("m", "temperature_c", at(0), at(25), 1200) == [
        (at(0), 2, 20.0, 21.0, 22.0),
        (at(20), 1, 24.0, 24.0, 24.0),
    ]


def test_bad_bucket_arguments_are_input_errors(store: Store) -> None:
    _temperatures(store)
    with pytest.raises(InputError, match="at least 1 s"):
        store.extra_buckets("m", "temperature_c", at(0), at(10), 0)
    with pytest.raises(InputError, match="must be after"):
        store.extra_buckets("m", "temperature_c", at(10), at(10), 60)


def test_removing_a_meter_removes_its_rollups(store: Store) -> None:
    store.add_meter(Meter("m", "file"))
    store.write_extras([Extra("m", at(1), "rssi_dbm", -60.0)])
    store.remove_meter("m")
    # A meter added again under the same id (and in SQLite under the same row id) starts empty.
    store.add_meter(Meter("m", "file"))
    assert store.extra_series("m") == []
    assert store.extra_buckets("m", "rssi_dbm", at(0), at(60), 3600) == []


def test_the_migration_rolls_up_extras_stored_before_it(backend: Backend) -> None:
    old = backend.open(migrate=False)
    old.migrate_to("0006_coarse_rollups")
    old.add_meter(Meter("m", "file"))
    old.write_extras([Extra("m", at(m), "vcc_v", v) for m, v in ((0, 3.25), (20, 3.5), (40, 3.0))])
    assert old.migrate()[:1] == ["0007_extra_rollups"]
    assert old.extra_series("m") == [("vcc_v", 3, at(0), at(40), 3.0)]
    # 3.25, 3.5, 3.0: n 3, min 3.0, mean 3.25, max 3.5.
    assert old.extra_buckets("m", "vcc_v", at(0), at(60), 3600) == [(at(0), 3, 3.0, 3.25, 3.5)]
    # New values after the migration join the same bucket.
    old.write_extras([Extra("m", at(50), "vcc_v", 4.0)])
    assert old.extra_buckets("m", "vcc_v", at(0), at(60), 3600) == [(at(0), 4, 3.0, 3.4375, 4.0)]
