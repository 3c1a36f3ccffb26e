"""Offline statistics from gap events, clipped to the range asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meterhub.analytics.offline import OfflineStats, offline_stats
from meterhub.errors import InputError
from meterhub.model import Meter, Reading
from meterhub.store.sqlite import SQLiteStore

DAY = datetime(2026, 3, 1, tzinfo=UTC)


def at(hour: int, minute: int = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute)


@pytest.fixture
def gappy(store: SQLiteStore) -> SQLiteStore:
    """One reading a minute on 2026-03-01, silent 10:00-10:30 and 20:00-22:00, 12:00 missed."""
    store.add_meter(Meter("m1", "file", interval_s=60))
    silent = [(at(10), at(10, 30)), (at(12), at(12, 1)), (at(20), at(22))]
    minutes = (DAY + timedelta(minutes=k) for k in range(24 * 60))
    store.write_readings([
        Reading("m1", ts, power_w=100.0)
        for ts in minutes
        if not any(lo <= ts < hi for lo, hi in silent)
    ])
    return store


def test_whole_day_counts_both_gaps_in_full(gappy: SQLiteStore) -> None:
    # 09:59 -> 10:30 is 31 minutes, 19:59 -> 22:00 is 121 minutes; 11:59 -> 12:01 is 2 minutes,
    # not longer than twice the interval, so no gap.
    assert offline_stats(gappy, "m1", DAY, DAY + timedelta(days=1)) == OfflineStats(
        gaps=2, total_offline_s=(31 + 121) * 60.0
    )


def test_gaps_are_clipped_to_the_range(gappy: SQLiteStore) -> None:
    # 10:15-10:30 inside the first gap, 19:59-21:00 inside the second.
    assert offline_stats(gappy, "m1", at(10, 15), at(21)) == OfflineStats(2, 15 * 60.0 + 61 * 60.0)


def test_ranges_between_or_touching_gaps_have_none(gappy: SQLiteStore) -> None:
    assert offline_stats(gappy, "m1", at(11), at(19)) == OfflineStats(0, 0.0)
    assert offline_stats(gappy, "m1", DAY, at(9, 59)) == OfflineStats(0, 0.0)
    assert offline_stats(gappy, "m1", at(10, 30), at(19, 59)) == OfflineStats(0, 0.0)


def test_a_reversed_range_is_refused(gappy: SQLiteStore) -> None:
    with pytest.raises(InputError, match="before start"):
        offline_stats(gappy, "m1", at(12), at(11))
