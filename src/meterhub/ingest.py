"""The ingest pipeline every source goes through: validate, batch, write.

A rejected row never blocks the rest of its batch and is always reported with its reason.
Times before 2000 and values no real meter reports are rejected here, for every source, so each
stored value fits SQLite's fixed-point columns and no reading lies decades before the rest.
Each batch is one transaction, so a crash loses at most the batch in flight, never part of one.
"""

from __future__ import annotations

import itertools
import operator
import re
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from meterhub.livefeed import FEED, LiveFeed
from meterhub.model import READING_FIELDS, REGISTER_FIELDS, IntervalEnergy, Reading, utc_now
from meterhub.readingblocks import BlockColumns, ReadingBlock, blocks_columns, epoch_us
from meterhub.store.base import ReadingColumns, Store, WriteResult, write_columns

__all__ = [
    "EARLIEST_TS",
    "MAX_REGISTER",
    "IngestReport",
    "Ingestor",
    "Rejection",
    "validate_interval",
    "validate_reading",
]

MAX_VOLTAGE_V = 1000.0
MAX_ABS_POWER_W = 10_000_000.0
MAX_ABS_REACTIVE_POWER_VAR = 10_000_000.0
MAX_ABS_CURRENT_A = 100_000.0
MAX_FREQUENCY_HZ = 1000.0
MAX_REGISTER = 10_000_000_000.0
"""Largest register in kWh or kvarh: 10 TWh, more than a 10 MW meter counts in a century."""
EARLIEST_TS = datetime(2000, 1, 1, tzinfo=UTC)
"""Readings before this are rejected: no meter meterhub speaks to has a clock that old."""
MAX_FUTURE = timedelta(minutes=5)
_BOUNDS: dict[str, tuple[float, float]] = {
    "voltage_v": (0.0, MAX_VOLTAGE_V),
    "current_a": (-MAX_ABS_CURRENT_A, MAX_ABS_CURRENT_A),
    "power_w": (-MAX_ABS_POWER_W, MAX_ABS_POWER_W),
    "reactive_power_var": (-MAX_ABS_REACTIVE_POWER_VAR, MAX_ABS_REACTIVE_POWER_VAR),
    "power_factor": (-1.0, 1.0),
    "frequency_hz": (0.0, MAX_FREQUENCY_HZ),
    **dict.fromkeys(REGISTER_FIELDS, (0.0, MAX_REGISTER)),
}
"""The range each value must lie in; inside them every value fits SQLite's fixed-point columns."""
_LOWEST = tuple(_BOUNDS[name][0] for name in READING_FIELDS)
_HIGHEST = tuple(_BOUNDS[name][1] for name in READING_FIELDS)
MAX_PHASE = 3
_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)?")
MAX_REJECTIONS_KEPT = 1000
UNKNOWN_METER_RECHECK_S = 10.0
"""A meter missing now may be added meanwhile: look again after this long."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """One row that was not stored, where it came from and why."""

    where: str
    reason: str


@dataclass(slots=True)
class IngestReport:
    """What an ingest did: rows received, stored, already present and rejected."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected_count: int = 0
    received_committed: int = 0
    """Rows received up to the end of the last committed batch (all of them are settled)."""
    rejections: list[Rejection] = field(default_factory=list)
    """The first rejections with their reasons (all are counted in ``rejected_count``)."""
    added_meters: list[str] = field(default_factory=list)
    """One line for each meter the import created, naming its zone and why."""

    def reject(self, where: str, reason: str) -> None:
        """Count a rejected row and keep its reason."""
        self.rejected_count += 1
        if len(self.rejections) < MAX_REJECTIONS_KEPT:
            self.rejections.append(Rejection(where, reason))

    def reasons(self) -> dict[str, int]:
        """Return how often each kind of reason occurred among the kept rejections.

        A reason's detail after ``": "`` and the instants it names are left out, so rejections of
        one kind count together.
        """
        counts: dict[str, int] = {}
        for rejection in self.rejections:
            key = _INSTANT.sub("<time>", rejection.reason.split(": ", 1)[0])
            counts[key] = counts.get(key, 0) + 1
        return counts


