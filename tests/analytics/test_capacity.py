"""The capacity rule on crafted months, checked against figures worked out by hand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest

from meterhub.analytics.capacity import capacity_of_hours, month_edges, place_capacity
from meterhub.analytics.energy import EnergyBucket
from meterhub.errors import InputError
from meterhub.model import Place, Role
from meterhub.store.sqlite import SQLiteStore
from tests.analytics.builders import OSLO, local, write_power

HOUR = timedelta(hours=1)
BASE_W = 500.0
INTERVAL_S = 720


def profile(peaks: dict[datetime, float]) -> Callable[[datetime], float]:
    """Return 500 W, except the kW given for whole hours starting at the given UTC instants."""
    return lambda ts: peaks.get(ts.replace(minute=0, second=0), BASE_W / 1000) * 1000


def grid_place(
    store: SQLiteStore, tz: str, start: datetime, end: datetime, peaks: dict[datetime, float]
) -> Place:
    """Add a place with one grid meter read every 12 minutes (whole Wh each), so ties are exact."""
    write_power(store, "grid", start, end, profile(peaks), tz=tz, interval_s=INTERVAL_S)
    store.add_place(Place("home", tz, meters=(("grid", Role.GRID),)))
    return store.get_place("home")


def march_peaks() -> dict[datetime, float]:
    return {
        local(OSLO, 2026, 3, 3, 18): 7.0,  # the day's peak ...
        local(OSLO, 2026, 3, 3, 20): 6.0,  # ... a smaller hour later that day does not replace it
        local(OSLO, 2026, 3, 5, 8): 4.0,
        local(OSLO, 2026, 3, 5, 19): 9.0,  # a bigger hour later the same day replaces 4.0
        local(OSLO, 2026, 3, 10, 17): 8.0,
        local(OSLO, 2026, 3, 29, 3): 8.5,  # the first hour after the spring jump (02:00 is skipped)
        local(OSLO, 2026, 3, 31, 23): 12.0,  # the month's last hour
        local(OSLO, 2026, 4, 1, 0): 20.0,  # April's first hour: not March's
    }


def test_a_month_with_same_day_peaks_dst_and_a_month_change(store: SQLiteStore) -> None:
    place = grid_place(store, OSLO, local(OSLO, 2026, 2, 28, 22), local(OSLO, 2026, 4, 1, 2), march_peaks())
    capacity = place_capacity(store, place, "2026-03", now=local(OSLO, 2026, 5, 1))
    assert (capacity.start, capacity.end) == (local(OSLO, 2026, 3, 1), local(OSLO, 2026, 4, 1))
    assert capacity.hours == 31 * 24 - 1
    assert capacity.as_of == capacity.end
    # By hand: day peaks 7 (3rd), 9 (5th), 8 (10th), 8.5 (29th), 12 (31st), 0.5 elsewhere.
    assert [(p.day.day, p.energy_kwh) for p in capacity.peaks] == [
        (31, pytest.approx(12.0)),
        (5, pytest.approx(9.0)),
        (29, pytest.approx(8.5)),
    ]
    assert capacity.peaks[2].hour_start == local(OSLO, 2026, 3, 29, 3)
    assert capacity.month_value_kwh == pytest.approx((12.0 + 9.0 + 8.5) / 3)
    assert (capacity.step_kwh, capacity.next_threshold_kwh) == (10.0, 15.0)
    day_peaks = {p.day.day: p.energy_kwh for p in capacity.day_peaks}
    assert day_peaks[3] == pytest.approx(7.0) and day_peaks[1] == pytest.approx(0.5)
    assert len(day_peaks) == 31
    assert capacity.month_import_kwh == pytest.approx(0.5 * 743 + (7 + 6 + 4 + 9 + 8 + 8.5 + 12 - 7 * 0.5))
    april = place_capacity(store, place, "2026-04", now=local(OSLO, 2026, 4, 1, 2))
    assert [p.energy_kwh for p in april.peaks] == [pytest.approx(20.0)]
    assert (april.hours, april.month_value_kwh, april.step_kwh) == (2, pytest.approx(20.0), 20.0)


def test_month_to_date_counts_only_hours_that_have_ended(store: SQLiteStore) -> None:
    place = grid_place(store, OSLO, local(OSLO, 2026, 2, 28, 22), local(OSLO, 2026, 4, 1, 2), march_peaks())
    capacity = place_capacity(store, place, now=local(OSLO, 2026, 3, 10, 17, 30))
    assert capacity.month == "2026-03"
    assert capacity.as_of == local(OSLO, 2026, 3, 10, 17)
    assert capacity.hours == 9 * 24 + 17
    # The 8 kW hour of the 10th has not ended: top days are 9, 7 and 0.5.
    assert capacity.month_value_kwh == pytest.approx((9.0 + 7.0 + 0.5) / 3)
    assert (capacity.step_kwh, capacity.next_threshold_kwh) == (10.0, 15.0)


def test_equal_peaks_and_a_value_exactly_on_a_threshold(store: SQLiteStore) -> None:
    peaks = {local(OSLO, 2026, 6, day, 18): 5.0 for day in (2, 4, 9, 20)}
    place = grid_place(store, OSLO, local(OSLO, 2026, 6, 1), local(OSLO, 2026, 7, 1), peaks)
    capacity = place_capacity(store, place, "2026-06", now=local(OSLO, 2026, 7, 2))
    # Four equal days: the earliest three are kept; exactly 5.0 stays in the 5 step (as the reader does).
    assert [p.day for p in capacity.peaks] == [date(2026, 6, 2), date(2026, 6, 4), date(2026, 6, 9)]
    assert capacity.month_value_kwh == pytest.approx(5.0)
    assert (capacity.step_kwh, capacity.next_threshold_kwh) == (5.0, 10.0)


def test_the_repeated_hour_of_the_autumn_night_is_its_own_hour(store: SQLiteStore) -> None:
    first_two = local(OSLO, 2026, 10, 25, 2, fold=0)
    second_two = local(OSLO, 2026, 10, 25, 2, fold=1)
    assert second_two - first_two == HOUR
    peaks = {first_two: 3.0, second_two: 7.0, local(OSLO, 2026, 10, 26, 2): 4.0}
    place = grid_place(store, OSLO, local(OSLO, 2026, 10, 1), local(OSLO, 2026, 11, 1), peaks)
    capacity = place_capacity(store, place, "2026-10", now=local(OSLO, 2026, 11, 1))
    assert capacity.hours == 31 * 24 + 1
    assert [(p.day.day, p.hour_start, p.energy_kwh) for p in capacity.peaks] == [
        (25, second_two, pytest.approx(7.0)),
        (26, local(OSLO, 2026, 10, 26, 2), pytest.approx(4.0)),
        (1, local(OSLO, 2026, 10, 1), pytest.approx(0.5)),
    ]
    assert capacity.month_value_kwh == pytest.approx((7.0 + 4.0 + 0.5) / 3)
    assert capacity.step_kwh == 5.0


def test_local_hours_off_the_utc_hour(store: SQLiteStore) -> None:
    kolkata = "Asia/Kolkata"
    # 6 kW from 18:00 to 19:00 IST; an hour grid on UTC would split it into two 3 kWh hours.
    peak_lo, peak_hi = local(kolkata, 2026, 1, 5, 18), local(kolkata, 2026, 1, 5, 19)
    start, end = local(kolkata, 2026, 1, 1), local(kolkata, 2026, 2, 1)
    write_power(
        store,
        "grid",
        start,
        end,
        lambda ts: 6000.0 if peak_lo <= ts < peak_hi else BASE_W,
        tz=kolkata,
        interval_s=INTERVAL_S,
    )
    store.add_place(Place("in", kolkata, meters=(("grid", Role.GRID),)))
    capacity = place_capacity(store, store.get_place("in"), "2026-01", now=end, peak_days=1)
    assert capacity.peaks[0].energy_kwh == pytest.approx(6.0)
    assert capacity.peaks[0].hour_start.minute == 30


def test_thresholds_and_peak_days_from_the_tariff_and_options() -> None:
    start = local(OSLO, 2026, 1, 1)
    hours = [
        EnergyBucket(start + k * HOUR, start + (k + 1) * HOUR, kwh, 0.0, 3600.0, "registers", False)
        for k, kwh in enumerate([1.0, 30.0, 2.0, 3.0] + [0.0] * 20 + [4.0] + [0.0] * 23 + [2.5])
    ]
    peaks, top, value, step, following = capacity_of_hours(hours, OSLO, (2.0, 5.0, 10.0), peak_days=2)
    assert [p.energy_kwh for p in peaks] == [30.0, 4.0, 2.5]
    assert [p.energy_kwh for p in top] == [30.0, 4.0]
    assert (value, step, following) == (17.0, None, None)
    _, _, value, step, following = capacity_of_hours(hours[24:], OSLO, (2.0, 5.0, 10.0), peak_days=2)
    assert (value, step, following) == (3.25, 5.0, 10.0)
    assert capacity_of_hours([], OSLO)[2:] == (0.0, 5.0, 10.0)


def test_bad_months_and_places_are_refused(store: SQLiteStore) -> None:
    with pytest.raises(InputError, match="YYYY-MM"):
        month_edges("2026-13", OSLO)
    store.add_place(Place("empty", OSLO))
    with pytest.raises(InputError, match="has not begun"):
        place_capacity(store, store.get_place("empty"), "2027-01", now=local(OSLO, 2026, 5, 1))
    with pytest.raises(InputError, match="no grid meter"):
        place_capacity(store, store.get_place("empty"), "2026-01", now=local(OSLO, 2026, 5, 1))
