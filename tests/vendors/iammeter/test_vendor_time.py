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
