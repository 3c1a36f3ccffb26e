"""The ingest pipeline every source goes through: validate, batch, write.

A rejected row never blocks the rest of its batch and is always reported with its reason.
Times before 2000 and values no real meter reports are rejected here, for every source, so each
stored value fits SQLite's fixed-point columns and no reading lies decades before the rest.
Each batch is one transaction, so a crash loses at most the batch in flight, never part of one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from meterhub.livefeed import FEED, LiveFeed
from meterhub.model import READING_FIELDS, REGISTER_FIELDS, IntervalEnergy, Reading, utc_now
from meterhub.store.base import Store, WriteResult

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
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="meterhub-ingest") as writer:
            pending: tuple[Future[WriteResult], int, list[Reading]] | None = None
            for item in rows:
                where, reading = ("", item) if isinstance(item, Reading) else item
                report.received += 1
                reason = validate_reading(reading, latest_allowed)
                if reason is None and not self._meter_known(reading.meter):
                    reason = f"unknown meter {reading.meter!r}"
                if reason is not None:
                    report.reject(where or f"{reading.meter} {reading.ts.isoformat()}", reason)
                    continue
                batch.append(reading)
                if len(batch) >= self.batch_size:
                    self._settle(pending, report, on_batch)
                    pending = (writer.submit(self.store.write_readings, batch), report.received, batch)
                    batch = []
                    latest_allowed = self._now() + MAX_FUTURE
            self._settle(pending, report, on_batch)
            if batch:
                self._settle(
                    (writer.submit(self.store.write_readings, batch), report.received, batch),
                    report,
                    on_batch,
                )
        return report

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

    def _meter_known(self, meter_id: str) -> bool:
        if meter_id in self._known_meters:
            return True
        checked = self._unknown_checked.get(meter_id)
        if checked is not None and time.monotonic() - checked < UNKNOWN_METER_RECHECK_S:
            return False
        self._known_meters = {meter.id for meter in self.store.list_meters()}
        if meter_id not in self._known_meters:
            self._unknown_checked[meter_id] = time.monotonic()
            return False
        self._unknown_checked.pop(meter_id, None)
        return True
