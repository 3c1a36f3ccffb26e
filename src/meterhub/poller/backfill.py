"""History backfill: resumable, idempotent, within the vendor's quotas.

A backfill walks [start, end) in windows of the connector's history chunk and stores each
window through the :class:`~meterhub.poller.sink.Sink`. After every window the job's progress is
persisted in the store (scope ``backfill``), so an interrupted backfill resumes where it stopped;
writes are idempotent, so a window fetched twice stores nothing twice.

A backfill is leased like a meter's polls (:mod:`meterhub.store.leases`): one run by hand
(:func:`backfill_meter`) holds the lease of its job key, renewed while it runs, so a second run of
the same job on any worker or machine sharing the database is refused with the holder's name; a
recovery backfill runs under the lease of its meter, in the worker that polls it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import cast

import anyio
import httpx

from meterhub.errors import InputError, QuotaExceeded, StoreError, VendorUnavailable
from meterhub.ingest import Ingestor
from meterhub.model import Meter
from meterhub.poller.clock import Clock
from meterhub.poller.connectors import ConnectorClass, history_chunk_s
from meterhub.poller.plan import CountingGuard, HistoryPlan, count_windows, measured_plan, window_end
from meterhub.poller.sink import Sink, Stored
from meterhub.poller.work import default_worker_id
from meterhub.store.base import Store
from meterhub.store.leases import BACKFILL, WorkLeases, work_leases
from meterhub.threads import run_ingest
from meterhub.vendors.base import Connector, ConnectorContext, TokenCache
from meterhub.vendors.registry import load_connector

__all__ = [
    "BACKFILL_LEASE_S",
    "BACKFILL_SCOPE",
    "BackfillJob",
    "BackfillLedger",
    "backfill_meter",
    "resume",
    "run_backfill",
]

BACKFILL_SCOPE = "backfill"
"""The key-value scope that holds backfill progress."""
BACKFILL_LEASE_S = 60.0
"""How long a backfill run by hand holds its job unrenewed (renewed every third of it)."""


@dataclass(frozen=True, slots=True)
class BackfillJob:
    """History of one meter wanted for [start, end); everything before ``done_until`` is stored."""

    meter_id: str
    start: datetime
    end: datetime
    done_until: datetime

    @classmethod
    def new(cls, meter_id: str, start: datetime, end: datetime) -> BackfillJob:
        """Return a job that has not started."""
        return cls(meter_id, start, end, start)

    @property
    def finished(self) -> bool:
        """Return whether the whole range is stored."""
        return self.done_until >= self.end

    @property
    def total_s(self) -> float:
        """Return the length of the range in seconds."""
        return max(0.0, (self.end - self.start).total_seconds())

    @property
    def done_s(self) -> float:
        """Return the seconds of the range already stored."""
        return max(0.0, (min(self.done_until, self.end) - self.start).total_seconds())

    def to_json(self) -> str:
        """Return the job as JSON text."""
        return json.dumps(
            {
                "meter": self.meter_id,
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                "done_until": self.done_until.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> BackfillJob:
        """Read a job written by :meth:`to_json`."""
        try:
            fields = json.loads(text)
            return cls(
                str(fields["meter"]),
                datetime.fromisoformat(fields["start"]),
                datetime.fromisoformat(fields["end"]),
                datetime.fromisoformat(fields["done_until"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"unreadable backfill progress {text[:80]!r}") from exc


class BackfillLedger:
    """Backfill jobs kept in the store's key-value table, one per key."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def load(self, key: str) -> BackfillJob | None:
        """Return the job stored under ``key``, if any."""
        found = await run_ingest(self._store.token_get, BACKFILL_SCOPE, key)
        return None if found is None else BackfillJob.from_json(found[0])

    async def save(self, key: str, job: BackfillJob) -> None:
        """Persist a job's progress."""
        await run_ingest(self._store.token_set, BACKFILL_SCOPE, key, job.to_json(), None)

    async def delete(self, key: str) -> None:
        """Forget a job."""
        await run_ingest(self._store.token_delete, BACKFILL_SCOPE, key)


Progress = Callable[[BackfillJob], Awaitable[None]]
"""Awaited after every stored window with the job's progress."""
QuotaWait = Callable[[float], Awaitable[None]]
"""Wait out a quota: called with the seconds the vendor's limit asks for."""


async def run_backfill(
    connector: Connector,
    chunk_s: int,
    job: BackfillJob,
    sink: Sink,
    ledger: BackfillLedger,
    key: str,
    *,
    on_progress: Progress | None = None,
    wait_quota: QuotaWait | None = None,
    clock: Clock | None = None,
    max_retries: int = 4,
) -> BackfillJob:
    """Fetch and store the rest of ``job`` window by window; return the job when done.

    Over quota, ``wait_quota`` is awaited for the vendor's retry time and the window is retried;
    without it QuotaExceeded propagates (progress is saved). An unavailable vendor is retried
    ``max_retries`` times with exponential backoff before its error propagates.
    """
    clock = clock or Clock()
    tz = connector.meter.tz
    failures = 0
    while not job.finished:
        end = min(window_end(job.done_until, chunk_s, tz), job.end)
        try:
            async for fetched in connector.history(job.done_until, end):
                await sink.write(fetched)
        except QuotaExceeded as exc:
            if wait_quota is None:
                raise
            await wait_quota(exc.retry_after_s if exc.retry_after_s is not None else chunk_s)
            continue
        except VendorUnavailable:
            failures += 1
            if failures > max_retries:
                raise
            await clock.sleep(min(300.0, 2.0**failures))
            continue
        failures = 0
        job = replace(job, done_until=end)
        await ledger.save(key, job)
        if on_progress is not None:
            await on_progress(job)
    return job


