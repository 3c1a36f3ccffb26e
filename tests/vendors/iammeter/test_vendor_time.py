"""Vendor times read as the numbers they write, padded or not, and impossible ones are refused."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterhub.errors import PayloadError
from meterhub.vendors.iammeter import mapping

OSLO = ZoneInfo("Europe/Oslo")


def _written(number: int, padded: bool, digits: int = 2) -> str:
    return f"{number:0{digits}d}" if padded else str(number)


@settings(max_examples=1000, deadline=None)
@given(st.integers(1, 9999), st.integers(0, 99), st.integers(0, 99), st.integers(0, 99), st.integers(0, 99),
       st.integers(0, 99), st.booleans(), st.sampled_from([UTC, OSLO]))
def test_a_vendor_time_is_its_numbers_or_refused(year: int, month: int, day: int, hour: int, minute: int,
                                                 second: int, padded: bool, zone: ZoneInfo) -> None:
    parts = [_written(n, padded) for n in (month, day, hour, minute, second)]
    text = f"{_written(year, padded, 4)}/{parts[0]}/{parts[1]} {parts[2]}:{parts[3]}:{parts[4]}"
    try:
        expected = datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError as exc:
        with pytest.raises(PayloadError, match="does not exist") as refused:
            mapping.parse_vendor_time(text, zone)
        assert str(exc) in str(refused.value)
        return
    assert mapping.parse_vendor_time(text, zone) == expected
    assert mapping.parse_vendor_time(text, zone).tzinfo is zone


@pytest.mark.parametrize(
    "text", ["2025/6/2 4:00", "2025-06-02 04:00:00", "2025/6/2 4:00:000", "٢٠٢٥/6/2 4:00:00"]
)
def test_other_shapes_are_refused(text: str) -> None:
    with pytest.raises(PayloadError, match="is not like 2023/9/1 0:00:22"):
        mapping.parse_vendor_time(text)


_SPACE = st.sampled_from(["", " ", "\t", "  "])


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["2025/6/2", "2024/2/29", "2025/2/29", "2025/13/1", "0/1/1", "2025/06/02"]),
       st.sampled_from(["4:00:00", "23:59:59", "04:5:6", "24:00:00", "4:60:00", "4:00", "4:00:00:00",
                        "4:0a:00", "4:\u06600:00", "4:+1:00", "4: 1:00", "-0:00:00"]),
       _SPACE, st.sampled_from([" ", "  ", "\t"]), _SPACE)
def test_a_remembered_date_reads_as_the_pattern_reads_it(date: str, clock: str, before: str, between: str,
                                                         after: str) -> None:
    """The date a text shares with earlier ones is looked up, and the text is read, or refused with
    the same message, as when its date was new."""

    def read(text: str) -> datetime | str:
        try:
            return mapping.parse_vendor_time(text, OSLO)
        except PayloadError as exc:
            return str(exc)

    mapping._dates.clear()
    text = f"{before}{date}{between}{clock}{after}"
    first = read(text)
    read(f"{date} 0:00:00")  # remembers the date when it exists
    assert read(text) == first
    assert read(text) == first
    if isinstance(first, datetime):
        assert first.tzinfo is OSLO


def test_remembered_dates_stay_few() -> None:
    mapping._dates.clear()
    for day in range(1, 200):
        when = datetime(2020, 1, 1, tzinfo=UTC).toordinal() + day
        date = datetime.fromordinal(when).replace(tzinfo=UTC)
        text = f"{date.year}/{date.month}/{date.day} 1:02:03"
        assert mapping.parse_vendor_time(text) == date.replace(hour=1, minute=2, second=3)
        assert len(mapping._dates) <= mapping._DATES_KEPT
    assert mapping._dates
