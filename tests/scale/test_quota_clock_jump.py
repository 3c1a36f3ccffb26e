"""Quota bookings made by a clock that was set back since never hold calls for the jump."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from meterhub.store import open_store
from meterhub.store.leases import CLOCK_JUMP_S, reserve_quota

T0 = datetime(2026, 12, 5, 12, tzinfo=UTC)


def test_a_booking_years_ahead_counts_as_made_now_and_the_window_still_holds(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        future = T0 + timedelta(days=4 * 365)  # booked while the clock read four years later
        assert reserve_quota(store, "k", 1, 60, future, 0.5, 5.0).booked
        first = reserve_quota(store, "k", 1, 60, T0, 0.5, 5.0)
        second = reserve_quota(store, "k", 1, 60, T0, 0.5, 120.0)
    finally:
        store.close()
    # The far booking is taken as made at T0: a window of one call still holds from there.
    assert not first.booked and first.at == T0 + timedelta(seconds=60.5)
    assert second.booked and second.at == T0 + timedelta(seconds=60.5)


def test_a_booking_within_the_horizon_is_respected_as_it_is(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        ahead = T0 + timedelta(seconds=CLOCK_JUMP_S)  # another worker's booking, an hour ahead
        assert reserve_quota(store, "k", 1, 60, ahead, 0.5, 5.0).booked
        later = reserve_quota(store, "k", 1, 60, T0, 0.5, 10_000.0)
    finally:
        store.close()
    assert later.booked and later.at == ahead + timedelta(seconds=60.5)
