"""Where polled data goes: one writer task that batches many meters' data into few transactions.

Polls hand their :class:`~meterhub.vendors.base.Fetched` data and health outcomes to the sink
and wait until they are stored. The sink drains whatever has queued up, writes it in one worker
thread call (readings through the :class:`~meterhub.ingest.Ingestor`, vendor blocks as
columns, intervals and extras directly, then health), and wakes the waiters. With thousands of
meters this turns thousands of small transactions into a few large ones; with one meter it
costs one hop.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from meterhub import metrics
from meterhub.ingest import Ingestor, IngestReport
from meterhub.model import Extra, IntervalEnergy, PricePoint, Reading
from meterhub.readingblocks import ReadingBlock
from meterhub.store.base import Store
from meterhub.threads import run_ingest
from meterhub.vendors.base import Fetched

__all__ = ["HealthNote", "Sink", "Stored"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HealthNote:
    """One poll outcome for :meth:`meterhub.store.base.Store.record_health`."""

    meter_id: str
    ok: bool
    at: datetime
    error: str | None = None


@dataclass(slots=True)
class Stored:
    """What one write stored: readings, intervals and extras (new rows), rejected readings."""

    readings: int = 0
    intervals: int = 0
    extras: int = 0
    rejected: int = 0
    duplicates: int = 0
    prices: int = 0

    def copy(self) -> Stored:
        """Return a snapshot of these counts."""
        return Stored(self.readings, self.intervals, self.extras, self.rejected, self.duplicates, self.prices)

    def since(self, before: Stored) -> Stored:
        """Return the counts added after the snapshot ``before``."""
        return Stored(
            self.readings - before.readings,
            self.intervals - before.intervals,
            self.extras - before.extras,
            self.rejected - before.rejected,
            self.duplicates - before.duplicates,
            self.prices - before.prices,
        )


@dataclass(slots=True)
class _Job:
    fetched: Fetched | None
    health: HealthNote | None
    done: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None


class Sink:
    """Stores fetched data and health notes, batching across meters while :meth:`run` runs."""

    def __init__(self, store: Store, ingestor: Ingestor, *, max_batch_rows: int = 20_000) -> None:
        self._store = store
        self._ingestor = ingestor
        self._max_batch_rows = max_batch_rows
        self._send: MemoryObjectSendStream[_Job] | None = None
        self.totals = Stored()
        """What every write so far stored."""

    async def write(self, fetched: Fetched | None, health: HealthNote | None = None) -> None:
        """Store one poll's data, then its health note; counts go to :attr:`totals`."""
        job = _Job(fetched, health)
        if self._send is not None:
            await self._send.send(job)
            await job.done.wait()
        else:
            await self._write([job])
        if job.error is not None:
            raise job.error

    async def note(self, health: HealthNote) -> None:
        """Record a poll's outcome."""
        await self.write(None, health)

    async def run(self) -> None:
        """Write queued jobs in batches until cancelled."""
        send, receive = anyio.create_memory_object_stream[_Job](math.inf)
        self._send = send
        with send, receive:
            try:
                while True:
                    batch = [await receive.receive()]
                    rows = _rows(batch[0])
                    while rows < self._max_batch_rows:
                        try:
                            job = receive.receive_nowait()
                        except anyio.WouldBlock:
                            break
                        batch.append(job)
                        rows += _rows(job)
                    await self._write(batch)
            finally:
                self._send = None
                _fail_queued(receive)

    async def _write(self, batch: Sequence[_Job]) -> None:
        """Write a batch in a worker thread and wake its waiters, handing them any error."""
        try:
            await run_ingest(self._write_batch, batch)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc  # handed to the waiter, who re-raises it
            else:  # one bad job (say, a meter removed meanwhile) must not sink the others
                for job in batch:
                    await self._write([job])
        finally:
            for job in batch:
                job.done.set()

    def _write_batch(self, batch: Sequence[_Job]) -> None:
        self._write_data(batch)
        for job in batch:
            if job.health is not None:
                note = job.health
                self._store.record_health(note.meter_id, note.ok, note.at, note.error)

    def _write_data(self, batch: Sequence[_Job]) -> None:
        readings: list[Reading] = []
        blocks: list[ReadingBlock] = []
        intervals: list[IntervalEnergy] = []
        extras: list[Extra] = []
        prices: list[PricePoint] = []
        for job in batch:
            if job.fetched is not None:
                if isinstance(job.fetched.readings, ReadingBlock):
                    blocks.append(job.fetched.readings)  # taken as columns, no reading built
                else:
                    readings.extend(job.fetched.readings)
                intervals.extend(job.fetched.intervals)
                extras.extend(job.fetched.extras)
                prices.extend(job.fetched.prices)
        for report in (self._ingestor.ingest(readings) if readings else None,
                       self._ingestor.ingest_blocks(blocks) if blocks else None):
            if report is not None:
                self._count(report)
        totals = self.totals
        if intervals:
            refused = IngestReport()
            intervals = self._ingestor.valid_intervals(intervals, refused)
            self._log_rejections(refused)
            totals.rejected += refused.rejected_count
        if intervals:
            totals.intervals += self._store.write_intervals(intervals).stored
        if extras:
            totals.extras += self._store.write_extras(extras).stored
        if prices:
            totals.prices += self._store.write_prices(prices).stored

    def _count(self, report: IngestReport) -> None:
        self._log_rejections(report)
        totals = self.totals
        totals.readings += report.stored
        totals.duplicates += report.duplicates
        totals.rejected += report.rejected_count
        metrics.record_ingest("poller", report.stored, report.duplicates)

    @staticmethod
    def _log_rejections(report: IngestReport) -> None:
        for reason, count in report.reasons().items():
            log.warning("rejected %d polled records: %s", count, reason)


def _fail_queued(receive: MemoryObjectReceiveStream[_Job]) -> None:
    """Release waiters whose jobs will never be written because the sink stopped."""
    while True:
        try:
            job = receive.receive_nowait()
        except (anyio.WouldBlock, anyio.EndOfStream):
            return
        job.error = RuntimeError("the poller stopped before this data was stored")
        job.done.set()


def _rows(job: _Job) -> int:
    fetched = job.fetched
    if fetched is None:
        return 1
    return 1 + len(fetched.readings) + len(fetched.intervals) + len(fetched.extras) + len(fetched.prices)
