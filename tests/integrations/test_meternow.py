"""Each meter as it is now, on both backends: newest values per phase, age, online, places, cache."""

from __future__ import annotations

from datetime import timedelta

from meterhub.meternow import MIN_STALE_AFTER_S, MeterNowCache, phase_label, stale_after_s
from meterhub.model import Meter, Place, Reading, Role, utc_now
from tests.backends import Backend


def test_meters_now_on_every_backend(backend: Backend) -> None:
    store = backend.open()
    now = utc_now()
    store.add_meter(Meter("grid", "iammeter", 3, "Europe/Oslo", 60))
    store.add_meter(Meter("mqtt", "amsreader", 1, "Europe/Oslo", 10))
    store.add_meter(Meter("slow", "umeter", 1, "Europe/Oslo", 3600))
    store.add_meter(Meter("empty", "file", 1, "UTC", 60))
    store.write_readings(
        [
            Reading("grid", now - timedelta(minutes=5), 0, power_w=100.0),
            Reading("grid", now - timedelta(seconds=10), 0, power_w=1200.0, energy_import_kwh=50.5),
            Reading("grid", now - timedelta(seconds=10), 2, voltage_v=229.0),
            Reading("mqtt", now - timedelta(seconds=MIN_STALE_AFTER_S + 60), 0, power_w=5.0),
            Reading("slow", now - timedelta(hours=2), 0, power_w=7.0),
        ]
    )
    store.record_health("grid", False, now, "timeout")
    store.add_place(Place("home", "Europe/Oslo"))
    store.attach_meter("home", "grid", Role.GRID)

    cache = MeterNowCache(store)
    items = {item.meter.id: item for item in cache.meters_now(now)}
    assert list(items) == ["empty", "grid", "mqtt", "slow"]
    grid = items["grid"]
    assert sorted(grid.phases) == [0, 2]
    assert grid.phases[0].power_w == 1200.0 and grid.phases[0].energy_import_kwh == 50.5
    assert grid.phases[2].voltage_v == 229.0
    assert grid.age_s is not None and 9.0 <= grid.age_s <= 11.0
    assert grid.online is False  # its last poll failed, however fresh its data
    assert grid.places == (("home", "grid"),)
    assert items["mqtt"].online is False  # unpolled, and older than the shortest staleness
    assert items["slow"].online is True  # unpolled, within three of its hour-long intervals
    assert items["empty"].online is False and items["empty"].age_s is None and items["empty"].phases == {}

    first = cache.snapshot()
    assert cache.snapshot() is first
    store.record_health("grid", True, now)
    assert cache.meters_now(now, ["grid"])[0].online is True


def test_staleness_and_phase_names() -> None:
    assert stale_after_s(Meter("a", "file", interval_s=10)) == MIN_STALE_AFTER_S
    assert stale_after_s(Meter("a", "file", interval_s=900)) == 2700
    assert [phase_label(p) for p in range(4)] == ["total", "L1", "L2", "L3"]
