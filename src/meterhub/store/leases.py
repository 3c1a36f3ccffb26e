"""Work shared between processes through the database: leases on meters, and quota reservations.

Several ``meterhub serve --role poller`` processes on one PostgreSQL database share the meters
through *leases*: each meter (and each backfill) is leased by one worker at a time for a few
seconds, renewed while the worker lives. A worker that dies stops renewing; once its leases
expire the others take its meters. Workers also divide the meters fairly: each aims at an equal
share of the meters among the workers seen alive, gives back what is over its share and takes
free meters up to it. Lease times are the database's clock, so the workers' clocks never decide
who holds a meter.

A *quota reservation* books the moment a vendor request goes out, atomically in the database: the
next request under the same limit is booked at least a window plus a margin later, whichever
worker makes it. The caller waits until its booked moment and then sends.

On SQLite one process holds everything (:func:`lock_single_process` makes sure of it), so its
leases grant every meter to that process.

``work_leases(store)`` returns the backend's :class:`WorkLeases`; ``reserve_quota(store, ...)``
books a quota slot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from meterhub.errors import StoreError
from meterhub.store.base import Store

__all__ = [
    "POLL",
    "LeaseRound",
    "Reservation",
    "WorkLeases",
    "WorkerSeen",
    "fair_share",
    "reserve_quota",
    "work_leases",
]

POLL = "poll"
"""The lease kind of a meter's polling (and the recovery backfills that follow its polls)."""
BACKFILL = "backfill"
"""The lease kind of a backfill run by hand (``meterhub backfill``), keyed by its job key."""


@dataclass(frozen=True, slots=True)
class LeaseRound:
    """What one renewal round left a worker holding."""

    held: frozenset[str]
    """The items this worker holds now, each until ``lease_s`` after the round."""
    workers: int
    """Workers alive (this one included), as the database saw them in this round."""
    share: int
    """How many items this worker should hold: the wanted items divided among the workers."""


@dataclass(frozen=True, slots=True)
class WorkerSeen:
    """A worker known to the database: its id, role, and the items it holds."""

    worker: str
    role: str
    seen_s_ago: float
    held: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """A booked (``booked``) or refused quota slot, and the moment it is (or would be) for."""

    booked: bool
    at: datetime


class WorkLeases(Protocol):
    """Leases on work items, kept in the database."""

    shared: bool
    """Whether several processes may share the work (False: this process holds everything)."""

    def claim(self, worker: str, role: str, kind: str, wanted: Sequence[str], lease_s: float) -> LeaseRound:
        """Say ``worker`` is alive; renew its leases of ``wanted`` items, take free ones up to its share."""
        ...

    def release(self, worker: str, kind: str, items: Sequence[str]) -> None:
        """Give back ``items`` of ``kind`` that ``worker`` holds, so others may take them at once."""
        ...

    def leave(self, worker: str) -> None:
        """Give back everything ``worker`` holds and forget it (a worker stopping cleanly)."""
        ...

    def take(self, worker: str, kind: str, item: str, lease_s: float) -> str | None:
        """Lease one item to ``worker`` unless another holds it; return that other holder, or None."""
        ...

    def workers(self, lease_s: float) -> list[WorkerSeen]:
        """Return the workers seen within ``lease_s`` and how many items each holds."""
        ...


def fair_share(wanted: int, workers: int) -> int:
    """Return how many of ``wanted`` items one of ``workers`` workers should hold (rounded up)."""
    return math.ceil(wanted / max(1, workers))


def work_leases(store: Store) -> WorkLeases:
    """Return the leases of ``store``'s backend."""
    from meterhub.store.postgres import PostgresStore
    from meterhub.store.sqlite import SQLiteStore

    if isinstance(store, PostgresStore):
        from meterhub.store.postgres_leases import PostgresLeases

        return PostgresLeases(store)
    if isinstance(store, SQLiteStore):
        from meterhub.store.sqlite_leases import SQLiteLeases

        return SQLiteLeases(store)
    raise StoreError(f"{type(store).__name__} keeps no work leases")


def reserve_quota(
    store: Store,
    key: str,
    limit: int,
    window_s: int,
    now: datetime,
    margin_s: float,
    max_wait_s: float,
) -> Reservation:
    """Book the moment of the next call under a quota ``key``, or refuse when it is too far off.

    The booked moment is ``now`` or later: never before the newest booking of the key, and at
    least ``window_s + margin_s`` after the ``limit``-th newest, so any ``window_s`` (measured by
    a clock up to ``margin_s`` off) holds at most ``limit`` calls. When that moment lies more
    than ``max_wait_s`` after ``now`` nothing is booked and the answer says when it would be.
    """
    from meterhub.store.postgres import PostgresStore
    from meterhub.store.sqlite import SQLiteStore

    if isinstance(store, PostgresStore):
        from meterhub.store.postgres_leases import reserve_postgres

        return reserve_postgres(store, key, limit, window_s, now, margin_s, max_wait_s)
    if isinstance(store, SQLiteStore):
        from meterhub.store.sqlite_leases import reserve_sqlite

        return reserve_sqlite(store, key, limit, window_s, now, margin_s, max_wait_s)
    raise StoreError(f"{type(store).__name__} keeps no quota ledger")


def booked_at_ms(
    recent_desc_ms: Sequence[int], limit: int, window_s: int, now_ms: int, margin_s: float
) -> int:
    """Return the moment to book, from the key's bookings newest first (shared by both backends)."""
    # A booking is never made further ahead than a call may wait; one beyond the window and an
    # hour ahead was made by a clock that has since been set back (or one far off): counted as
    # made now, it keeps the next calls a window apart without holding them for the jump.
    horizon_ms = now_ms + round((window_s + CLOCK_JUMP_S) * 1000)
    recent_desc_ms = [min(at, now_ms) if at > horizon_ms else at for at in recent_desc_ms]
    recent_desc_ms.sort(reverse=True)
    at_ms = now_ms
    if recent_desc_ms:
        at_ms = max(at_ms, recent_desc_ms[0])
    if len(recent_desc_ms) >= limit:
        at_ms = max(at_ms, recent_desc_ms[limit - 1] + round((window_s + margin_s) * 1000))
    return at_ms


CLOCK_JUMP_S = 3600
"""How far beyond its window a booking may lie before it counts as made by a clock set back since."""
