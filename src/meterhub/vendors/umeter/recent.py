"""Which recent local days of a metering point were read, and whether they have settled.

Grid-operator (P4) data usually arrives the next day or later, sometimes a part first, and a
day can still change after it first appears. So the connector re-reads recent days until they
settle: a day has settled when it is complete (every quarter hour of the local day, 92, 96 or
100 of them) and a read agrees with the one before. An unsettled day is read again once
:data:`RECHECK_S` has passed since its last read; each read that changes nothing doubles that
wait (up to :data:`MAX_RECHECK_S`), so a day that never completes costs a handful of calls, and a
change starts over at :data:`RECHECK_S`. Days older than :data:`LOOKBACK_DAYS` are let go.

The ledger is plain JSON, kept per meter in the connector's token store (it survives restarts).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any

import orjson

from meterhub.vendors.umeter import mapping

__all__ = ["LOOKBACK_DAYS", "MAX_RECHECK_S", "RECHECK_S", "DayRead", "RecentDays", "is_complete"]

LOOKBACK_DAYS = 7
"""How many local days before today are re-read until they settle."""
RECHECK_S = 3600.0
"""The wait before an unsettled day is read again (after a read that changed it)."""
MAX_RECHECK_S = 86_400.0
"""The longest wait between reads of an unsettled day."""


@dataclass(frozen=True, slots=True)
class DayRead:
    """What the latest read of one local day found."""

    digest: str
    """A fingerprint of the day's intervals and costs ("" before the first read)."""
    complete: bool
    settled: bool
    read_at: datetime | None
    unchanged: int
    """Reads in a row that found the day as the one before."""

    def due_at(self) -> datetime | None:
        """Return when the day is to be read again (None: at once, never read)."""
        if self.read_at is None:
            return None
        wait_s = min(RECHECK_S * 2 ** min(self.unchanged, 8), MAX_RECHECK_S)
        return self.read_at + timedelta(seconds=wait_s)


_UNREAD = DayRead("", False, False, None, 0)


def _local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=mapping.ZONE).astimezone(mapping.ZONE)


def is_complete(day: date, measured: mapping.Measurements) -> bool:
    """Tell whether the intervals cover the whole local day, one after another."""
    intervals = measured.intervals
    if not intervals:
        return False
    start, end = _local_midnight(day), _local_midnight(day + timedelta(days=1))
    contiguous = all(a.end == b.start for a, b in pairwise(intervals))
    return contiguous and intervals[0].start == start and intervals[-1].end == end


def digest(measured: mapping.Measurements) -> str:
    """Return a fingerprint of the day's energy and costs (what a late change would touch)."""
    energy = [(i.start.isoformat(), i.end.isoformat(), i.import_kwh, i.export_kwh)
              for i in measured.intervals]
    costs = [(e.ts.isoformat(), e.value) for e in measured.extras if e.name == mapping.VENDOR_COST_EXTRA]
    return hashlib.sha256(orjson.dumps([energy, costs])).hexdigest()[:32]


class RecentDays:
    """The ledger of one meter's recent days."""

    def __init__(self, days: dict[date, DayRead] | None = None) -> None:
        self.days: dict[date, DayRead] = dict(days or {})

    @classmethod
    def from_text(cls, text: str | None) -> RecentDays:
        """Read a kept ledger; anything unreadable starts an empty one (it only paces re-reads)."""
        if not text:
            return cls()
        try:
            raw = orjson.loads(text)
            days = {date.fromisoformat(key): _day_read(value) for key, value in raw.items()}
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            return cls()
        return cls(days)

    def to_text(self) -> str:
        """Return the ledger as JSON text."""
        data = {}
        for day, read in sorted(self.days.items()):
            fields = asdict(read)
            fields["read_at"] = None if read.read_at is None else read.read_at.isoformat()
            data[day.isoformat()] = fields
        return orjson.dumps(data).decode()

    def keep_within(self, today: date) -> None:
        """Let go of days older than the lookback and any day after today."""
        first = today - timedelta(days=LOOKBACK_DAYS)
        self.days = {day: read for day, read in self.days.items() if first <= day <= today}

    def watch(self, day: date) -> None:
        """Start following a day not yet read."""
        self.days.setdefault(day, _UNREAD)

    def record(
        self, day: date, measured: mapping.Measurements, at: datetime, *, today: bool = False
    ) -> DayRead:
        """Note a read of ``day``; return what the ledger now says of it.

        A read of ``today`` never settles the day nor slows its re-reads: the day is still going.
        """
        before = self.days.get(day, _UNREAD)
        found = digest(measured)
        same = before.read_at is not None and found == before.digest and not today
        complete = is_complete(day, measured)
        read = replace(
            before,
            digest=found,
            complete=complete,
            settled=complete and same,
            read_at=at,
            unchanged=before.unchanged + 1 if same else 0,
        )
        self.days[day] = read
        return read

    def due(self, today: date, now: datetime) -> list[date]:
        """Return the days before ``today`` to read again now, the newest first."""
        found = []
        for day, read in sorted(self.days.items(), reverse=True):
            if day >= today or read.settled:
                continue
            due_at = read.due_at()
            if due_at is None or due_at <= now:
                found.append(day)
        return found


def _day_read(value: Any) -> DayRead:
    read_at = value["read_at"]
    return DayRead(
        str(value["digest"]),
        bool(value["complete"]),
        bool(value["settled"]),
        None if read_at is None else datetime.fromisoformat(read_at),
        int(value["unchanged"]),
    )
