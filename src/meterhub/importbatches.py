"""Validate blocks of imported rows and write them to the store as columns, batch by batch.

The same rules as :class:`meterhub.ingest.Ingestor`: each row the column checks could not vouch
for is validated by :func:`meterhub.ingest.validate_reading`; batches hold ``batch_rows`` accepted
readings, commit in order, one transaction each, while the next block is parsed; after each
commit ``on_batch`` sees the running report, whose ``received_committed`` counts the rows up to
the last one committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from meterhub.importcolumns import Block
from meterhub.ingest import MAX_FUTURE, IngestReport, validate_reading
from meterhub.livefeed import FEED, LiveFeed
from meterhub.model import Reading, utc_now
from meterhub.store.base import ReadingColumns, Store, WriteResult, write_columns

__all__ = ["LatestAllowed", "ingest_blocks"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

Ints = npt.NDArray[np.int64]


class LatestAllowed:
    """The latest instant a reading may carry: now plus five minutes, renewed after each batch."""

    def __init__(self, now: Callable[[], datetime] = utc_now) -> None:
        self._now = now
        self.at = now() + MAX_FUTURE

    def renew(self) -> None:
        """Move the limit on to the current time."""
        self.at = self._now() + MAX_FUTURE

    def us(self) -> int:
        """Return the limit in epoch microseconds."""
        return (self.at - _EPOCH) // _US


class _Pending:
    """Accepted rows waiting for their batch, in file order."""

    def __init__(self) -> None:
        self.parts: list[tuple[Ints, Ints, Ints, npt.NDArray[np.float64], Ints]] = []
        self.size = 0

    def add(self, meter: Ints, ts_us: Ints, phase: Ints, values: npt.NDArray[np.float64], seen: Ints) -> None:
        if len(meter):
            self.parts.append((meter, ts_us, phase, values, seen))
            self.size += len(meter)

    def take(self, count: int, meters: list[str]) -> tuple[ReadingColumns, int]:
        """Return the first ``count`` rows as columns, and the received count at the last of them."""
        if len(self.parts) == 1:  # what a take leaves is sliced by the next, not copied again
            meter, ts_us, phase, values, seen = self.parts[0]
        else:
            meter, ts_us, phase, values, seen = (
                np.concatenate([part[k] for part in self.parts]) for k in range(5)
            )
        self.parts = [(meter[count:], ts_us[count:], phase[count:], values[count:], seen[count:])]
        self.size -= count
        used, index = np.unique(meter[:count], return_inverse=True)
        columns = ReadingColumns(
            [meters[k] for k in used.tolist()],
            index.astype(np.int64),
            ts_us[:count],
            phase[:count],
            values[:count],
        )
        return columns, int(seen[count - 1])


def ingest_blocks(
    store: Store,
    blocks: Iterable[Block],
    report: IngestReport,
    *,
    latest: LatestAllowed,
    batch_rows: int,
    ensure_meter: Callable[[str], None],
    on_batch: Callable[[IngestReport], None] | None = None,
    feed: LiveFeed | None = FEED,
) -> IngestReport:
    """Validate and store every block's rows; ``ensure_meter`` is called for each meter read, in order."""
    meters: list[str] = []
    code_of: dict[str, int] = {}

    def code(meter_id: str) -> int:
        found = code_of.get(meter_id)
        if found is None:
            found = code_of[meter_id] = len(meters)
            meters.append(meter_id)
        return found

    pending = _Pending()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="meterhub-import") as writer:
        in_flight: tuple[Future[WriteResult], int, ReadingColumns] | None = None
        meter_jobs: list[Future[None]] = []

        def submit(count: int) -> None:
            nonlocal in_flight
            columns, seen = pending.take(count, meters)
            _settle(in_flight, report, on_batch, feed, meter_jobs)
            in_flight = (writer.submit(write_columns, store, columns), seen, columns)
            latest.renew()

        for block in blocks:
            codes = np.array([code(m) for m in block.meters] or [0], dtype=np.int64)
            meter = codes[block.meter_index] if block.meters else np.zeros(block.size, np.int64)
            ts_us, phase, values = block.ts_us.copy(), block.phase.copy(), block.values.copy()
            accepted = block.ok.copy()
            # Meters are created on the writer's thread, in order before the batches that need them,
            # so reading goes on while a batch is written.
            _create_meters(block, meters, meter, lambda m: meter_jobs.append(writer.submit(ensure_meter, m)))
            for position in sorted(block.rows):
                row = block.rows[position]
                reading = row.reading
                reason = row.reason or "unreadable row"
                if reading is not None:
                    found = validate_reading(reading, latest.at)
                    if found is None:
                        accepted[position] = True
                        meter[position] = code(reading.meter)
                        ts_us[position] = (reading.ts - _EPOCH) // _US
                        phase[position] = reading.phase
                        values[position] = [np.nan if v is None else v for v in reading.values()]
                        continue
                    reason = found
                report.reject(row.where, reason)
            seen = report.received + np.arange(1, block.size + 1, dtype=np.int64)
            report.received += block.size
            kept = np.flatnonzero(accepted)
            pending.add(meter[kept], ts_us[kept], phase[kept], values[kept], seen[kept])
            while pending.size >= batch_rows:
                submit(batch_rows)
        if pending.size:
            columns, _ = pending.take(pending.size, meters)
            _settle(in_flight, report, on_batch, feed, meter_jobs)
            in_flight = (writer.submit(write_columns, store, columns), report.received, columns)
        _settle(in_flight, report, on_batch, feed, meter_jobs)
        for job in meter_jobs:
            job.result()  # raises what creating a meter raised
    return report


def _create_meters(block: Block, meters: list[str], meter: Ints, ensure_meter: Callable[[str], None]) -> None:
    """Call ``ensure_meter`` for each meter of a row with a reading, in the order they first appear."""
    first: dict[str, int] = {}
    ok = np.flatnonzero(block.ok)
    if len(ok):
        codes, where = np.unique(meter[ok], return_index=True)
        for found, position in zip(codes.tolist(), ok[where].tolist(), strict=True):
            first[meters[found]] = position
    for position, row in block.rows.items():
        if row.reading is not None and position < first.get(row.reading.meter, block.size):
            first[row.reading.meter] = position
    for meter_id in sorted(first, key=first.__getitem__):
        ensure_meter(meter_id)


def _settle(
    in_flight: tuple[Future[WriteResult], int, ReadingColumns] | None,
    report: IngestReport,
    on_batch: Callable[[IngestReport], None] | None,
    feed: LiveFeed | None,
    meter_jobs: list[Future[None]],
) -> None:
    if in_flight is None:
        return
    future, seen, columns = in_flight
    try:
        result = future.result()
    except Exception:
        for job in meter_jobs:  # a meter that could not be created is the cause to report
            if job.done():
                job.result()
        raise
    if feed is not None and feed.listeners and result.stored:
        feed.publish(_newest(columns))
    report.received_committed = seen
    report.stored += result.stored
    report.duplicates += result.duplicates
    if on_batch is not None:
        on_batch(report)


def _newest(columns: ReadingColumns) -> list[Reading]:
    """Return the newest reading of each meter and phase among the columns."""
    keys = columns.meter_index * 4 + columns.phase
    order = np.lexsort((columns.ts_us, keys))
    last = order[np.append(np.nonzero(keys[order][1:] != keys[order][:-1])[0], len(order) - 1)]
    return [columns.reading(int(row)) for row in last.tolist()]
