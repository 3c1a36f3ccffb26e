"""Recovery backfill: fill the window a meter missed while it (or the hub) was away.

After each successful poll the scheduler asks :func:`missed_window` whether the fresh data starts
two poll intervals or more after what was stored before (room for at least one reading the hub
never got); if so the window in between is fetched through ``connector.history`` by
:class:`Recovery`, window by window, with its progress
persisted (scope ``backfill``, key ``recover:<meter>``). Over quota or with the vendor away the
backfill pauses and resumes after a later successful poll, also after a restart of the hub.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from anyio import CancelScope
from anyio.abc import TaskGroup

from meterhub.errors import MeterhubError, QuotaExceeded, VendorUnavailable
from meterhub.poller.backfill import BackfillJob, BackfillLedger, run_backfill
from meterhub.poller.clock import Clock
from meterhub.poller.sink import Sink
from meterhub.readingblocks import EPOCH, ReadingBlock
from meterhub.vendors.base import Connector, Fetched

__all__ = ["Recovery", "RecoveryState", "describe_error", "missed_window", "recovery_key"]

log = logging.getLogger(__name__)


def recovery_key(meter_id: str) -> str:
    """Return the backfill-ledger key of a meter's recovery backfill."""
    return f"recover:{meter_id}"


def describe_error(exc: BaseException) -> str:
    """Return an error as one line for health and logs: its kind and its message."""
    if isinstance(exc, MeterhubError):
        return f"{type(exc).__name__}: {exc}"
    return f"unexpected {type(exc).__name__}: {exc}"


def _data_span(meter_id: str, fetched: Fetched) -> tuple[datetime, datetime] | None:
    """Return where the fetched data of ``meter_id`` starts and the latest instant it covers.

    It starts at its earliest reading; only data without readings starts at its earliest
    interval record. A poll's newest record ends at its reading and so starts one record
    earlier: counted, it would hide a missed reading and cut the backfill short before it.
    """
    block = fetched.readings
    if isinstance(block, ReadingBlock):  # one meter's: its span without building a reading
        span = block.span_us() if block.meter == meter_id else None
        readings = [] if span is None else [EPOCH + timedelta(microseconds=us) for us in span]
    else:
        readings = [r.ts for r in block if r.meter == meter_id]
    records = [(r.start, r.end) for r in fetched.intervals if r.meter == meter_id]
    if not readings and not records:
        return None
    earliest = min(readings) if readings else min(start for start, _ in records)
    latest = max([*readings, *(end for _, end in records)])
    return earliest, latest


def missed_window(
    meter_id: str,
    covered_until: datetime | None,
    fetched: Fetched,
    interval_s: float,
    reach_start: datetime,
) -> tuple[datetime | None, BackfillJob | None]:
    """Return the meter's new coverage and a job for the window it missed, if any.

    A window is missed when fresh data starts twice ``interval_s`` or more after
    ``covered_until``: a whole interval, and so at least one reading, lies between them (a
    vendor that stamps readings on interval boundaries misses exactly one at twice the
    interval). The job never reaches back before ``reach_start``.
    """
    span = _data_span(meter_id, fetched)
    if span is None:
        return covered_until, None
    earliest, latest = span
    covered = latest if covered_until is None else max(covered_until, latest)
    if covered_until is None or (earliest - covered_until).total_seconds() < 2 * interval_s:
        return covered, None
    start = max(covered_until, reach_start)
    return covered, (BackfillJob.new(meter_id, start, earliest) if start < earliest else None)


def _merged(pending: BackfillJob | None, gap: BackfillJob) -> BackfillJob:
    """Return one job covering what remains of ``pending`` and all of ``gap``."""
    if pending is None or pending.finished:
        return gap
    start = min(pending.done_until, gap.start)
    return BackfillJob.new(gap.meter_id, start, max(pending.end, gap.end))


@dataclass(slots=True)
class RecoveryState:
    """One meter's recovery: what is still to fetch and whether a backfill runs."""

    meter_id: str
    pending: BackfillJob | None = None
    deferred: BackfillJob | None = None
    """A window missed while a backfill was running; merged in when it ends."""
    ledger_checked: bool = False
    running: bool = False
    scope: CancelScope | None = None
    """The running backfill's scope: cancelled when this worker gives the meter up."""


