"""Power statistics from the rollups: weighted means, local daytime through DST and odd offsets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from meterhub.analytics.power import PowerStats, power_stats
from meterhub.errors import InputError
from meterhub.model import Meter, Reading
from meterhub.store.sqlite import SQLiteStore

OSLO = "Europe/Oslo"


def local_midnight_utc(year: int, month: int, day: int, tz: str) -> datetime:
    return datetime(year, month, day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def write_day(store: SQLiteStore, meter_id: str, tz: str, day_start: datetime, day_end: datetime,
              interval_s: int, day_w: float, night_w: float,
              overrides: dict[datetime, float] | None = None) -> int:
    """Write one reading per interval: ``day_w`` 08-20 local, ``night_w`` otherwise."""
    store.add_meter(Meter(meter_id, "file", tz=tz, interval_s=interval_s))
    zone = ZoneInfo(tz)
    readings = []
    ts = day_start
    while ts < day_end:
        power_w = day_w if 8 <= ts.astimezone(zone).hour < 20 else night_w
        power_w = (overrides or {}).get(ts, power_w)
        readings.append(Reading(meter_id, ts, power_w=power_w, voltage_v=230.0))
        ts += timedelta(seconds=interval_s)
    store.write_readings(readings)
    return len(readings)


def test_spring_forward_day_of_23_hours(store: SQLiteStore) -> None:
    start = local_midnight_utc(2026, 3, 29, OSLO)
    end = local_midnight_utc(2026, 3, 30, OSLO)
    noon = datetime(2026, 3, 29, 12, tzinfo=ZoneInfo(OSLO)).astimezone(UTC)
    three = datetime(2026, 3, 29, 3, tzinfo=ZoneInfo(OSLO)).astimezone(UTC)
    overrides = {noon: 1500.0, three: -300.0}
    rows = write_day(store, "m1", OSLO, start, end, 60, 1000.0, 200.0, overrides)
    assert rows == 23 * 60
    stats = power_stats(store, "m1", start, end, OSLO)
    # Daytime: 720 minutes, one of them 1500 W; night: 11 hours = 660 minutes, one of them -300 W.
    day_sum_w = 719 * 1000.0 + 1500.0
    night_sum_w = 659 * 200.0 - 300.0
    assert stats.daytime_avg_w == pytest.approx(day_sum_w / 720)
    assert stats.avg_w == pytest.approx((day_sum_w + night_sum_w) / 1380)
    assert stats.min_w == -300.0
    assert stats.max_w == 1500.0


def test_fall_back_day_of_25_hours(store: SQLiteStore) -> None:
    start = local_midnight_utc(2026, 10, 25, OSLO)
    end = local_midnight_utc(2026, 10, 26, OSLO)
    assert write_day(store, "m1", OSLO, start, end, 60, 500.0, 100.0) == 25 * 60
    stats = power_stats(store, "m1", start, end, OSLO)
    # 720 daytime minutes at 500 W, 780 night minutes at 100 W.
    assert stats.avg_w == pytest.approx((720 * 500 + 780 * 100) / 1500)
    assert (stats.daytime_avg_w, stats.min_w, stats.max_w) == (500.0, 100.0, 500.0)


@pytest.mark.parametrize("tz", ["Asia/Kathmandu", "Asia/Kolkata"])
def test_daytime_follows_local_hours_off_the_utc_hour(store: SQLiteStore, tz: str) -> None:
    start = local_midnight_utc(2026, 1, 15, tz)
    end = local_midnight_utc(2026, 1, 16, tz)
    write_day(store, "m1", tz, start, end, 300, 1000.0, 100.0)
    stats = power_stats(store, "m1", start, end, tz)
    # 144 five-minute readings by day at 1000 W, 144 by night at 100 W; an edge on the UTC hour
    # would mix 15 or 30 minutes of night into the daytime mean.
    assert stats.daytime_avg_w == 1000.0
    assert stats.avg_w == pytest.approx(550.0)


def test_a_range_off_the_quarter_grid_is_widened_to_it(store: SQLiteStore) -> None:
    start = local_midnight_utc(2026, 3, 29, OSLO)
    write_day(store, "m1", OSLO, start, start + timedelta(hours=23), 60, 1000.0, 200.0)
    zone = ZoneInfo(OSLO)
    lo = datetime(2026, 3, 29, 7, 52, 30, tzinfo=zone)
    hi = datetime(2026, 3, 29, 8, 3, tzinfo=zone)
    stats = power_stats(store, "m1", lo, hi, zone)
    # Widened to 07:45-08:15: 15 minutes at 200 W, then 15 daytime minutes at 1000 W.
    assert stats == PowerStats(avg_w=600.0, daytime_avg_w=1000.0, min_w=200.0, max_w=1000.0)


def test_no_data_gives_none(store: SQLiteStore) -> None:
    store.add_meter(Meter("empty", "file", tz=OSLO))
    start = local_midnight_utc(2026, 3, 29, OSLO)
    stats = power_stats(store, "empty", start, start + timedelta(days=7), OSLO)
    assert stats == PowerStats(None, None, None, None)


def test_a_reversed_range_is_refused(store: SQLiteStore) -> None:
    store.add_meter(Meter("m1", "file"))
    start = datetime(2026, 3, 29, tzinfo=UTC)
    with pytest.raises(InputError, match="not after start"):
        power_stats(store, "m1", start, start, OSLO)