def validate_reading(reading: Reading, latest_allowed: datetime) -> str | None:
    """Return why a reading must be rejected, or None when it is acceptable."""
    ts = reading.ts
    try:
        if not EARLIEST_TS <= ts <= latest_allowed:
            if ts > latest_allowed:
                return f"timestamp {ts.isoformat()} is more than 5 minutes in the future"
            return (
                f"timestamp {ts.isoformat()} is before 2000-01-01T00:00:00Z, the earliest time meterhub keeps"
            )
    except TypeError:
        return "timestamp has no time zone"
    if not 0 <= reading.phase <= MAX_PHASE:
        return f"phase {reading.phase} is not 0..3"
    values = reading.values()
    # One pass for the common case; NaN fails every comparison, so it is caught here too.
    # The lengths match by construction, and a strict zip costs a third more on this hot path.
    for value, low, high in zip(values, _LOWEST, _HIGHEST, strict=False):
        if value is not None and not low <= value <= high:
            return _why_outside(reading)
    if values.count(None) == len(values):
        return "reading carries no value"
    return None


def validate_interval(record: IntervalEnergy, latest_allowed: datetime) -> str | None:
    """Return why an interval energy record must be rejected, or None when it is acceptable.

    Its energies are finite, never negative, and no more than 10 MW delivers over its interval;
    it lies between :data:`EARLIEST_TS` and ``latest_allowed``.
    """
    if record.start < EARLIEST_TS:
        return f"interval start {record.start.isoformat()} is before 2000-01-01T00:00:00Z"
    if record.end > latest_allowed:
        return f"interval end {record.end.isoformat()} is more than 5 minutes in the future"
    hours = (record.end - record.start).total_seconds() / 3600
    most_kwh = MAX_ABS_POWER_W / 1000 * hours
    for name, value in (("import", record.import_kwh), ("export", record.export_kwh)):
        if value is not None and not 0 <= value <= most_kwh:  # NaN fails every comparison
            return f"interval {name} energy {value} kWh outside 0..{most_kwh:g} kWh (10 MW over {hours:g} h)"
    return None


def _why_outside(reading: Reading) -> str | None:
    """Return why a value of a reading lies beyond what any real meter reports, first reason first."""
    if any(value is not None and value - value != 0 for value in reading.values()):
        return "value is NaN or infinite"  # only NaN and infinity give value - value != 0
    voltage, power, factor = reading.voltage_v, reading.power_w, reading.power_factor
    if voltage is not None and not 0 <= voltage <= MAX_VOLTAGE_V:
        return f"voltage {voltage} V outside 0..1000 V"
    if power is not None and not -MAX_ABS_POWER_W <= power <= MAX_ABS_POWER_W:
        return f"power {power} W beyond ±10 MW"
    if factor is not None and not -1 <= factor <= 1:
        return f"power factor {factor} outside -1..1"
    current, reactive, frequency = reading.current_a, reading.reactive_power_var, reading.frequency_hz
    if current is not None and not -MAX_ABS_CURRENT_A <= current <= MAX_ABS_CURRENT_A:
        return f"current {current} A beyond ±100 kA"
    if reactive is not None and not -MAX_ABS_REACTIVE_POWER_VAR <= reactive <= MAX_ABS_REACTIVE_POWER_VAR:
        return f"reactive power {reactive} var beyond ±10 Mvar"
    if frequency is not None and not 0 <= frequency <= MAX_FREQUENCY_HZ:
        return f"frequency {frequency} Hz outside 0..1000 Hz"
    registers = (
        reading.energy_import_kwh,
        reading.energy_export_kwh,
        reading.reactive_import_kvarh,
        reading.reactive_export_kvarh,
    )
    for name, value in zip(REGISTER_FIELDS, registers, strict=True):
        if value is not None and not 0 <= value <= MAX_REGISTER:
            unit = "kWh" if name.endswith("_kwh") else "kvarh"
            return f"register {name} {value} {unit} outside 0..10,000,000,000 {unit}"
    return None


