"""Catalog writes under concurrency: several stores on one database write the same rows at once.

Each thread has its own store (its own connection, as separate hub processes would), and all of
them start together on a barrier. Work is bounded by count: no timing is asserted.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from meterhub.errors import ConflictError
from meterhub.model import Meter, Place, PricePoint, Role, UserRole
from meterhub.store.base import Store
from tests.backends import Backend

T0 = datetime(2026, 3, 1, tzinfo=UTC)
WRITERS = 4
ROUNDS = 25


def _together(stores: list[Store], work: Callable[[Store, int], None]) -> list[BaseException]:
    """Run ``work(store, writer)`` on every store at once; return what any of them raised."""
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def run(store: Store, writer: int) -> None:
        try:
            barrier.wait(timeout=60)
            work(store, writer)
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(store, n)) for n, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a writer never finished"
    return errors


def _stores(backend: Backend) -> list[Store]:
    first = backend.open()
    first.add_meter(Meter("m1", "file"))
    return [first, *(backend.open(migrate=False) for _ in range(WRITERS - 1))]


def test_concurrent_health_writers_count_every_failure(backend: Backend) -> None:
    stores = _stores(backend)

    def fail(store: Store, writer: int) -> None:
        for n in range(ROUNDS):
            store.record_health("m1", False, T0 + timedelta(seconds=n), f"writer {writer}")

    assert _together(stores, fail) == []
    health = stores[0].health()["m1"]
    assert health.consecutive_failures == WRITERS * ROUNDS
    assert not health.online
    assert health.last_error is not None and health.last_error.startswith("writer ")


def test_concurrent_health_successes_and_failures_never_collide(backend: Backend) -> None:
    stores = _stores(backend)

    def alternate(store: Store, writer: int) -> None:
        for n in range(ROUNDS):
            store.record_health("m1", (n + writer) % 2 == 0, T0 + timedelta(seconds=n), "down")

    assert _together(stores, alternate) == []
    after = stores[0].record_health("m1", False, T0 + timedelta(hours=1), "last")
    assert after.consecutive_failures >= 1
    assert stores[0].record_health("m1", True, T0 + timedelta(hours=2)).consecutive_failures == 0


def test_concurrent_place_updates_shares_and_prices_never_collide(backend: Backend) -> None:
    stores = _stores(backend)
    stores[0].add_place(Place("home", "UTC", "Home"))
    stores[0].add_user("ann", UserRole.VIEWER, "hash")

    def write(store: Store, writer: int) -> None:
        for n in range(ROUNDS):
            store.update_place(Place("home", "UTC", f"w{writer} r{n}", (("m1", Role.GRID),)))
            store.attach_meter("home", "m1", Role.SOLAR if n % 2 else Role.GRID)
            store.share("ann", "place", "home")
            slot = T0 + timedelta(hours=n)
            store.write_prices([PricePoint(slot, slot + timedelta(hours=1), 0.1 * writer, "EUR")])

    assert _together(stores, write) == []
    assert [m for m, _ in stores[0].get_place("home").meters] == ["m1"]
    assert stores[0].shares_of("ann") == [("place", "home")]
    assert len(stores[0].prices(T0, T0 + timedelta(hours=ROUNDS))) == ROUNDS


def test_concurrent_adds_of_one_user_or_place_answer_one_conflict_each(backend: Backend) -> None:
    stores = _stores(backend)
    def add(store: Store, writer: int) -> None:
        for n in range(ROUNDS):
            with contextlib.suppress(ConflictError):
                store.add_user(f"u{n}", UserRole.VIEWER, "hash")
            with contextlib.suppress(ConflictError):
                store.add_place(Place(f"p{n}", "UTC"))

    assert _together(stores, add) == []
    assert len(stores[0].list_users()) == ROUNDS
    assert len(stores[0].list_places()) == ROUNDS
