"""Capacity on days the hub holds only a daily total: the reader's own peaks, or a missing day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from meterhub.analytics.capacity import CapacityPeak, place_capacity
from meterhub.analytics.tariffs import Tariff
from meterhub.errors import InputError
from meterhub.model import IntervalEnergy, Meter, Place, Role
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.amsreader.tariff import ReaderPeak, TariffJsonError, capacity_from_tariff_json
from tests.analytics.builders import OSLO, local

FIXTURES = Path(__file__).parent.parent / "fixtures" / "amsreader_prices"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def test_tariff_json_gives_the_tariff_fields_and_the_readers_peaks() -> None:
    fields, peaks = capacity_from_tariff_json(orjson.loads((FIXTURES / "tariff.json").read_bytes()))
    # The 65535 padding goes; four peak entries (one still empty, day 0) mean four peak days.
    assert fields == {
        "capacity_thresholds_kwh": [2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
        "capacity_peak_days": 4,
    }
    assert peaks == (ReaderPeak(3, 17, 7.5), ReaderPeak(1, 10, 9.0), ReaderPeak(4, 20, 5.0))
    tariff = Tariff.from_data(fields)
    assert (tariff.capacity_thresholds_kwh, tariff.capacity_peak_days) == (
        (2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0),
        4,
    )


def test_the_documented_answer_without_hours() -> None:
    answer = {
        "t": [5, 10, 15, 20, 25, 50, 75, 100, 150, 65535],
        "p": [{"d": 7, "v": 8.64}, {"d": 3, "v": 9}, {"d": 14, "v": 8.84}],
        "c": 10,
        "m": 8.82,
    }
    fields, peaks = capacity_from_tariff_json(answer)
    assert fields == {
        "capacity_thresholds_kwh": [5.0, 10.0, 15.0, 20.0, 25.0, 50.0, 75.0, 100.0, 150.0],
        "capacity_peak_days": 3,
    }
    assert peaks == (ReaderPeak(7, None, 8.64), ReaderPeak(3, None, 9.0), ReaderPeak(14, None, 8.84))


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"t": [10, 5, 65535], "p": []}, "increasing"),
        ({"t": "5,10"}, "thresholds"),
        ({"t": [5, 10], "p": [{"d": 32, "h": 1, "v": 1.0}]}, "day 32"),
        ({"t": [5, 10], "p": [{"d": 2, "h": 24, "v": 1.0}]}, "hour 24"),
        ({"t": [5, 10], "p": [{"d": 2, "h": 1, "v": None}]}, "not a number"),
    ],
)
def test_bad_tariff_answers_are_refused(answer: dict[str, object], message: str) -> None:
    with pytest.raises(TariffJsonError, match=message):
        capacity_from_tariff_json(answer)


def hourly_day(day: date, peak_hour: int, peak_kwh: float) -> list[IntervalEnergy]:
    """24 hourly records of 1 kWh, except ``peak_kwh`` in local hour ``peak_hour``."""
    start = local(OSLO, day.year, day.month, day.day)
    return [
        IntervalEnergy(
            "grid",
            start + k * HOUR,
            start + (k + 1) * HOUR,
            peak_kwh if k == peak_hour else 1.0,
            0.0,
            "dayplot",
        )
        for k in range(24)
    ]


def daily_total(day: date, kwh: float) -> IntervalEnergy:
    start = local(OSLO, day.year, day.month, day.day)
    return IntervalEnergy("grid", start, start + DAY, kwh, 0.0, "monthplot")


def five_days(store: SQLiteStore, tariff: dict[str, object]) -> Place:
    """1-5 March 2026 (no DST): hourly records on the 1st, 2nd and 4th, daily totals on the 3rd and 5th."""
    store.add_meter(Meter("grid", "file", tz=OSLO, interval_s=3600))
    store.write_intervals(
        [
            *hourly_day(date(2026, 3, 1), 18, 6.0),
            *hourly_day(date(2026, 3, 2), 8, 4.0),
            daily_total(date(2026, 3, 3), 48.0),
            *hourly_day(date(2026, 3, 4), 20, 5.0),
            daily_total(date(2026, 3, 5), 72.0),
        ]
    )
    store.add_place(Place("home", OSLO, meters=(("grid", Role.GRID),), tariff=tariff))
    return store.get_place("home")


def test_days_with_only_a_daily_total_take_the_readers_peak_or_are_missing(store: SQLiteStore) -> None:
    fields, peaks = capacity_from_tariff_json(orjson.loads((FIXTURES / "tariff.json").read_bytes()))
    place = five_days(store, fields)
    capacity = place_capacity(store, place, "2026-03", now=local(OSLO, 2026, 3, 6), reader_peaks=peaks)
    # By hand (CET, UTC+1): the 1st, 2nd and 4th keep the hub's own hours (6.0 at 18:00, 4.0 at
    # 08:00, 5.0 at 20:00; the reader's 9.0 for the 1st is not used); the 3rd has only 48 kWh in
    # all and takes the reader's 7.5 at 17:00; the 5th has neither and is missing, not 72/24 at 00:00.
    assert capacity.day_peaks == (
        CapacityPeak(date(2026, 3, 1), utc(2026, 3, 1, 17), 6.0),
        CapacityPeak(date(2026, 3, 2), utc(2026, 3, 2, 7), 4.0),
        CapacityPeak(date(2026, 3, 3), utc(2026, 3, 3, 16), 7.5),
        CapacityPeak(date(2026, 3, 4), utc(2026, 3, 4, 19), 5.0),
    )
    assert capacity.missing_days == (date(2026, 3, 5),)
    # Four peak days (from tariff.json): (7.5 + 6 + 5 + 4) / 4 = 5.625, in the 8 step, next 16.
    assert [p.day.day for p in capacity.peaks] == [3, 1, 4, 2]
    assert capacity.month_value_kwh == pytest.approx(5.625)
    assert (capacity.step_kwh, capacity.next_threshold_kwh) == (8.0, 16.0)
    assert capacity.hours == 3 * 24
    # Energy still counts every day: 29 + 27 + 48 + 28 + 72.
    assert capacity.month_import_kwh == pytest.approx(204.0)
    assert capacity.estimated


def test_without_reader_peaks_such_days_are_missing_and_offer_nothing(store: SQLiteStore) -> None:
    place = five_days(store, {"capacity_thresholds_kwh": [2, 4, 8], "capacity_peak_days": 4})
    capacity = place_capacity(store, place, "2026-03", now=local(OSLO, 2026, 3, 6))
    assert [(p.day.day, p.energy_kwh) for p in capacity.day_peaks] == [(1, 6.0), (2, 4.0), (4, 5.0)]
    assert capacity.missing_days == (date(2026, 3, 3), date(2026, 3, 5))
    # (6 + 5 + 4) / 3 = 5.0: fewer days than four, none of them an invented 2.0 or 3.0 at 00:00.
    assert capacity.month_value_kwh == pytest.approx(5.0)
    assert (capacity.step_kwh, capacity.next_threshold_kwh) == (8.0, None)
    assert capacity.estimated


def test_a_reader_peak_on_the_spring_day_and_days_before_any_data(store: SQLiteStore) -> None:
    store.add_meter(Meter("grid", "file", tz=OSLO, interval_s=3600))
    store.add_place(Place("home", OSLO, meters=(("grid", Role.GRID),)))
    place = store.get_place("home")
    peaks = (ReaderPeak(29, 3, 4.2), ReaderPeak(30, 9, 9.9), ReaderPeak(12, None, 8.0))
    capacity = place_capacity(store, place, "2026-03", now=local(OSLO, 2026, 3, 30), reader_peaks=peaks)
    # 03:00 CEST on 29 March is 01:00 UTC; the 30th has not begun; an hourless peak cannot be placed.
    assert capacity.day_peaks == (CapacityPeak(date(2026, 3, 29), utc(2026, 3, 29, 1), 4.2),)
    assert capacity.missing_days == tuple(date(2026, 3, d) for d in range(1, 29))
    assert (capacity.hours, capacity.month_value_kwh, capacity.step_kwh) == (0, 4.2, 5.0)
    with pytest.raises(InputError, match="not a day of 2026-02"):
        place_capacity(
            store, place, "2026-02", now=local(OSLO, 2026, 3, 30), reader_peaks=[ReaderPeak(30, 1, 1.0)]
        )
