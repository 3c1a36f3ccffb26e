"""What the scenarios share, built once per run outside every timed part.

The fleet is 2000 meters polled once a minute; the year is one Europe/Oslo meter with one
reading a minute and ~50 silent stretches, ingested through the real path into a SQLite file.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from bench.data import Channels, Household, gap_mask, household_channels
from meterhub.analytics.calendar import local_midnight
from meterhub.ingest import Ingestor
from meterhub.model import Meter, Reading
from meterhub.store.sqlite import SQLiteStore
from meterhub.store.sqlite_codec import encode_reading
from meterhub.timeutil import to_ms

__all__ = ["Context", "Fleet", "Sizes", "Year", "raw_connection"]

TZ = "Europe/Oslo"
YEAR_METER = "oslo-0001"
FLEET_START = datetime(2025, 6, 2, 15, 0, tzinfo=UTC)
YEAR_FIRST_DAY = date(2025, 1, 1)
EncodedRow = tuple[int | None, ...]


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much data a run uses: the full run, or the quick one that tests may call."""

    fleet_meters: int
    fleet_polls: int
    year_days: int
    year_gaps: int
    target_s: float
    """Length of one timed block in the latency scenarios."""

    @classmethod
    def for_run(cls, quick: bool) -> Sizes:
        """Return the sizes of a quick or a full run."""
        if quick:
            return cls(fleet_meters=2000, fleet_polls=10, year_days=56, year_gaps=50, target_s=0.03)
        return cls(fleet_meters=2000, fleet_polls=60, year_days=365, year_gaps=50, target_s=0.25)


@dataclass(frozen=True, slots=True)
class Fleet:
    """Parsed readings of the fleet and the same rows pre-encoded for the raw reference."""

    meter_ids: list[str]
    poll_order: list[Reading]
    poll_order_rows: list[EncodedRow]
    backfill: list[Reading]
    backfill_rows: list[EncodedRow]


@dataclass(frozen=True, slots=True)
class Year:
    """The year database (store open), the same rows as arrays, and the ranges asked of it."""

    store: SQLiteStore
    path: Path
    series: Channels
    start: datetime
    """Local midnight of the first day."""
    end: datetime
    """Local midnight after the last day."""
    utc_start: datetime
    """UTC midnight of the first day."""
    utc_end: datetime
    """UTC midnight after the last day."""
    gaps: int


