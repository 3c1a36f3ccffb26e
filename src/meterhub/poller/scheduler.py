"""The poller: every meter on its own schedule, on one event loop, from one heap.

Each meter has one entry in a heap ordered by when it is due. The loop sleeps until the earliest
entry is due, starts that poll as a task (at most ``max_concurrent_polls`` run at once), and the
poll pushes the meter back with its next due time: the poll interval plus jitter after a
success, an exponential backoff capped at ``backoff_cap_s`` after a failure, and exactly the
vendor's ``retry_after_s`` after QuotaExceeded. No meter ever has a task of its own waiting, so
one process holds thousands of meters at the cost of a heap entry each.

Live reads and relay switches from the API run as the meter's poll (:meth:`Poller.poll_in_turn`):
they join a poll in flight, or take the meter's next turn, so they share its quota and push its
next poll back. When our own quota ledger refuses a poll (:class:`QuotaHeld`: a live read in
another process, or another hub, holds the slot), the holder stores what it fetched and records
the meter's health; while the meter's newest success is recent, the poll waits for the next
slot and counts no failure.

A typed vendor error, and any unexpected one, becomes the meter's health (``last_error``,
``consecutive_failures``) and never stops the loop. When fresh data starts later than twice the
poll interval after what was stored before (an outage, or the hub was down), the missed window
is backfilled through ``connector.history`` in the background, resumably.

With a :class:`~meterhub.poller.work.Tenure` the poller polls only the meters this worker leases
(several workers on one PostgreSQL database share the meters): every ``lease_s / 3`` real
seconds it renews its leases, schedules the meters it was given, and gives back what is over its
fair share once those meters have no poll or backfill in flight. A meter taken over starts from
what the store holds of it (its last success, its newest data), so it is polled when next due and
the window its old holder missed is backfilled; so is a backfill the old holder left unfinished.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

import anyio
import httpx

from meterhub import metrics
from meterhub.errors import ConfigError, InputError, MeterhubError, QuotaExceeded, QuotaHeld
from meterhub.ingest import Ingestor
from meterhub.model import Meter
from meterhub.poller.backfill import BackfillJob, BackfillLedger
from meterhub.poller.clock import Clock
from meterhub.poller.connectors import (
    SLOT_MARGIN_S,
    ConnectorFactory,
    Resolver,
    history_chunk_s,
    min_poll_interval_s,
)
from meterhub.poller.recovery import Recovery, RecoveryState, describe_error, missed_window
from meterhub.poller.schedule import (
    Fetch,
    Flight,
    PollerSettings,
    PollerStats,
    PollOutcome,
    Schedule,
    Slot,
    retry_delay_s,
)
from meterhub.poller.sink import HealthNote, Sink
from meterhub.poller.work import Tenure
from meterhub.store.base import Store
from meterhub.threads import run_ingest
from meterhub.vendors.registry import load_connector

__all__ = ["Fetch", "PollOutcome", "Poller", "PollerSettings", "PollerStats", "retry_delay_s"]

log = logging.getLogger(__name__)

class Poller:
    """Polls meters on their schedules and stores what they report, with health and recovery."""

    def __init__(
        self,
        store: Store,
        client: httpx.AsyncClient,
        *,
        clock: Clock | None = None,
        settings: PollerSettings | None = None,
        resolve: Resolver = load_connector,
        meters: Sequence[Meter] | None = None,
        seed: int | None = None,
        tenure: Tenure | None = None,
    ) -> None:
        self._store = store
        self._clock = clock or Clock()
        self.settings = settings or PollerSettings()
        self.tenure = tenure
        self.factory = ConnectorFactory(
            store, client, self._clock, resolve, margin_s=self.settings.quota_margin_s
        )
        self.sink = Sink(store, Ingestor(store, now=self._clock.now))
        self.stats = PollerStats()
        self._recovery = Recovery(
            self.sink,
            BackfillLedger(store),
            self._clock,
            self.settings.max_concurrent_backfills,
            on_window=self._count_window,
        )
        self._fixed_meters = list(meters) if meters is not None else None
        self._random = random.Random(seed)  # noqa: S311 - jitter, not security
        self._slots: dict[str, Slot] = {}
        self._schedule = Schedule()
        self._generations = itertools.count(1)
        self._wake = anyio.Event()
        self._polls = anyio.Semaphore(self.settings.max_concurrent_polls)
        self._polling = 0
        self._task_group: anyio.abc.TaskGroup | None = None

    # --- the meters ---------------------------------------------------------------------
    @property
    def meter_ids(self) -> list[str]:
        """Return the ids of the meters being polled."""
        return sorted(self._slots)

    async def load_meters(self) -> None:
        """Read the meters to poll and what the store already holds of them."""
        if self._fixed_meters is not None:
            meters = self._fixed_meters
        else:
            meters = await run_ingest(self._store.list_meters)
        wanted = {m.id: m for m in meters if self.factory.is_pollable(m)}
        give: list[str] = []
        if self.tenure is not None:
            held, give = await self._renew(sorted(wanted))
            wanted = {meter_id: meter for meter_id, meter in wanted.items() if meter_id in held}
        for meter_id in set(self._slots) - set(wanted):
            self._drop(meter_id)
        if self.tenure is not None:
            await self.tenure.give_back(give)  # unscheduled first: never two holders polling
        fresh = [m for m in wanted.values() if self._changed(m)]
        if not fresh:
            return
        covered = await run_ingest(self._covered_until, [m.id for m in fresh])
        health = await run_ingest(self._store.health, [m.id for m in fresh])
        now = self._clock.now()
        for meter in fresh:
            slot = self._new_slot(meter)
            slot.covered_until = covered.get(meter.id)
            known = health.get(meter.id)
            slot.failures = known.consecutive_failures if known is not None else 0
            slot.last_success = known.last_success if known is not None else None
            self._slots[meter.id] = slot
            self._push(slot, self._first_due(slot, now))

    async def _renew(self, wanted: list[str]) -> tuple[frozenset[str], list[str]]:
        """Renew this worker's leases; on a database failure keep the meters while they last."""
        assert self.tenure is not None
        busy = [meter_id for meter_id, slot in self._slots.items() if slot.running or slot.recovery.running]
        try:
            return await self.tenure.renew(wanted, busy)
        except MeterhubError as exc:
            self.tenure.failed(str(exc))
            log.warning("worker %s cannot renew its leases: %s", self.tenure.worker_id, exc)
            return self.tenure.held, []

    def _drop(self, meter_id: str) -> None:
        """Stop scheduling a meter (removed, or no longer this worker's); its heap entry goes stale."""
        slot = self._slots.pop(meter_id)
        Recovery.cancel(slot.recovery)

    def _changed(self, meter: Meter) -> bool:
        slot = self._slots.get(meter.id)
        return slot is None or slot.meter != meter or dict(slot.meter.options) != dict(meter.options)

    def _new_slot(self, meter: Meter) -> Slot:
        slot = Slot(meter, float(meter.interval_s), next(self._generations), RecoveryState(meter.id))
        # Built now, so a limit of its own (a smart-MAC's rate class) paces the first poll; if
        # it cannot be built, the first poll tries again and records why.
        with contextlib.suppress(MeterhubError):
            slot.connector = self.factory.build(meter)
        self._pace(slot)
        return slot

    def _pace(self, slot: Slot) -> None:
        """Set the slot's interval: the meter's, never faster than its connector allows."""
        try:
            slot.interval_s = float(self.factory.poll_interval_s(slot.meter, slot.connector))
        except InputError:
            slot.interval_s = float(slot.meter.interval_s)

    def _first_due(self, slot: Slot, now: datetime) -> datetime:
        spread_s = self._random.uniform(0, min(slot.interval_s, self.settings.startup_spread_s))
        due = now + timedelta(seconds=spread_s)
        if slot.last_success is not None:  # a restart must not poll sooner than the vendor allows
            due = max(due, slot.last_success + timedelta(seconds=slot.interval_s + spread_s))
        return due

    def _covered_until(self, meter_ids: list[str]) -> dict[str, datetime]:
        """Return the newest instant stored per meter: readings, else interval ends (worker thread)."""
        covered = {r.meter: r.ts for r in self._store.latest(meter_ids, phase=0)}
        now = self._clock.now()
        since = now - timedelta(seconds=self.settings.recovery_max_s)
        for meter_id in meter_ids:
            if meter_id not in covered:
                ends = [record.end for record in self._store.intervals(meter_id, since, now)]
                if ends:
                    covered[meter_id] = max(ends)
        return covered

    @property
    def in_flight(self) -> int:
        """Return the polls and recovery backfills running now."""
        return self._polling + self._recovery.running

    @property
    def next_due(self) -> datetime | None:
        """Return when the next poll is due (None: no meter to poll)."""
        return self._schedule.next_due

    def wake(self) -> None:
        """Look at the schedule again now, as after the clock was set forward."""
        self._wake.set()

    # --- the schedule -------------------------------------------------------------------
    def _push(self, slot: Slot, due: datetime) -> None:
        if self._schedule.push(slot, due):
            self._wake.set()

    async def run(self) -> None:
        """Poll until cancelled."""
        if self.tenure is not None and self.tenure.shared and not self.tenure.state.renewals:
            await self._announce()
        await self.load_meters()
        async with anyio.create_task_group() as task_group:
            self._task_group = task_group
            task_group.start_soon(self.sink.run)
            if self.tenure is not None:
                task_group.start_soon(self._lease_loop)
            elif self._fixed_meters is None:
                task_group.start_soon(self._refresh_loop)
            try:
                await self._schedule_loop(task_group)
            finally:
                self._task_group = None
                if self.tenure is not None:
                    with anyio.CancelScope(shield=True):
                        await self._leave()

    async def _announce(self) -> None:
        """Say this worker is alive, then wait a moment before taking meters.

        Workers started together (a deployment, a restart of every machine) then count each
        other from their first claim and divide the meters at once, instead of the first one
        taking them all and handing most back a renewal later.
        """
        assert self.tenure is not None
        try:
            await self.tenure.announce()
        except MeterhubError as exc:
            log.warning("worker %s cannot announce itself: %s", self.tenure.worker_id, exc)
            return
        await anyio.sleep(self.tenure.grace_s)

    async def _leave(self) -> None:
        """Give every meter back at a clean stop, so the other workers take them at once."""
        assert self.tenure is not None
        for meter_id in list(self._slots):
            self._drop(meter_id)
        try:
            with anyio.move_on_after(self.tenure.renew_every_s):
                await self.tenure.leave()
        except MeterhubError as exc:
            log.warning("worker %s could not give its meters back: %s", self.tenure.worker_id, exc)

    async def _schedule_loop(self, task_group: anyio.abc.TaskGroup) -> None:
        while True:
            now_s = self._clock.now().timestamp()
            due_s = self._schedule.next_due_s
            if due_s is not None and due_s <= now_s:
                await self._polls.acquire()  # a task exists only for a poll that may run now
                slot = self._schedule.pop_due(self._clock.now().timestamp(), self._slots)
                if slot is None:
                    self._polls.release()
                else:
                    self._begin(slot)  # in flight from now, before its task first runs
                    task_group.start_soon(self._poll_task, slot)
                continue
            wait_s = due_s - now_s if due_s is not None else self.settings.refresh_meters_s
            self._wake = anyio.Event()
            with anyio.move_on_after(self._clock.real_s(wait_s)):
                await self._wake.wait()

    async def _lease_loop(self) -> None:
        """Renew the leases (and re-read the meters) every third of the lease time, in real time."""
        assert self.tenure is not None
        while True:
            await anyio.sleep(self.tenure.renew_every_s)
            try:
                await self.load_meters()
            except MeterhubError as exc:
                log.warning("cannot re-read the meters: %s", exc)
                if self.tenure.failed(str(exc)):
                    for meter_id in list(self._slots):
                        self._drop(meter_id)

    async def _refresh_loop(self) -> None:
        while True:
            await self._clock.sleep(self.settings.refresh_meters_s)
            try:
                await self.load_meters()
            except MeterhubError as exc:
                log.warning("cannot re-read the meters: %s", exc)

    async def _poll_task(self, slot: Slot) -> None:
        outcome: PollOutcome | None = None
        try:
            outcome = await self._poll(slot)
        finally:
            self._polls.release()
            self._finish(slot, outcome)

    def _begin(self, slot: Slot) -> Flight:
        slot.running = True
        slot.flight = Flight()
        self._polling += 1
        return slot.flight

    def _finish(self, slot: Slot, outcome: PollOutcome | None) -> None:
        """End a poll in flight: schedule the next and hand the outcome to those waiting."""
        slot.running = False
        self._polling -= 1
        if self._slots.get(slot.meter.id) is slot:  # counted from the end, so latency never crowds
            # without an outcome (the caller was cancelled) the meter keeps its place all the same
            next_in_s = outcome.next_in_s if outcome is not None else slot.interval_s
            if outcome is not None and isinstance(outcome.cause, QuotaHeld):
                next_in_s += SLOT_MARGIN_S
            self._push(slot, self._clock.now() + timedelta(seconds=next_in_s))
        flight, slot.flight = slot.flight, None
        if flight is not None:
            flight.outcome = outcome
            flight.done.set()

    # --- polls asked for from outside the schedule ----------------------------------------
    def polls(self, meter_id: str) -> bool:
        """Return whether this poller polls ``meter_id``."""
        return meter_id in self._slots

    @property
    def clock(self) -> Clock:
        """Return the clock the poller schedules by."""
        return self._clock

    def now(self) -> datetime:
        """Return the time on the poller's clock."""
        return self._clock.now()

    def turn_free_in_s(self, meter_id: str) -> float:
        """Return the seconds until the meter may be asked again (0: now)."""
        slot = self._slots[meter_id]
        turn = slot.next_turn
        if turn is None and slot.last_success is not None:  # polled before a restart
            turn = slot.last_success + timedelta(seconds=self._min_interval_s(slot))
        if turn is None:
            return 0.0
        return max(0.0, (turn - self._clock.now()).total_seconds())

    def _turn_after_call(self, slot: Slot) -> datetime:
        """Return the meter's next turn, counted from the end of a call (the device counts from its start)."""
        return self._clock.now() + timedelta(seconds=self._min_interval_s(slot))

    def _min_interval_s(self, slot: Slot) -> float:
        """Return the meter's minimum interval plus the quota margin its calls are booked apart by."""
        margin_s = self.settings.quota_margin_s
        try:
            vendor_class = self.factory.connector_class(slot.meter.vendor)
            return float(min_poll_interval_s(vendor_class, slot.connector)) + margin_s
        except InputError:
            return float(slot.meter.interval_s) + margin_s

    async def poll_in_turn(
        self, meter_id: str, fetch: Fetch | None = None, *, max_wait_s: float = 0.0
    ) -> PollOutcome | None:
        """Poll a meter as its next poll, within its quota; None when a read must not ask now.

        A read (no ``fetch``) joins a poll in flight, or polls now when the meter was last asked
        at least its minimum interval ago, else returns None. A ``fetch`` of its own (a relay
        switch) waits for a poll in flight, then up to ``max_wait_s`` for the meter's turn, or
        raises QuotaExceeded. Either way the data is stored and counts as the meter's poll.
        """
        slot = self._slots.get(meter_id)
        if slot is None:
            raise InputError(f"meter {meter_id!r} is not polled (no connector or no options)")
        while slot.flight is not None:
            flight = slot.flight
            await flight.done.wait()
            if fetch is None:
                return flight.outcome
        wait_s = self.turn_free_in_s(meter_id)
        if wait_s > 0 and fetch is None:
            return None
        if wait_s > max_wait_s:
            raise QuotaExceeded(
                f"meter {meter_id!r} was asked less than its minimum interval ago; "
                f"the next request is possible in {wait_s:.0f} s",
                retry_after_s=wait_s,
            )
        self._begin(slot)
        outcome: PollOutcome | None = None
        try:
            if wait_s > 0:
                await self._clock.sleep(wait_s)
            with anyio.CancelScope(shield=True):  # a caller who stops waiting never loses the reading
                outcome = await self._poll(slot, fetch=fetch)
        finally:
            self._finish(slot, outcome)
        return outcome

    # --- one poll -----------------------------------------------------------------------
    async def poll_once(self, meter_id: str) -> PollOutcome:
        """Poll one meter now (outside the schedule) and return what happened."""
        if not self._slots:
            await self.load_meters()
        slot = self._slots.get(meter_id)
        if slot is None:
            raise InputError(f"meter {meter_id!r} is not polled (no connector or no options)")
        self._polling += 1
        try:
            return await self._poll(slot, recover_now=True)
        finally:
            self._polling -= 1

    async def _poll(
        self, slot: Slot, *, recover_now: bool = False, fetch: Fetch | None = None
    ) -> PollOutcome:
        at = self._clock.now()
        meter_id = slot.meter.id
        self.stats.polls += 1
        started = time.monotonic()
        try:
            if slot.connector is None:
                slot.connector = self.factory.build(slot.meter)
                self._pace(slot)
            fetched = await (fetch(slot.connector) if fetch is not None else slot.connector.latest())
        except Exception as exc:
            slot.next_turn = self._turn_after_call(slot)
            metrics.record_poll(slot.meter.vendor, False, time.monotonic() - started)
            metrics.record_error(slot.meter.vendor, type(exc).__name__)
            return await self._failed(slot, at, exc)
        slot.next_turn = self._turn_after_call(slot)
        metrics.record_poll(slot.meter.vendor, True, time.monotonic() - started)
        if slot.failures:
            log.info("polling %s works again after %d failed polls", meter_id, slot.failures)
        reach = at - timedelta(seconds=self.settings.recovery_max_s)
        covered, gap = missed_window(meter_id, slot.covered_until, fetched, slot.interval_s, reach)
        try:
            await self.sink.write(fetched, HealthNote(meter_id, True, at))
        except MeterhubError as exc:
            log.error("cannot store what %s reported: %s", meter_id, exc)
            return PollOutcome(meter_id, False, at, describe_error(exc), slot.interval_s, cause=exc)
        self.stats.successes += 1
        slot.failures, slot.last_success, slot.covered_until = 0, at, covered
        job = await self._recover(slot, gap, wait=recover_now)
        return PollOutcome(meter_id, True, at, None, self._next_in_s(slot.interval_s), job, fetched)

    async def _failed(self, slot: Slot, at: datetime, exc: Exception) -> PollOutcome:
        meter_id = slot.meter.id
        if isinstance(exc, QuotaHeld):
            deferred = await self._held_elsewhere(slot, at, exc)
            if deferred is not None:
                return deferred
        text = describe_error(exc)
        if not isinstance(exc, MeterhubError):
            log.error("polling %s failed unexpectedly", meter_id, exc_info=exc)
        elif slot.failures == 0:
            log.warning("polling %s failed: %s", meter_id, text)
        if isinstance(exc, ConfigError | InputError):
            slot.connector = None  # built again next time, after the settings may have changed
        slot.failures += 1
        self.stats.failures += 1
        if isinstance(exc, QuotaExceeded) and exc.retry_after_s is not None:
            next_in_s = exc.retry_after_s
        else:
            next_in_s = self._next_in_s(
                retry_delay_s(slot.interval_s, slot.failures, self.settings.backoff_cap_s)
            )
        try:
            await self.sink.note(HealthNote(meter_id, False, at, text))
        except MeterhubError as store_exc:
            log.error("cannot record the health of %s: %s", meter_id, store_exc)
        return PollOutcome(meter_id, False, at, text, next_in_s, cause=exc)

    async def _held_elsewhere(self, slot: Slot, at: datetime, exc: QuotaHeld) -> PollOutcome | None:
        """Return a poll put off because another caller holds the meter's slot, else None.

        Whoever holds a slot (a live read, a switch, another hub) stores what it fetched and
        records the meter's health, so while the newest success is recent, waiting for the next
        slot is no failure. Without a recent success a held quota is a failure like any other.
        """
        meter_id = slot.meter.id
        wait_s = exc.retry_after_s if exc.retry_after_s is not None else slot.interval_s
        try:
            known = (await run_ingest(self._store.health, [meter_id])).get(meter_id)
            newest = known.last_success if known is not None else None
            if newest is not None and (slot.last_success is None or newest > slot.last_success):
                covered = await run_ingest(self._covered_until, [meter_id])
                slot.last_success = newest
                slot.covered_until = covered.get(meter_id, slot.covered_until)
        except MeterhubError as store_exc:
            log.warning("cannot read the health of %s: %s", meter_id, store_exc)
        newest = slot.last_success
        if newest is None or (at - newest).total_seconds() > 2 * slot.interval_s + wait_s:
            return None
        slot.next_turn = at + timedelta(seconds=wait_s + SLOT_MARGIN_S)
        self.stats.deferred += 1
        return PollOutcome(meter_id, False, at, describe_error(exc), wait_s, cause=exc)

    def _next_in_s(self, base_s: float) -> float:
        return base_s * (1.0 + self._random.uniform(0.0, self.settings.jitter_ratio))

    async def _recover(self, slot: Slot, gap: BackfillJob | None, *, wait: bool) -> BackfillJob | None:
        """Start (or, with ``wait``, run) the meter's pending recovery backfill, if any."""
        state = slot.recovery
        try:
            job = await self._recovery.pending(state, gap)
        except MeterhubError as exc:
            log.warning("cannot keep the backfill progress of %s: %s", slot.meter.id, exc)
            return None
        connector = slot.connector
        if job is None or connector is None:
            return job
        chunk_s = history_chunk_s(self.factory.connector_class(slot.meter.vendor))
        if wait or self._task_group is None:
            return await self._recovery.run(state, connector, chunk_s, job)
        if self._recovery.has_room:  # else a later poll starts it
            self._recovery.start(self._task_group, state, connector, chunk_s, job)
        return job

    async def _count_window(self, _: BackfillJob) -> None:
        self.stats.backfilled_windows += 1
