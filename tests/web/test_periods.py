"""period_of in Europe/Oslo: local calendar edges as UTC instants, across both DST days of 2026."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from meterhub.errors import InputError
from meterhub.web.periods import Period, energy_unit, period_of

OSLO = "Europe/Oslo"
NOW = datetime(2026, 6, 15, 10, 30, tzinfo=UTC)
"""A fixed 'now' (12:30 CEST on Monday 15 June 2026): nothing here reads the clock."""


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def hours(period: Period) -> float:
    return (period.end - period.start) / timedelta(hours=1)


@pytest.mark.parametrize(
    ("anchor", "start", "end", "length_h", "previous", "following"),
    [
        ("2026-03-28", utc(2026, 3, 27, 23), utc(2026, 3, 28, 23), 24, "2026-03-27", "2026-03-29"),
        ("2026-03-29", utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), 23, "2026-03-28", "2026-03-30"),
        ("2026-03-30", utc(2026, 3, 29, 22), utc(2026, 3, 30, 22), 24, "2026-03-29", "2026-03-31"),
        ("2026-10-25", utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), 25, "2026-10-24", "2026-10-26"),
        ("2026-10-26", utc(2026, 10, 25, 23), utc(2026, 10, 26, 23), 24, "2026-10-25", "2026-10-27"),
    ],
)
def test_a_day_is_its_local_midnights_in_utc_and_23_or_25_hours_on_dst_days(
    anchor: str, start: datetime, end: datetime, length_h: int, previous: str, following: str
) -> None:
    period = period_of("day", anchor, OSLO, NOW)
    assert (period.kind, period.start, period.end) == ("day", start, end)
    assert hours(period) == length_h
    assert (period.anchor, period.previous, period.next) == (anchor, previous, following)


def test_a_day_anchored_at_a_time_or_an_instant_is_the_local_day_holding_it() -> None:
    assert period_of("day", "2026-10-25T23:59", OSLO, NOW).start == utc(2026, 10, 24, 22)
    # 23:30 UTC on the 24th is already 01:30 CEST on the 25th in Oslo
    assert period_of("day", "2026-10-24T23:30:00+00:00", OSLO, NOW).anchor == "2026-10-25"
    assert period_of("day", None, OSLO, NOW).anchor == "2026-06-15"
    late = datetime(2026, 6, 15, 22, 30, tzinfo=UTC)  # 00:30 on the 16th in Oslo
    assert period_of("day", None, OSLO, late).anchor == "2026-06-16"


def test_stepping_days_with_previous_and_next_tiles_the_calendar_without_gaps() -> None:
    period = period_of("day", "2026-03-26", OSLO, NOW)
    lengths = []
    for _ in range(6):
        following = period_of("day", period.next, OSLO, NOW)
        assert following.start == period.end
        assert period_of("day", following.previous, OSLO, NOW) == period
        lengths.append(hours(period))
        period = following
    assert lengths == [24, 24, 24, 23, 24, 24]


@pytest.mark.parametrize(
    ("anchor", "monday", "start", "end"),
    [
        ("2026-03-29", "2026-03-23", utc(2026, 3, 22, 23), utc(2026, 3, 29, 22)),  # a Sunday
        ("2026-03-23", "2026-03-23", utc(2026, 3, 22, 23), utc(2026, 3, 29, 22)),  # its Monday
        ("2026-10-21", "2026-10-19", utc(2026, 10, 18, 22), utc(2026, 10, 25, 23)),
        ("2026-12-31", "2026-12-28", utc(2026, 12, 27, 23), utc(2027, 1, 3, 23)),  # across new year
    ],
)
def test_a_week_starts_on_monday(anchor: str, monday: str, start: datetime, end: datetime) -> None:
    period = period_of("week", anchor, OSLO, NOW)
    assert date.fromisoformat(period.anchor).weekday() == 0
    assert (period.anchor, period.start, period.end) == (monday, start, end)
    first = date.fromisoformat(monday)
    assert period.previous == (first - timedelta(days=7)).isoformat()
    assert period.next == (first + timedelta(days=7)).isoformat()
    assert period_of("week", period.next, OSLO, NOW).start == period.end


def test_the_dst_weeks_are_an_hour_short_and_an_hour_long() -> None:
    assert hours(period_of("week", "2026-03-25", OSLO, NOW)) == 7 * 24 - 1
    assert hours(period_of("week", "2026-10-25", OSLO, NOW)) == 7 * 24 + 1
    assert hours(period_of("week", "2026-06-15", OSLO, NOW)) == 7 * 24


@pytest.mark.parametrize(
    ("anchor", "first", "start", "end", "previous", "following"),
    [
        ("2026-03-15", "2026-03-01", utc(2026, 2, 28, 23), utc(2026, 3, 31, 22), "2026-02-01", "2026-04-01"),
        ("2026-01-31", "2026-01-01", utc(2025, 12, 31, 23), utc(2026, 1, 31, 23), "2025-12-01", "2026-02-01"),
        (
            "2026-12-31",
            "2026-12-01",
            utc(2026, 11, 30, 23),
            utc(2026, 12, 31, 23),
            "2026-11-01",
            "2027-01-01",
        ),
        ("2028-02-29", "2028-02-01", utc(2028, 1, 31, 23), utc(2028, 2, 29, 23), "2028-01-01", "2028-03-01"),
    ],
)
def test_a_month_runs_from_its_first_local_midnight_to_the_next_months(
    anchor: str, first: str, start: datetime, end: datetime, previous: str, following: str
) -> None:
    period = period_of("month", anchor, OSLO, NOW)
    assert (period.anchor, period.start, period.end) == (first, start, end)
    assert (period.previous, period.next) == (previous, following)


def test_a_year_is_its_local_new_years_and_steps_a_year() -> None:
    period = period_of("year", "2026-07-04", OSLO, NOW)
    assert (period.start, period.end) == (utc(2025, 12, 31, 23), utc(2026, 12, 31, 23))
    assert (period.anchor, period.previous, period.next, period.title) == (
        "2026-01-01",
        "2025-01-01",
        "2027-01-01",
        "2026",
    )
    assert period_of("year", period.next, OSLO, NOW).start == period.end
    assert period_of("year", "2026-12-31T23:59", OSLO, NOW).anchor == "2026-01-01"


def test_hours_step_over_the_spring_jump_where_two_oclock_does_not_exist() -> None:
    period = period_of("hour", "2026-03-29T00:40", OSLO, NOW)
    assert (period.anchor, period.start, period.end) == (
        "2026-03-29T00:00+01:00",
        utc(2026, 3, 28, 23),
        utc(2026, 3, 29),
    )
    anchors, starts = [], []
    for _ in range(4):
        anchors.append(period.anchor)
        starts.append(period.start)
        assert hours(period) == 1
        following = period_of("hour", period.next, OSLO, NOW)
        assert following.start == period.end
        period = following
    assert anchors == [
        "2026-03-29T00:00+01:00",
        "2026-03-29T01:00+01:00",
        "2026-03-29T03:00+02:00",
        "2026-03-29T04:00+02:00",
    ]
    assert starts == [utc(2026, 3, 28, 23), utc(2026, 3, 29, 0), utc(2026, 3, 29, 1), utc(2026, 3, 29, 2)]
    assert period_of("hour", "2026-03-29T03:00", OSLO, NOW).previous == "2026-03-29T01:00+01:00"


def test_an_hour_anchored_by_an_instant_is_the_hour_holding_it() -> None:
    second_two = period_of("hour", "2026-10-25T01:30:00+00:00", OSLO, NOW)  # 02:30 CET, the repeat
    assert (second_two.start, second_two.end) == (utc(2026, 10, 25, 1), utc(2026, 10, 25, 2))


def test_hours_step_through_the_autumn_hour_that_happens_twice() -> None:
    period = period_of("hour", "2026-10-25T00:00", OSLO, NOW)
    anchors, starts = [], []
    for _ in range(5):
        anchors.append(period.anchor)
        starts.append(period.start)
        following = period_of("hour", period.next, OSLO, NOW)
        assert following.start == period.end, (period.anchor, period.next)
        assert period_of("hour", following.previous, OSLO, NOW).start == period.start
        period = following
    assert starts == [utc(2026, 10, 24, 22), utc(2026, 10, 24, 23), *(utc(2026, 10, 25, h) for h in range(3))]
    assert anchors == [
        "2026-10-25T00:00+02:00",
        "2026-10-25T01:00+02:00",
        "2026-10-25T02:00+02:00",
        "2026-10-25T02:00+01:00",
        "2026-10-25T03:00+01:00",
    ]


def test_a_custom_range_keeps_its_instants_and_has_no_neighbours() -> None:
    start, end = utc(2026, 10, 24, 20), utc(2026, 10, 25, 5)
    period = period_of("custom", None, OSLO, NOW, start, end)
    assert (period.kind, period.start, period.end, period.previous, period.next) == (
        "custom",
        start,
        end,
        None,
        None,
    )
    assert period.anchor == "2026-10-24T22:00+02:00"
    assert energy_unit(period) == "hour"


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (utc(2026, 3, 2), utc(2026, 3, 1), "end must be after start"),
        (utc(2026, 3, 2), utc(2026, 3, 2), "end must be after start"),
        (utc(2020, 1, 1), utc(2023, 1, 5), "at most three years"),
        (None, utc(2026, 3, 1), "needs start and end"),
    ],
)
def test_bad_custom_ranges_say_what_is_wrong(start: datetime | None, end: datetime, message: str) -> None:
    with pytest.raises(InputError, match=message):
        period_of("custom", None, OSLO, NOW, start, end)


def test_three_years_is_the_longest_custom_range() -> None:
    start = utc(2023, 1, 1)
    assert period_of("custom", None, OSLO, NOW, start, start + timedelta(days=3 * 366)).end > start
    with pytest.raises(InputError):
        period_of("custom", None, OSLO, NOW, start, start + timedelta(days=3 * 366, seconds=1))


@pytest.mark.parametrize(
    "anchor", ["yesterday", "2026-13-01", "2026-02-30", "29.03.2026", "2026-03-29T25:00"]
)
def test_a_bad_anchor_is_an_input_error_naming_the_formats(anchor: str) -> None:
    with pytest.raises(InputError) as caught:
        period_of("day", anchor, OSLO, NOW)
    assert repr(anchor) in str(caught.value)
    assert "YYYY-MM-DD" in str(caught.value)


def test_an_unknown_range_kind_names_the_ones_there_are() -> None:
    with pytest.raises(InputError, match="hour, day, week, month, year, custom"):
        period_of("decade", "2026-03-29", OSLO, NOW)


@pytest.mark.parametrize(
    ("kind", "unit"), [("hour", "15m"), ("day", "hour"), ("week", "day"), ("month", "day"), ("year", "month")]
)
def test_each_view_has_its_energy_bar_unit(kind: str, unit: str) -> None:
    assert energy_unit(period_of(kind, "2026-10-25", OSLO, NOW)) == unit


@pytest.mark.parametrize(
    ("span", "unit"),
    [
        (timedelta(hours=6), "15m"),
        (timedelta(hours=7), "hour"),
        (timedelta(days=3), "hour"),
        (timedelta(days=4), "day"),
        (timedelta(days=93), "day"),
        (timedelta(days=94), "month"),
    ],
)
def test_a_custom_ranges_bars_grow_with_its_span(span: timedelta, unit: str) -> None:
    start = utc(2026, 1, 1)
    assert energy_unit(period_of("custom", None, OSLO, NOW, start, start + span)) == unit