def raw_connection(path: Path) -> sqlite3.Connection:
    """Open a plain connection with the pragmas the store uses (WAL, synchronous=NORMAL)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class Context:
    """Shared fixtures of one run, created lazily in a temporary folder."""

    def __init__(self, quick: bool, rounds: int) -> None:
        self.quick = quick
        self.rounds = rounds
        self.sizes = Sizes.for_run(quick)
        self._tmp = tempfile.TemporaryDirectory(prefix="meterhub-bench-")
        self.workdir = Path(self._tmp.name)
        self._copies = 0
        self.wanted: frozenset[str] | None = None
        """Result names the running scenario should produce (None: all); it may skip the rest."""

    def close(self) -> None:
        """Close the year store, if opened, and remove every file of the run."""
        if "year" in self.__dict__:
            self.year.store.close()
        self._tmp.cleanup()

    def fresh_path(self, stem: str) -> Path:
        """Return a new database path in the run's folder."""
        self._copies += 1
        return self.workdir / f"{stem}-{self._copies}.db"

    def copy_of_template(self) -> Path:
        """Return a fresh copy of the migrated, empty database that knows the fleet's meters."""
        path = self.fresh_path("round")
        shutil.copyfile(self.template, path)
        return path

    @staticmethod
    def discard(path: Path) -> None:
        """Remove a database file and its WAL companions."""
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    @cached_property
    def template(self) -> Path:
        """An empty, migrated database with the fleet's meters; copied for every ingest round."""
        path = self.workdir / "template.db"
        store = SQLiteStore(path)
        for meter_id in self.fleet_ids:
            store.add_meter(Meter(meter_id, "file", phases=1, tz=TZ, interval_s=60))
        store.close()
        return path

    @cached_property
    def fleet_ids(self) -> list[str]:
        """Ids of the fleet's meters, in poll order."""
        return [f"mh-{k:04d}" for k in range(self.sizes.fleet_meters)]

    @cached_property
    def fleet(self) -> Fleet:
        """The fleet's readings in poll order and in backfill order, parsed and encoded."""
        meters, polls = self.sizes.fleet_meters, self.sizes.fleet_polls
        rng = np.random.default_rng(7)
        has_pv = rng.random(meters) < 0.25
        house = Household(
            base_w=rng.uniform(150.0, 600.0, (meters, 1)),
            pv_peak_w=np.where(has_pv, rng.uniform(3000.0, 8000.0, meters), 0.0)[:, None],
            import0_kwh=rng.uniform(500.0, 40_000.0, (meters, 1)),
            export0_kwh=np.where(has_pv, rng.uniform(0.0, 6000.0, meters), 0.0)[:, None],
        )
        # A poller walks the fleet once a minute, 30 ms apart: meter k at minute j.
        ts_ms = (to_ms(FLEET_START) + np.arange(polls, dtype=np.int64) * 60_000
                 + np.arange(meters, dtype=np.int64)[:, None] * 30)
        channels = household_channels(ts_ms, TZ, house, seed=11)
        by_meter = [
            list(Channels(*(getattr(channels, name)[k] for name in Channels.__slots__))
                 .readings(meter_id))
            for k, meter_id in enumerate(self.fleet_ids)
        ]
        pks = self._template_pks()
        poll_order = [by_meter[k][j] for j in range(polls) for k in range(meters)]
        backfill = [reading for readings in by_meter for reading in readings]
        return Fleet(
            self.fleet_ids,
            poll_order, [encode_reading(pks[r.meter], r, to_ms(r.ts)) for r in poll_order],
            backfill, [encode_reading(pks[r.meter], r, to_ms(r.ts)) for r in backfill],
        )

    def _template_pks(self) -> dict[str, int]:
        conn = sqlite3.connect(self.template)
        try:
            return dict(conn.execute("SELECT id, pk FROM meters").fetchall())
        finally:
            conn.close()

    @cached_property
    def year(self) -> Year:
        """One meter's year of minutes (shorter in --quick), ingested through the real path."""
        zone = ZoneInfo(TZ)
        start = local_midnight(YEAR_FIRST_DAY, zone)
        end = local_midnight(YEAR_FIRST_DAY + timedelta(days=self.sizes.year_days), zone)
        # Data from an hour before the first local midnight to an hour after the last, so UTC
        # and local ranges are both fully covered.
        first_ms = to_ms(start) - 3_600_000
        minutes = (to_ms(end) + 3_600_000 - first_ms) // 60_000 + 1
        ts_ms = first_ms + np.arange(minutes, dtype=np.int64) * 60_000
        house = Household(np.array(350.0), np.array(4000.0), np.array(12_000.0), np.array(800.0))
        keep = gap_mask(ts_ms.size, self.sizes.year_gaps, seed=3)
        series = household_channels(ts_ms, TZ, house, seed=5).take(keep)
        path = self.workdir / "year.db"
        store = SQLiteStore(path)
        store.add_meter(Meter(YEAR_METER, "file", phases=1, tz=TZ, interval_s=60))
        report = Ingestor(store).ingest(series.readings(YEAR_METER))
        if report.stored != series.ts_ms.size:
            raise RuntimeError(f"the year store kept {report.stored} of {series.ts_ms.size} rows")
        utc_start = datetime.combine(YEAR_FIRST_DAY, datetime.min.time(), tzinfo=UTC)
        utc_end = utc_start + timedelta(days=self.sizes.year_days)
        return Year(store, path, series, start, end, utc_start, utc_end, self.sizes.year_gaps)