class Recovery:
    """Runs recovery backfills, at most ``max_running`` at once; never raises from them."""

    def __init__(
        self,
        sink: Sink,
        ledger: BackfillLedger,
        clock: Clock,
        max_running: int,
        on_window: Callable[[BackfillJob], Awaitable[None]] | None = None,
    ) -> None:
        self._sink = sink
        self._ledger = ledger
        self._clock = clock
        self._max_running = max_running
        self._on_window = on_window
        self.running = 0

    @property
    def has_room(self) -> bool:
        """Return whether another backfill may start now."""
        return self.running < self._max_running

    async def pending(self, state: RecoveryState, gap: BackfillJob | None) -> BackfillJob | None:
        """Return the meter's backfill to run: a new gap merged with any unfinished one."""
        key = recovery_key(state.meter_id)
        if not state.ledger_checked:
            state.pending = await self._ledger.load(key)
            state.ledger_checked = True
        if gap is None:
            return None if state.running else state.pending
        if state.running:  # the running backfill owns the ledger entry until it ends
            state.deferred = _merged(state.deferred, gap)
            return None
        state.pending = _merged(state.pending, gap)
        await self._ledger.save(key, state.pending)
        return state.pending

    async def run(
        self, state: RecoveryState, connector: Connector, chunk_s: int, job: BackfillJob
    ) -> BackfillJob:
        """Fetch the job until done or paused by the vendor; return its progress."""
        self._claim(state)
        return await self._run_claimed(state, connector, chunk_s, job)

    def start(
        self,
        task_group: TaskGroup,
        state: RecoveryState,
        connector: Connector,
        chunk_s: int,
        job: BackfillJob,
    ) -> None:
        """Run the job in ``task_group``, counted as running from now on."""
        self._claim(state)  # now, so the next poll does not start it twice
        state.scope = CancelScope()
        task_group.start_soon(self._run_scoped, state, state.scope, connector, chunk_s, job)

    async def _run_scoped(
        self, state: RecoveryState, scope: CancelScope, connector: Connector, chunk_s: int, job: BackfillJob
    ) -> None:
        with scope:
            await self._run_claimed(state, connector, chunk_s, job)
        if state.scope is scope:
            state.scope = None

    @staticmethod
    def cancel(state: RecoveryState) -> None:
        """Stop the meter's running backfill (its progress is saved window by window)."""
        if state.scope is not None:
            state.scope.cancel()

    def _claim(self, state: RecoveryState) -> None:
        self.running += 1
        state.running = True

    async def _run_claimed(
        self, state: RecoveryState, connector: Connector, chunk_s: int, job: BackfillJob
    ) -> BackfillJob:
        try:
            return await self._run(state, connector, chunk_s, job)
        finally:
            state.running = False
            try:
                await self._take_deferred(state)
            finally:
                self.running -= 1

    async def _run(
        self, state: RecoveryState, connector: Connector, chunk_s: int, job: BackfillJob
    ) -> BackfillJob:
        key = recovery_key(state.meter_id)
        log.info("backfilling %s from %s to %s", state.meter_id, job.done_until, job.end)
        try:
            job = await run_backfill(
                connector,
                chunk_s,
                job,
                self._sink,
                self._ledger,
                key,
                clock=self._clock,
                max_retries=1,
                on_progress=self._on_window,
            )
        except (QuotaExceeded, VendorUnavailable) as exc:
            log.info("backfill of %s paused (resumes after a later poll): %s", state.meter_id, exc)
            state.pending = await self._saved(key, job)
            return state.pending
        except Exception as exc:
            log.warning("backfill of %s given up: %s", state.meter_id, describe_error(exc))
        state.pending = None
        await self._forget(key)
        return job

    async def _take_deferred(self, state: RecoveryState) -> None:
        """Queue a window missed during the backfill that just ended."""
        if state.deferred is None:
            return
        state.pending = _merged(state.pending, state.deferred)
        state.deferred = None
        try:
            await self._ledger.save(recovery_key(state.meter_id), state.pending)
        except MeterhubError as exc:
            log.warning("cannot keep the backfill progress of %s: %s", state.meter_id, exc)

    async def _saved(self, key: str, fallback: BackfillJob) -> BackfillJob:
        try:
            return await self._ledger.load(key) or fallback
        except MeterhubError:
            return fallback

    async def _forget(self, key: str) -> None:
        try:
            await self._ledger.delete(key)
        except MeterhubError as exc:
            log.warning("cannot clear backfill progress %s: %s", key, exc)
