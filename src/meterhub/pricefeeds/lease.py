"""Run a piece of work in one worker at a time, under a lease of the store's work leases.

:class:`HeldLease` is built on :func:`meterhub.store.leases.work_leases` (``take`` and
``release``, the calls the Home Assistant publisher leases its broker with): the worker that
takes the item runs the work and renews the lease every third of ``lease_s``; the others stand
by and try again as often. A worker that stops gives the item back, so another takes over at its
next try; one that dies stops renewing, and another takes over once the lease has expired.

When the database cannot be reached, the holder works on only while its lease surely lasts
(``lease_s`` from the start of its last renewal, less a renewal period), then stops and stands
by: another worker may have taken the item by then. A worker standing by never starts on a
failed attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import anyio

from meterhub.errors import ConfigError
from meterhub.store.base import Store
from meterhub.store.leases import WorkLeases, work_leases
from meterhub.threads import run_ingest

__all__ = ["HeldLease"]

log = logging.getLogger(__name__)


class HeldLease:
    """One work item leased to this worker through the database, renewed while the work runs."""

    def __init__(self, store: Store, kind: str, item: str, worker: str, lease_s: float) -> None:
        if not lease_s >= 1.0:
            raise ConfigError(f"the lease time must be at least 1 s, not {lease_s}")
        self.kind = kind
        self.item = item
        self.worker = worker
        self.lease_s = float(lease_s)
        self.leases: WorkLeases = work_leases(store)
        self.held = False
        """Whether this worker holds the item (and so runs the work) now."""
        self.holder: str | None = None
        """The worker holding the item as last seen: this one, another, or None when unknown."""
        self.standby_rounds = 0
        """Tries that found another worker holding the item."""
        self.takeovers = 0
        """Times this worker took the item and started the work."""
        self.failed_renewals = 0
        self._renewed_at_s: float | None = None
        self._said = ""

    @property
    def renew_every_s(self) -> float:
        """Return how often the lease is renewed, and a worker standing by tries to take it."""
        return self.lease_s / 3

    async def run_while_held(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work()`` whenever this worker holds the item; stand by while another does.

        Return when ``work()`` returns; run until cancelled otherwise. The item is given back
        when this ends, so another worker takes over at once.
        """
        try:
            while True:
                if not await self._try_take():
                    await anyio.sleep(self.renew_every_s)
                    continue
                self.takeovers += 1
                self._say(f"held:{self.worker}", "worker %s runs %s %s", self.worker, self.kind, self.item)
                if not await self._work_while_renewed(work):
                    return
        finally:
            with anyio.CancelScope(shield=True):
                await self.release()

    async def release(self) -> None:
        """Give the item back if this worker holds it (it lapses by itself if the database is away)."""
        if not self.held:
            return
        self.held = False
        self.holder = None
        try:
            await run_ingest(self.leases.release, self.worker, self.kind, [self.item])
        except Exception:  # the lease lapses by itself
            log.warning("cannot give back the %s lease of %s; it lapses by itself", self.kind, self.item)

    async def _try_take(self) -> bool:
        """Take or renew the lease; return whether this worker holds it now."""
        started_s = time.monotonic()
        try:
            other = await run_ingest(self.leases.take, self.worker, self.kind, self.item, self.lease_s)
        except Exception as exc:  # the database away: decided by how long the lease lasts
            self.failed_renewals += 1
            if self.held and self._renewed_at_s is not None:
                lapsed = time.monotonic() - self._renewed_at_s > self.lease_s - self.renew_every_s
                if not lapsed:
                    return True
            if self.held:
                log.warning("cannot renew the %s lease of %s (%s); it stops", self.kind, self.item, exc)
            self.held = False
            self.holder = None
            return False
        if other is not None:
            self.held = False
            self.holder = other
            self.standby_rounds += 1
            self._say(
                f"standby:{other}", "worker %s runs %s %s; this one stands by", other, self.kind, self.item
            )
            return False
        self.held = True
        self.holder = self.worker
        self._renewed_at_s = started_s
        return True

    async def _work_while_renewed(self, work: Callable[[], Awaitable[None]]) -> bool:
        """Run ``work()`` while renewing the lease; return True when the lease was lost."""
        lost = False
        async with anyio.create_task_group() as task_group:

            async def renew() -> None:
                nonlocal lost
                while True:
                    await anyio.sleep(self.renew_every_s)
                    if not await self._try_take():
                        lost = True
                        task_group.cancel_scope.cancel()
                        return

            task_group.start_soon(renew)
            await work()
            task_group.cancel_scope.cancel()
        return lost

    def _say(self, key: str, message: str, *args: object) -> None:
        """Log a change of holder once, not at every try."""
        if key != self._said:
            self._said = key
            log.info(message, *args)
