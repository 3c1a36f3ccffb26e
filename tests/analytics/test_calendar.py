"""Local calendar edges: DST days of 23 and 25 hours, and zones 30 and 45 minutes off the hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from meterhub.analytics.calendar import bucket_name, bucket_unit, local_boundaries
from meterhub.errors import InputError

OSLO = "Europe/Oslo"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def hours_between(edges: list[datetime]) -> list[float]:
    return [(b - a) / timedelta(hours=1) for a, b in pairwise(edges)]


def test_oslo_days_across_spring_forward_are_24_23_24_hours() -> None:
    edges = local_boundaries(utc(2026, 3, 27, 23), utc(2026, 3, 30, 22), OSLO, "day")
    assert edges == [utc(2026, 3, 27, 23), utc(2026, 3, 28, 23), utc(2026, 3, 29, 22),
                     utc(2026, 3, 30, 22)]
    assert hours_between(edges) == [24, 23, 24]


def test_oslo_fall_back_day_is_25_hours() -> None:
    day_start = datetime(2026, 10, 25, tzinfo=ZoneInfo(OSLO)).astimezone(UTC)
    edges = local_boundaries(day_start, day_start + timedelta(hours=25), OSLO, "day")
    assert edges == [utc(2026, 10, 24, 22), utc(2026, 10, 25, 23)]
    assert hours_between(edges) == [25]


def test_edges_are_utc_and_cover_the_range_from_a_mid_day_start() -> None:
    edges = local_boundaries(utc(2026, 3, 29, 12, 7), utc(2026, 3, 30, 1), OSLO, "day")
    assert edges == [utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), utc(2026, 3, 30, 22)]
    assert all(edge.tzinfo is UTC for edge in edges)


def test_an_edge_range_gives_just_that_edge() -> None:
    assert local_boundaries(utc(2026, 3, 28, 23), utc(2026, 3, 28, 23), OSLO, "day") == [
        utc(2026, 3, 28, 23)
    ]


def test_oslo_spring_forward_day_has_23_hour_edges_apart() -> None:
    edges = local_boundaries(utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), OSLO, "hour")
    assert len(edges) == 24
    assert set(hours_between(edges)) == {1.0}
    local_hours = [edge.astimezone(ZoneInfo(OSLO)).hour for edge in edges]
    assert 2 not in local_hours[:-1]  # 02:00 does not exist that night


def test_oslo_fall_back_day_has_25_hours_and_two_local_two_oclocks() -> None:
    edges = local_boundaries(utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), OSLO, "hour")
    assert len(edges) == 26
    two_oclock = [e for e in edges if e.astimezone(ZoneInfo(OSLO)).hour == 2]
    assert two_oclock == [utc(2026, 10, 25, 0), utc(2026, 10, 25, 1)]


def test_kathmandu_day_and_hour_edges_sit_at_quarter_past_utc() -> None:
    days = local_boundaries(utc(2026, 1, 1, 0), utc(2026, 1, 2, 0), "Asia/Kathmandu", "day")
    assert days == [utc(2025, 12, 31, 18, 15), utc(2026, 1, 1, 18, 15), utc(2026, 1, 2, 18, 15)]
    hours = local_boundaries(utc(2026, 1, 1, 0), utc(2026, 1, 1, 3), "Asia/Kathmandu", "hour")
    assert hours == [utc(2025, 12, 31, 23, 15), utc(2026, 1, 1, 0, 15), utc(2026, 1, 1, 1, 15),
                     utc(2026, 1, 1, 2, 15), utc(2026, 1, 1, 3, 15)]


def test_kolkata_day_and_hour_edges_sit_at_half_past_utc() -> None:
    days = local_boundaries(utc(2026, 6, 1, 0), utc(2026, 6, 1, 0), "Asia/Kolkata", "day")
    assert days == [utc(2026, 5, 31, 18, 30), utc(2026, 6, 1, 18, 30)]
    hours = local_boundaries(
        utc(2026, 6, 1, 10, 40), utc(2026, 6, 1, 11, 30), "Asia/Kolkata", "hour"
    )
    assert hours == [utc(2026, 6, 1, 10, 30), utc(2026, 6, 1, 11, 30)]


def test_quarters_follow_the_utc_grid() -> None:
    edges = local_boundaries(
        utc(2026, 1, 1, 0, 5), utc(2026, 1, 1, 0, 50), "Asia/Kathmandu", "15m"
    )
    assert edges == [utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 0, 15), utc(2026, 1, 1, 0, 30),
                     utc(2026, 1, 1, 0, 45), utc(2026, 1, 1, 1, 0)]


def test_lord_howe_half_hour_jump_begins_a_short_hour() -> None:
    # Lord Howe goes from +10:30 to +11:00 at 02:00 local on 2026-10-04 (15:30 UTC on the 3rd):
    # the clock reads 02:30 at the jump, so local hour 2 lasts 30 minutes.
    edges = local_boundaries(
        utc(2026, 10, 3, 14, 30), utc(2026, 10, 3, 17, 0), "Australia/Lord_Howe", "hour"
    )
    assert edges == [utc(2026, 10, 3, 14, 30), utc(2026, 10, 3, 15, 30), utc(2026, 10, 3, 16, 0),
                     utc(2026, 10, 3, 17, 0)]


def test_lord_howe_half_hour_fall_back_gives_a_long_hour() -> None:
    # Back from +11:00 to +10:30 at 02:00 local on 2026-04-05 (15:00 UTC on the 4th): 01:00-02:00
    # local lasts 90 minutes.
    edges = local_boundaries(
        utc(2026, 4, 4, 14, 0), utc(2026, 4, 4, 16, 30), "Australia/Lord_Howe", "hour"
    )
    assert edges == [utc(2026, 4, 4, 14, 0), utc(2026, 4, 4, 15, 30), utc(2026, 4, 4, 16, 30)]


def test_months_and_years_in_oslo() -> None:
    months = local_boundaries(utc(2026, 2, 15), utc(2026, 4, 2), OSLO, "month")
    assert months == [utc(2026, 1, 31, 23), utc(2026, 2, 28, 23), utc(2026, 3, 31, 22),
                      utc(2026, 4, 30, 22)]
    years = local_boundaries(utc(2026, 6, 1), utc(2026, 12, 31, 23), OSLO, "year")
    assert years == [utc(2025, 12, 31, 23), utc(2026, 12, 31, 23)]


def test_december_rolls_into_the_next_year() -> None:
    months = local_boundaries(utc(2026, 12, 10), utc(2027, 1, 5), "UTC", "month")
    assert months == [utc(2026, 12, 1), utc(2027, 1, 1), utc(2027, 2, 1)]


def test_a_skipped_midnight_starts_the_day_at_the_jump() -> None:
    # Chile skips 2026-09-06 00:00-01:00: that day begins at 01:00 -03 = 04:00 UTC, lasts 23 h.
    edges = local_boundaries(utc(2026, 9, 5, 12), utc(2026, 9, 6, 12), "America/Santiago", "day")
    assert edges == [utc(2026, 9, 5, 4), utc(2026, 9, 6, 4), utc(2026, 9, 7, 3)]


def test_naive_times_unknown_units_and_reversed_ranges_are_refused() -> None:
    with pytest.raises(InputError, match="time zone"):
        local_boundaries(datetime(2026, 1, 1), utc(2026, 1, 2), OSLO, "day")
    with pytest.raises(InputError, match="unknown calendar unit"):
        local_boundaries(utc(2026, 1, 1), utc(2026, 1, 2), OSLO, "fortnight")
    with pytest.raises(InputError, match="before start"):
        local_boundaries(utc(2026, 1, 2), utc(2026, 1, 1), OSLO, "day")
    with pytest.raises(InputError, match="time zone"):
        local_boundaries(utc(2026, 1, 1), utc(2026, 1, 2), "Mars/Olympus", "day")


def test_weeks_run_from_monday_to_monday_at_local_midnight_through_the_autumn_change() -> None:
    edges = local_boundaries(utc(2026, 10, 21), utc(2026, 10, 27), OSLO, "week")
    assert [e.astimezone(ZoneInfo(OSLO)).isoformat() for e in edges] == [
        "2026-10-19T00:00:00+02:00",
        "2026-10-26T00:00:00+01:00",
        "2026-11-02T00:00:00+01:00",
    ]
    assert (edges[1] - edges[0]).total_seconds() == 169 * 3600  # the week clocks go back is an hour longer
    assert bucket_unit("1w") == bucket_unit("week") == "week"
    names = [bucket_name(text) for text in ("hour", "DAY", "month", "year", "1mo")]
    assert names == ["1h", "1d", "1mo", "1y", "1mo"]
    with pytest.raises(InputError, match="unknown bucket 'fortnight'"):
        bucket_name("fortnight")