_VECTOR_MIN_ROWS = 64
"""Below this many rows a chunk is checked row by row (arrays cost more than they save)."""
_LOWEST_COLUMN = np.array(_LOWEST)[:, None]
_HIGHEST_COLUMN = np.array(_HIGHEST)[:, None]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_EARLIEST_US = epoch_us(EARLIEST_TS)


_Columns = tuple[
    tuple[str, ...], "npt.NDArray[np.int64]", "npt.NDArray[np.float64]", "npt.NDArray[np.float64]"
]
"""A chunk as columns: meter ids, epoch microseconds, phases, values (one row per field)."""


def _suspects(readings: list[Reading], latest_allowed: datetime) -> tuple[set[int] | range, _Columns | None]:
    """Return the positions of readings :func:`validate_reading` may reject (a superset).

    A chunk is checked as columns: times as epoch microseconds, phases and values as arrays. Any
    row a check flags is validated again one by one, which gives the reason; anything the arrays
    cannot hold (a naive time, a value that is no number) makes every row a suspect.
    """
    count = len(readings)
    if count < _VECTOR_MIN_ROWS:
        return range(count), None
    try:
        meter_col, ts_col, phase_col, *value_cols = zip(*readings, strict=True)
        # Epoch microseconds, exactly: (ts - epoch) // 1 µs, mapped without a Python frame per row.
        ts_us = np.fromiter(map(operator.floordiv, map(operator.sub, ts_col, itertools.repeat(_EPOCH)),
                                itertools.repeat(_US)), np.int64, count)
        phases = np.array(phase_col, dtype=np.float64)
        values = np.empty((len(value_cols), count))  # one row per field; None reads as NaN
        nones: list[int | None] = []
        for position, column in enumerate(value_cols):
            if column[0] is None and column.count(None) == count:  # a field no reading carries
                values[position] = np.nan
                nones.append(count)
            else:
                values[position] = np.array(column, dtype=np.float64)
                nones.append(None)  # counted below only when the field has gaps
    except (TypeError, ValueError, OverflowError):
        return range(count), None
    missing = np.isnan(values)
    flagged = _flagged(ts_us, phases, values, missing, latest_allowed)
    for position, column in enumerate(value_cols):
        gaps = int(missing[position].sum())
        known = nones[position]
        if gaps and gaps != (column.count(None) if known is None else known):  # a NaN a reading holds
            flagged |= missing[position] & np.fromiter((v is not None for v in column), bool, count)
    return set(np.flatnonzero(flagged).tolist()), (meter_col, ts_us, phases, values)


def _flagged(ts_us: npt.NDArray[np.int64], phases: npt.NDArray[np.float64], values: npt.NDArray[np.float64],
             missing: npt.NDArray[np.bool_], latest_allowed: datetime) -> npt.NDArray[np.bool_]:
    """Return which rows a check flags: a time or phase out of range, a value beyond its bounds
    (NaN read as missing), or no value at all."""
    latest_us = epoch_us(latest_allowed)
    inside = (values >= _LOWEST_COLUMN) & (values <= _HIGHEST_COLUMN)
    flagged = (ts_us < _EARLIEST_US) | (ts_us > latest_us) | ~((phases >= 0) & (phases <= MAX_PHASE))
    flagged |= ~(inside | missing).all(axis=0) | missing.all(axis=0)
    return flagged


def _batch_columns(pieces: list[_Columns]) -> ReadingColumns:
    """Return a batch's accepted chunks as the store's columns."""
    meter_col = tuple(itertools.chain.from_iterable(piece[0] for piece in pieces))
    index_of = {meter_id: k for k, meter_id in enumerate(dict.fromkeys(meter_col))}
    return ReadingColumns(
        list(index_of),
        np.fromiter(map(index_of.__getitem__, meter_col), np.int64, len(meter_col)),
        np.concatenate([piece[1] for piece in pieces]),
        np.concatenate([piece[2] for piece in pieces]).astype(np.int64),
        np.concatenate([piece[3] for piece in pieces], axis=1).T,
    )


