"""When a meter was silent: gap events read from the store, clipped to the range asked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from meterhub.errors import InputError
from meterhub.model import Gap
from meterhub.store.base import Store

__all__ = ["OfflineStats", "gaps_within", "offline_stats"]


@dataclass(frozen=True, slots=True)
class OfflineStats:
    """How many gaps a meter had within a range and how many seconds they cover there."""

    gaps: int
    total_offline_s: float


def offline_stats(store: Store, meter_id: str, start: datetime, end: datetime) -> OfflineStats:
    """Count the gaps overlapping [start, end) and sum their seconds inside it (read-only)."""
    if end < start:
        raise InputError(f"end {end.isoformat()} is before start {start.isoformat()}")
    count = 0
    total_s = 0.0
    for gap in store.gaps(meter_id, start, end):
        inside_s = (min(gap.end, end) - max(gap.start, start)).total_seconds()
        if inside_s > 0:
            count += 1
            total_s += inside_s
    return OfflineStats(count, total_s)


def gaps_within(store: Store, meter_id: str, start: datetime, end: datetime) -> list[Gap]:
    """Return the gaps overlapping [start, end), clipped to it, oldest first (read-only)."""
    if end < start:
        raise InputError(f"end {end.isoformat()} is before start {start.isoformat()}")
    # Compared in UTC, the store's zone, so most comparisons need no offset look-up; a gap
    # inside the range is kept as the store gave it.
    lo, hi = start.astimezone(UTC), end.astimezone(UTC)
    clipped = (
        gap if lo <= gap.start and gap.end <= hi else Gap(gap.meter, max(gap.start, start), min(gap.end, end))
        for gap in store.gaps(meter_id, start, end)
    )
    return [gap for gap in clipped if gap.end > gap.start]
