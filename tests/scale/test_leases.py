"""Work leases and quota bookings in the store, on PostgreSQL (shared) and SQLite (one process).

Several workers are several stores on one database, as several processes would be. Rounds of
claims are counted, never timed: expiry is awaited as a condition under a generous deadline.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from meterhub.errors import ConfigError
from meterhub.store.base import Store
from meterhub.store.leases import BACKFILL, POLL, fair_share, reserve_quota, work_leases
from meterhub.store.sqlite_leases import lock_path, lock_single_process
from tests.backends import Backend
from tests.waiting import wait_until

ITEMS = [f"m{n:03d}" for n in range(30)]
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LEASE_S = 2.0


def settle(stores: dict[str, Store], lease_s: float, rounds: int = 4) -> dict[str, frozenset[str]]:
    """Let every worker claim ``rounds`` times in turn; return what each holds after the last."""
    held: dict[str, frozenset[str]] = {}
    for _ in range(rounds):
        for worker, store in stores.items():
            leases = work_leases(store)
            claimed = leases.claim(worker, "poller", POLL, ITEMS, lease_s)
            over = len(claimed.held) - claimed.share
            keep = claimed.held
            if over > 0:  # as the poller does: give back what is over the share
                give = sorted(claimed.held)[-over:]
                leases.release(worker, POLL, give)
                keep = claimed.held - set(give)
            held[worker] = keep
    return held


@pytest.mark.postgres
def test_postgres_workers_divide_the_meters_and_take_over_a_dead_ones(tmp_path: object) -> None:
    backend = Backend("postgres", tmp_path)  # type: ignore[arg-type]
    try:
        stores = {name: backend.open() for name in ("w1", "w2", "w3")}
        held = settle(stores, lease_s=LEASE_S)
        assert sorted(len(items) for items in held.values()) == [10, 10, 10]
        everything = [item for items in held.values() for item in items]
        assert sorted(everything) == ITEMS  # every meter held, none twice
        seen = work_leases(stores["w1"]).workers(LEASE_S)
        assert [(w.worker, w.held) for w in seen] == [("w1", 10), ("w2", 10), ("w3", 10)]

        # w3 dies: it stops renewing. The others take its meters once its leases expire.
        short = {name: stores[name] for name in ("w1", "w2")}
        dead = held["w3"]
        rounds = 0

        def taken_over() -> bool:
            nonlocal rounds
            rounds += 1
            now_held = settle(short, lease_s=LEASE_S, rounds=1)
            return set().union(*now_held.values()) == set(ITEMS)

        wait_until(taken_over, "the live workers to take the dead worker's meters")
        assert rounds > 1  # not before the dead worker's leases expired
        after = settle(short, lease_s=60, rounds=2)
        assert sorted(len(items) for items in after.values()) == [15, 15]
        assert dead <= after["w1"] | after["w2"]
        assert not after["w1"] & after["w2"]

        # a clean stop gives everything back at once, and the other takes it in its next round
        work_leases(stores["w2"]).leave("w2")
        alone = work_leases(stores["w1"]).claim("w1", "poller", POLL, ITEMS, 60)
        assert alone.workers == 1 and alone.held == frozenset(ITEMS)
    finally:
        backend.close()


def test_a_backfill_lease_has_one_holder(backend: Backend) -> None:
    first, second = backend.open(), backend.open()
    assert work_leases(first).take("cli-1", BACKFILL, "m001", 60) is None
    if work_leases(first).shared:
        assert work_leases(second).take("cli-2", BACKFILL, "m001", 60) == "cli-1"
    assert work_leases(first).take("cli-1", BACKFILL, "m001", 60) is None  # renewal by its holder
    work_leases(first).release("cli-1", BACKFILL, ["m001"])
    assert work_leases(second).take("cli-2", BACKFILL, "m001", 60) is None


def test_sqlite_leases_grant_the_one_process_everything(tmp_path: object) -> None:
    backend = Backend("sqlite", tmp_path)  # type: ignore[arg-type]
    try:
        leases = work_leases(backend.open())
        claimed = leases.claim("solo", "all", POLL, ITEMS, 30)
        assert not leases.shared
        assert (claimed.held, claimed.workers, claimed.share) == (frozenset(ITEMS), 1, 30)
        assert [(w.worker, w.role, w.held) for w in leases.workers(30)] == [("solo", "all", 30)]
    finally:
        backend.close()


def test_fair_share_rounds_up_so_every_meter_has_a_holder() -> None:
    assert [fair_share(300, n) for n in (1, 2, 3, 7)] == [300, 150, 100, 43]
    assert fair_share(5, 0) == 5


def test_quota_bookings_keep_the_window_and_its_margin(backend: Backend) -> None:
    store = backend.open()
    first = reserve_quota(store, "k", 1, 60, T0, 1.0, 5.0)
    assert first.booked and first.at == T0
    # the next slot is 61 s after the first: too far for a 5 s wait, so nothing is booked
    refused = reserve_quota(store, "k", 1, 60, T0 + timedelta(seconds=30), 1.0, 5.0)
    assert not refused.booked and refused.at == T0 + timedelta(seconds=61)
    # close to it, the booking is for the slot's moment (the caller waits until then)
    near = reserve_quota(store, "k", 1, 60, T0 + timedelta(seconds=59.5), 1.0, 5.0)
    assert near.booked and near.at == T0 + timedelta(seconds=61)
    # two per window: the third is one window and margin after the first of the two before it
    times = [reserve_quota(store, "two", 2, 10, T0, 0.5, 60.0).at for _ in range(5)]
    assert times == [
        T0,
        T0,
        T0 + timedelta(seconds=10.5),
        T0 + timedelta(seconds=10.5),
        T0 + timedelta(seconds=21),
    ]


def test_concurrent_bookings_never_crowd_a_window(backend: Backend) -> None:
    stores = [backend.open() for _ in range(4)]
    booked: list[datetime] = []
    lock = threading.Lock()

    def book(store: Store, skew_s: float) -> None:
        for _ in range(10):  # clocks up to 0.4 s apart, within the 0.5 s margin
            answer = reserve_quota(store, "shared", 1, 2, T0 + timedelta(seconds=skew_s), 0.5, 3600.0)
            assert answer.booked
            with lock:
                booked.append(answer.at)

    threads = [threading.Thread(target=book, args=(s, n * 0.1)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ordered = sorted(booked)
    assert len(ordered) == 40
    assert all((later - earlier).total_seconds() >= 2.5 for earlier, later in pairwise(ordered))


def test_a_sqlite_database_is_served_by_one_process(tmp_path: object) -> None:
    database = f"{tmp_path}/hub.db"
    held = lock_single_process(database)
    try:
        with pytest.raises(ConfigError, match="PostgreSQL") as refused:
            lock_single_process(database)
        assert "already served by meterhub serve (pid" in str(refused.value)
    finally:
        held.release()
    again = lock_single_process(database)  # free once released (or once its process ends)
    again.release()
    assert lock_path(database).name == "hub.db.serve-lock"