class Ingestor:
    """Validates readings and writes them to a store in batches.

    While one batch is written (on a worker thread), the next is read and validated, so parsing
    and SQLite's work overlap; batches still commit in order, one transaction each.
    """

    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = 50_000,
        now: Callable[[], datetime] = utc_now,
        feed: LiveFeed | None = FEED,
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.feed = feed
        """Where each committed batch is announced (the dashboard's live stream); None: nowhere."""
        self._now = now
        self._known_meters: set[str] = set()
        self._unknown_checked: dict[str, float] = {}
        """meter id -> monotonic time it was last found missing; looked up again after a while"""

    def ingest(
        self,
        rows: Iterable[Reading | tuple[str, Reading]],
        on_batch: Callable[[IngestReport], None] | None = None,
        report: IngestReport | None = None,
    ) -> IngestReport:
        """Validate and store rows (a reading, or ``(where, reading)``); report what happened.

        ``on_batch`` is called after each committed batch with the running report.
        """
        report = report or IngestReport()
        latest_allowed = self._now() + MAX_FUTURE
        batch: list[Reading] = []
        items = iter(rows)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="meterhub-ingest") as writer:
            pending: tuple[Future[WriteResult], int, list[Reading]] | None = None
            # A list is taken in chunks that at most fill the batch, so batches end where they
            # would if rows were taken one by one. Any other iterable is taken row by row: it may
            # report rows of its own (a file's unreadable lines) in order with ours.
            in_chunks = isinstance(rows, list | tuple)
            pieces: list[_Columns] | None = []
            while chunk := list(itertools.islice(items, self.batch_size - len(batch) if in_chunks else 1)):
                report.received += len(chunk)
                accepted, columns = self._accepted(chunk, latest_allowed, report)
                batch.extend(accepted)
                pieces = None if pieces is None or columns is None else [*pieces, columns]
                if len(batch) >= self.batch_size:
                    self._settle(pending, report, on_batch)
                    pending = (self._submit(writer, batch, pieces), report.received, batch)
                    batch, pieces = [], []
                    latest_allowed = self._now() + MAX_FUTURE
            self._settle(pending, report, on_batch)
            if batch:
                self._settle((self._submit(writer, batch, pieces), report.received, batch), report, on_batch)
        return report

    def ingest_blocks(
        self, blocks: Sequence[ReadingBlock], report: IngestReport | None = None
    ) -> IngestReport:
        """Validate and store the readings of vendor blocks, as columns, in one transaction.

        The checks are those of :meth:`ingest`, made on the columns; a row they flag is built as a
        reading and checked again, which gives its reason.
        """
        report = report or IngestReport()
        columns = blocks_columns(blocks)
        count = columns.rows
        report.received += count
        if not count:
            return report
        latest_allowed = self._now() + MAX_FUTURE
        values = columns.values
        flagged = _flagged(columns.ts_us, columns.phase, values, np.isnan(values), latest_allowed)
        meter_ids = {block.meter for block in blocks}
        unknown = {meter_id for meter_id in meter_ids if not self._meter_known(meter_id)}
        keep: npt.NDArray[np.bool_] | None = None
        if flagged.any() or unknown:
            keep = np.ones(count, dtype=bool)
            for row in np.flatnonzero(flagged).tolist():
                reading = columns.reading(row)
                reason = validate_reading(reading, latest_allowed)
                if reason is not None:
                    keep[row] = False
                    report.reject(f"{reading.meter} {reading.ts.isoformat()}", reason)
            for row, meter_id in enumerate(columns.meters):
                if meter_id in unknown and keep[row]:
                    keep[row] = False
                    report.reject(f"{meter_id} {columns.reading(row).ts.isoformat()}",
                                  f"unknown meter {meter_id!r}")
        piece: _Columns = (columns.meters, columns.ts_us, columns.phase, columns.values)
        if keep is not None:
            kept = np.flatnonzero(keep)
            piece = (tuple(columns.meters[k] for k in kept.tolist()), columns.ts_us[kept],
                     columns.phase[kept], values[:, kept])
        if not len(piece[1]):  # nothing to commit, as ingest() commits nothing for such a batch
            return report
        result = write_columns(self.store, _batch_columns([piece]))
        if self.feed is not None and result.stored and self.feed.listening:
            self.feed.publish(BlockColumns(*piece).readings())
        report.received_committed = report.received
        report.stored += result.stored
        report.duplicates += result.duplicates
        return report

    def _submit(
        self, writer: ThreadPoolExecutor, batch: list[Reading], pieces: list[_Columns] | None
    ) -> Future[WriteResult]:
        """Start writing a batch: as columns when the store takes them, else as readings."""
        write_columns: Callable[[ReadingColumns], WriteResult] | None = getattr(
            self.store, "write_columns", None
        )
        if pieces and write_columns is not None:
            return writer.submit(write_columns, _batch_columns(pieces))
        return writer.submit(self.store.write_readings, batch)

    def _accepted(
        self, chunk: list[Reading | tuple[str, Reading]], latest_allowed: datetime, report: IngestReport
    ) -> tuple[list[Reading], _Columns | None]:
        """Return the chunk's readings ingest accepts, in order and as columns when it has them.

        The others are counted in ``report`` with their reason.
        """
        readings = [item if isinstance(item, Reading) else item[1] for item in chunk]
        suspects, columns = _suspects(readings, latest_allowed)
        meter_ids = set(columns[0]) if columns is not None else {r.meter for r in readings}
        unknown = {meter_id for meter_id in meter_ids if not self._meter_known(meter_id)}
        if not suspects and not unknown:
            return readings, columns
        accepted: list[Reading] = []
        kept: list[int] = []
        for index, reading in enumerate(readings):
            reason = validate_reading(reading, latest_allowed) if index in suspects else None
            if reason is None and reading.meter in unknown:
                reason = f"unknown meter {reading.meter!r}"
            if reason is None:
                accepted.append(reading)
                kept.append(index)
                continue
            item = chunk[index]
            where = "" if isinstance(item, Reading) else item[0]
            report.reject(where or f"{reading.meter} {reading.ts.isoformat()}", reason)
        if columns is not None:
            meter_col, ts_us, phases, values = columns
            columns = (tuple(meter_col[k] for k in kept), ts_us[kept], phases[kept], values[:, kept])
        return accepted, columns

    def valid_intervals(
        self, records: Iterable[IntervalEnergy], report: IngestReport
    ) -> list[IntervalEnergy]:
        """Return the interval records ingest accepts; count the others in ``report`` with their reason."""
        latest_allowed = self._now() + MAX_FUTURE
        kept: list[IntervalEnergy] = []
        for record in records:
            reason = validate_interval(record, latest_allowed)
            if reason is None:
                kept.append(record)
            else:
                report.reject(f"{record.meter} {record.start.isoformat()}", reason)
        return kept

    def _settle(
        self,
        pending: tuple[Future[WriteResult], int, list[Reading]] | None,
        report: IngestReport,
        on_batch: Callable[[IngestReport], None] | None,
    ) -> None:
        if pending is None:
            return
        future, received, batch = pending
        result = future.result()
        if self.feed is not None and result.stored:
            self.feed.publish(batch)
        report.received_committed = received
        report.stored += result.stored
        report.duplicates += result.duplicates
        if on_batch is not None:
            on_batch(report)

    def _meter_ids(self) -> set[str]:
        """Return the ids of every meter: one column when the store offers it (2,000 meters:
        under a millisecond, against 10-19 ms for ``list_meters`` building each Meter)."""
        meter_ids: Callable[[], Sequence[str]] | None = getattr(self.store, "meter_ids", None)
        if meter_ids is not None:
            return set(meter_ids())
        return {meter.id for meter in self.store.list_meters()}

    def _meter_known(self, meter_id: str) -> bool:
        if meter_id in self._known_meters:
            return True
        checked = self._unknown_checked.get(meter_id)
        if checked is not None and time.monotonic() - checked < UNKNOWN_METER_RECHECK_S:
            return False
        self._known_meters = self._meter_ids()
        if meter_id not in self._known_meters:
            self._unknown_checked[meter_id] = time.monotonic()
            return False
        self._unknown_checked.pop(meter_id, None)
        return True