def resume(existing: BackfillJob | None, meter_id: str, start: datetime, end: datetime) -> BackfillJob:
    """Return the job for [start, end), skipping what an earlier job of the meter already stored.

    The earlier job's stored part is [its start, its done_until); when ``start`` falls inside it,
    the new job starts there and counts that part as done (never past ``end``).
    """
    if existing is not None and existing.start <= start <= existing.done_until:
        return BackfillJob(meter_id, existing.start, end, min(end, max(start, existing.done_until)))
    return BackfillJob.new(meter_id, start, end)


async def backfill_meter(
    store: Store,
    client: httpx.AsyncClient,
    meter: Meter,
    job: BackfillJob,
    *,
    key: str | None = None,
    clock: Clock | None = None,
    on_progress: Progress | None = None,
    on_plan: Callable[[HistoryPlan], None] | None = None,
    wait_quota: QuotaWait | None = None,
    max_retries: int = 4,
    worker_id: str | None = None,
) -> tuple[BackfillJob, Stored]:
    """Fetch the rest of ``job`` for ``meter`` and store it; return the job and what was new.

    ``on_plan`` hears, once two windows are stored and more remain, the quota plan measured
    from what the second window cost (the first may include a login). The job is leased to
    ``worker_id`` (default: hostname-pid) while it runs; InputError when another holds it.
    """
    holder = worker_id or default_worker_id()
    lease_key = key or meter.id
    leases = work_leases(store)
    other = await run_ingest(leases.take, holder, BACKFILL, lease_key, BACKFILL_LEASE_S)
    if other is not None:
        raise InputError(
            f"the backfill {lease_key} is being run by {other}; wait for it to finish "
            "(if that worker stopped, its lease ends within a minute and this run resumes its progress)"
        )
    outcome: tuple[BackfillJob, Stored] | None = None
    failure: Exception | None = None
    try:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(_keep_lease, leases, holder, lease_key, task_group.cancel_scope)
            try:
                outcome = await _backfill_leased(
                    store, client, meter, job, key, clock, on_progress, on_plan, wait_quota, max_retries
                )
            except Exception as exc:  # raised as itself below, not wrapped in the task group's
                failure = exc
            task_group.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await run_ingest(leases.release, holder, BACKFILL, [lease_key])
    if failure is not None:
        raise failure
    if outcome is None:
        raise InputError(
            f"the backfill {lease_key} lost its lease to another worker; start it again to resume"
        )
    return outcome


async def _keep_lease(leases: WorkLeases, holder: str, lease_key: str, scope: anyio.CancelScope) -> None:
    """Renew a backfill's lease every third of its time; cancel ``scope`` if another took it."""
    while True:
        await anyio.sleep(BACKFILL_LEASE_S / 3)
        try:
            other = await run_ingest(leases.take, holder, BACKFILL, lease_key, BACKFILL_LEASE_S)
        except StoreError:
            continue  # the lease still lasts; the next renewal tries again
        if other is not None:
            scope.cancel()
            return


async def _backfill_leased(
    store: Store,
    client: httpx.AsyncClient,
    meter: Meter,
    job: BackfillJob,
    key: str | None,
    clock: Clock | None,
    on_progress: Progress | None,
    on_plan: Callable[[HistoryPlan], None] | None,
    wait_quota: QuotaWait | None,
    max_retries: int,
) -> tuple[BackfillJob, Stored]:
    clock = clock or Clock()
    connector_class = cast(ConnectorClass, load_connector(meter.vendor))
    guard = CountingGuard(store, meter.vendor, connector_class.quotas, clock.now, clock.sleep)
    context = ConnectorContext(
        client, TokenCache(store, meter.vendor, clock.now), guard, clock.now, clock.sleep
    )
    connector: Connector = connector_class(meter, context)
    chunk_s = history_chunk_s(connector_class)
    windows_done = 0

    async def progress(done: BackfillJob) -> None:
        nonlocal windows_done
        windows_done += 1
        if windows_done == 1:
            guard.taken.clear()
        elif windows_done == 2 and on_plan is not None and not done.finished:
            left = count_windows(done.done_until, done.end, chunk_s, meter.tz)
            on_plan(await measured_plan(guard, meter.vendor, chunk_s, 1, left))
        if on_progress is not None:
            await on_progress(done)

    sink = Sink(store, Ingestor(store, now=clock.now))
    ledger = BackfillLedger(store)
    await ledger.save(key or meter.id, job)
    finished = await run_backfill(
        connector,
        chunk_s,
        job,
        sink,
        ledger,
        key or meter.id,
        on_progress=progress,
        wait_quota=wait_quota,
        clock=clock,
        max_retries=max_retries,
    )
    return finished, sink.totals
