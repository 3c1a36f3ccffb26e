"""The ledger of recent days: complete days, agreeing reads, backing off, the lookback."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from meterhub.model import Extra, IntervalEnergy
from meterhub.vendors.umeter import mapping
from meterhub.vendors.umeter.payloads import local_midnight
from meterhub.vendors.umeter.recent import LOOKBACK_DAYS, RecentDays, is_complete

DAY = date(2026, 3, 3)
TODAY = date(2026, 3, 4)
NOW = datetime(2026, 3, 4, 12, tzinfo=UTC)
QUARTER = timedelta(minutes=15)


def day_of(quarters: int, day: date = DAY, cost: float = 0.01) -> mapping.Measurements:
    """Return the first ``quarters`` quarter hours of a local day, 0.1 kWh each."""
    start = local_midnight(day)
    intervals = [IntervalEnergy("um", start + i * QUARTER, start + (i + 1) * QUARTER, 0.1, 0.0, "umeter")
                 for i in range(quarters)]
    extras = [Extra("um", i.start, mapping.VENDOR_COST_EXTRA, cost) for i in intervals]
    return mapping.Measurements(intervals, [], extras)


@pytest.mark.parametrize(("day", "quarters"), [(date(2026, 3, 29), 92), (date(2026, 10, 25), 100), (DAY, 96)])
def test_a_day_is_complete_with_all_its_local_quarter_hours(day: date, quarters: int) -> None:
    assert is_complete(day, day_of(quarters, day))
    assert not is_complete(day, day_of(quarters - 1, day))
    assert not is_complete(day, day_of(0, day))


def test_a_complete_day_settles_when_a_read_agrees() -> None:
    ledger = RecentDays()
    assert not ledger.record(DAY, day_of(96), NOW).settled
    assert ledger.due(TODAY, NOW + timedelta(minutes=59)) == []
    assert ledger.due(TODAY, NOW + timedelta(hours=1)) == [DAY]
    assert ledger.record(DAY, day_of(96), NOW + timedelta(hours=1)).settled
    assert ledger.due(TODAY, NOW + timedelta(days=3)) == []


def test_a_changed_cost_is_a_change() -> None:
    ledger = RecentDays()
    ledger.record(DAY, day_of(96), NOW)
    read = ledger.record(DAY, day_of(96, cost=0.02), NOW + timedelta(hours=1))
    assert (read.settled, read.unchanged) == (False, 0)


def test_an_incomplete_day_is_read_again_ever_less_often() -> None:
    ledger = RecentDays()
    at = NOW
    waits_h = []
    for _ in range(7):
        read = ledger.record(DAY, day_of(48), at)
        assert not read.settled
        due_at = read.due_at()
        assert due_at is not None
        waits_h.append((due_at - at) / timedelta(hours=1))
        at = due_at
    assert waits_h == [1, 2, 4, 8, 16, 24, 24]


def test_reads_of_today_never_settle_it_nor_slow_it_down() -> None:
    ledger = RecentDays()
    for hour in range(3):
        read = ledger.record(TODAY, day_of(0, TODAY), NOW + timedelta(hours=hour), today=True)
        assert (read.settled, read.unchanged) == (False, 0)
    assert ledger.due(TODAY, NOW) == []  # today is read every poll anyway
    assert ledger.due(TODAY + timedelta(days=1), NOW + timedelta(hours=3)) == [TODAY]


def test_days_past_the_lookback_are_let_go_and_the_newest_comes_first() -> None:
    ledger = RecentDays()
    for back in range(LOOKBACK_DAYS + 2):
        ledger.watch(TODAY - timedelta(days=back))
    ledger.keep_within(TODAY)
    assert min(ledger.days) == TODAY - timedelta(days=LOOKBACK_DAYS)
    due = ledger.due(TODAY, NOW)
    assert due[0] == TODAY - timedelta(days=1) and len(due) == LOOKBACK_DAYS


def test_the_ledger_survives_as_text_and_bad_text_starts_afresh() -> None:
    ledger = RecentDays()
    ledger.record(DAY, day_of(96), NOW)
    again = RecentDays.from_text(ledger.to_text())
    assert again.days == ledger.days
    for bad in ("", "not json", "[1, 2]", '{"2026-03-03": {"digest": "x"}}', '{"someday": {}}'):
        assert RecentDays.from_text(bad).days == {}
