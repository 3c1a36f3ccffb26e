"""This worker's share of the meters: leased through the database, renewed, given back fairly.

A :class:`Tenure` is what one ``meterhub serve`` process holds. Every ``lease_s / 3`` seconds the
poller renews it (:meth:`Tenure.renew`): the database renews this worker's leases, hands it free
or expired meters up to its fair share (the meters divided among the workers alive) and says how
many it holds over that share. The poller gives those back, among meters with no poll or backfill
in flight, only after dropping them from its schedule, so a meter is never polled by two workers
at once: the new holder starts after the old one has stored its last poll and health.

When the database cannot be reached the worker keeps its meters only while its leases surely
last (``lease_s`` from the start of its last successful renewal, less the renewal period), then
drops them all; others take them once the leases expire.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from meterhub.errors import ConfigError
from meterhub.store.base import Store
from meterhub.store.leases import POLL, WorkerSeen, WorkLeases, work_leases
from meterhub.threads import run_ingest

__all__ = [
    "DEFAULT_LEASE_S",
    "GRACE_S",
    "ROLES",
    "Tenure",
    "TenureState",
    "default_worker_id",
    "worker_id_problem",
]

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 30.0
"""How long a worker's hold on a meter lasts without renewal: a dead worker's meters wait this
long at most before another worker takes them."""
GRACE_S = 2.0
"""How long a starting worker waits, at most, between announcing itself and taking meters."""
ROLES = ("all", "poller", "api")
"""What a ``meterhub serve`` process runs: everything, only the poller (and MQTT), only the API."""


def default_worker_id() -> str:
    """Return this process's worker id: ``hostname-pid``."""
    return f"{socket.gethostname()}-{os.getpid()}"


def worker_id_problem(worker_id: str) -> str | None:
    """Return why ``worker_id`` cannot name a worker, or None."""
    if not worker_id or len(worker_id) > 200 or not worker_id.isprintable() or worker_id != worker_id.strip():
        return "a worker id must be 1 to 200 printable characters without leading or trailing spaces"
    return None


@dataclass(slots=True)
class TenureState:
    """What the last renewal left: the meters held, the workers alive, this worker's share."""

    held: frozenset[str] = frozenset()
    workers: int = 0
    share: int = 0
    renewals: int = 0
    failed_renewals: int = 0
    taken: int = 0
    given_back: int = 0
    renewed_at_s: float | None = None
    """``time.monotonic()`` at the start of the last successful renewal."""
    last_error: str | None = None
    seen: list[WorkerSeen] = field(default_factory=list)


class Tenure:
    """The meters this worker holds, leased in the database for ``lease_s`` seconds at a time."""

    def __init__(
        self, store: Store, worker_id: str, role: str = "poller", lease_s: float = DEFAULT_LEASE_S
    ) -> None:
        problem = worker_id_problem(worker_id)
        if problem is not None:
            raise ConfigError(problem)
        if not lease_s >= 1.0:
            raise ConfigError(f"the lease time must be at least 1 s, not {lease_s}")
        self.worker_id = worker_id
        self.role = role
        self.lease_s = float(lease_s)
        self.leases: WorkLeases = work_leases(store)
        self.state = TenureState()
        _TENURES.append(self)

    @property
    def renew_every_s(self) -> float:
        """Return how often the leases are renewed: three times per lease."""
        return self.lease_s / 3

    @property
    def shared(self) -> bool:
        """Return whether other processes share the work (PostgreSQL) or not (SQLite)."""
        return self.leases.shared

    @property
    def held(self) -> frozenset[str]:
        """Return the meters this worker holds now."""
        return self.state.held

    @property
    def grace_s(self) -> float:
        """Return how long a starting worker waits between announcing itself and taking meters."""
        return min(self.renew_every_s, GRACE_S)

    async def announce(self) -> None:
        """Say this worker is alive, taking nothing yet, so workers starting together count it."""
        await run_ingest(self.leases.claim, self.worker_id, self.role, POLL, [], self.lease_s)

    async def renew(self, wanted: Sequence[str], busy: Collection[str]) -> tuple[frozenset[str], list[str]]:
        """Renew and rebalance; return the meters held and those to give back once unscheduled.

        ``busy`` meters (a poll or backfill in flight) are never among those given back.
        """
        started_s = time.monotonic()
        round_ = await run_ingest(
            self.leases.claim, self.worker_id, self.role, POLL, list(wanted), self.lease_s
        )
        state = self.state
        state.renewed_at_s = started_s
        state.renewals += 1
        state.last_error = None
        state.workers, state.share = round_.workers, round_.share
        held = set(round_.held)
        state.taken += len(held - state.held)
        excess = len(held) - round_.share
        give: list[str] = []
        if excess > 0:
            give = sorted(held - set(busy))[-excess:]
            held -= set(give)
        state.held = frozenset(held)
        return state.held, give

    async def give_back(self, meter_ids: Sequence[str]) -> None:
        """Release meters this worker no longer schedules, so others take them at once."""
        if meter_ids:
            await run_ingest(self.leases.release, self.worker_id, POLL, list(meter_ids))
            self.state.given_back += len(meter_ids)

    def failed(self, error: str) -> bool:
        """Note a failed renewal; return True when the leases may have lapsed (drop every meter)."""
        state = self.state
        state.failed_renewals += 1
        state.last_error = error
        if state.renewed_at_s is None:
            return True
        lapsed = time.monotonic() - state.renewed_at_s > self.lease_s - self.renew_every_s
        if lapsed and state.held:
            log.warning(
                "worker %s cannot renew its leases (%s); it stops polling its %d meters",
                self.worker_id, error, len(state.held),
            )  # fmt: skip
            state.held = frozenset()
        return lapsed

    async def leave(self) -> None:
        """Give back every meter and forget this worker (a clean stop)."""
        await run_ingest(self.leases.leave, self.worker_id)
        self.state.held = frozenset()

    def close(self) -> None:
        """Stop reporting this tenure in the metrics."""
        if self in _TENURES:
            _TENURES.remove(self)

    def describe(self) -> dict[str, object]:
        """Return what ``/healthz`` shows of this worker."""
        state = self.state
        return {
            "worker_id": self.worker_id,
            "role": self.role,
            "shared": self.shared,
            "lease_s": self.lease_s,
            "workers": state.workers,
            "share": state.share,
            "meters_held": len(state.held),
            "meters": sorted(state.held),
            "renewals": state.renewals,
            "failed_renewals": state.failed_renewals,
        }


_TENURES: list[Tenure] = []
"""The tenures of this process, read by :mod:`meterhub.poller.workmetrics`."""


def tenures() -> list[Tenure]:
    """Return the tenures alive in this process."""
    return list(_TENURES)
