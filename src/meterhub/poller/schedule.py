"""What the poller keeps per meter and in its heap: settings, outcomes, slots and the schedule.

Each meter has one :class:`Slot` and one live entry in the :class:`Schedule`, a heap ordered by
when the meter is due. Pushing a meter again makes its older entries stale: they are skipped when
popped, as are entries of meters removed or replaced since (a new slot has a new generation).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio

from meterhub.errors import ConfigError
from meterhub.model import Meter
from meterhub.poller.backfill import BackfillJob
from meterhub.poller.recovery import RecoveryState
from meterhub.vendors.base import Connector, Fetched

__all__ = [
    "Fetch",
    "Flight",
    "PollOutcome",
    "PollerSettings",
    "PollerStats",
    "Schedule",
    "Slot",
    "retry_delay_s",
]

Fetch = Callable[[Connector], Awaitable[Fetched]]
"""A vendor call made in a meter's turn instead of ``latest`` (a relay switch)."""


@dataclass(frozen=True, slots=True)
class PollerSettings:
    """How the poller paces itself; every field has a default that suits a household."""

    jitter_ratio: float = 0.1
    """Each wait is stretched by a random 0..ratio of itself, so meters drift apart."""
    backoff_cap_s: float = 3600.0
    """The longest wait between retries of a failing meter."""
    max_concurrent_polls: int = 200
    """Polls in flight at once."""
    max_concurrent_backfills: int = 8
    """Recovery backfills in flight at once."""
    recovery_max_s: float = 7 * 86_400.0
    """How far back a recovery backfill reaches at most."""
    startup_spread_s: float = 10.0
    """First polls are spread over this many seconds (and never before a meter's interval)."""
    refresh_meters_s: float = 60.0
    """How often the meter list is re-read from the store, so added meters get polled."""
    lease_s: float = 30.0
    """How long a worker's hold on a meter lasts unrenewed (renewed every third of it): a dead
    worker's meters are taken over by the others within this time (real seconds)."""
    quota_margin_s: float = 0.5
    """Calls under one vendor limit are booked at least the window plus this apart: room for the
    workers' clocks to disagree and for the time a request takes to reach the vendor (a reader
    allowing one call per 2 s is asked every 2.5 s at most)."""

    def __post_init__(self) -> None:
        if self.jitter_ratio < 0 or self.backoff_cap_s <= 0 or self.max_concurrent_polls < 1:
            raise ConfigError("poller settings must be positive")
        if self.lease_s < 1.0 or self.quota_margin_s < 0:
            raise ConfigError("the poller's lease_s must be at least 1 and quota_margin_s at least 0")


@dataclass(slots=True)
class PollerStats:
    """Counts since the poller started."""

    polls: int = 0
    successes: int = 0
    failures: int = 0
    backfilled_windows: int = 0
    deferred: int = 0
    """Polls put off because another caller held the meter's quota slot (and stores its data)."""


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What one poll of one meter did."""

    meter_id: str
    ok: bool
    at: datetime
    error: str | None
    next_in_s: float
    backfill: BackfillJob | None = None
    fetched: Fetched | None = field(default=None, compare=False, repr=False)
    """What the vendor answered (stored already); None after a failure."""
    cause: Exception | None = field(default=None, compare=False, repr=False)
    """The error behind ``error``, for a caller that reports it typed."""


@dataclass(slots=True)
class Flight:
    """A poll under way; callers wanting the same meter's data wait for it."""

    done: anyio.Event = field(default_factory=anyio.Event)
    outcome: PollOutcome | None = None


@dataclass(slots=True)
class Slot:
    """One meter's place in the schedule: its connector, pace, health and poll in flight."""

    meter: Meter
    interval_s: float
    generation: int
    recovery: RecoveryState
    connector: Connector | None = None
    failures: int = 0
    covered_until: datetime | None = None
    running: bool = False
    last_success: datetime | None = None
    next_turn: datetime | None = None
    """When the meter may be asked again: its last call plus its minimum interval."""
    entry: int = -1
    """The sequence number of the meter's live heap entry; older entries are skipped."""
    flight: Flight | None = None


def retry_delay_s(interval_s: float, failures: int, cap_s: float) -> float:
    """Return the wait before retry number ``failures``: interval, doubled each time, capped."""
    return min(max(cap_s, interval_s), interval_s * 2.0 ** max(0, failures - 1))


class Schedule:
    """The meters' heap by due time, one live entry per meter."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, int]] = []
        self._sequence = itertools.count()

    @property
    def next_due_s(self) -> float | None:
        """Return when the earliest entry is due, in epoch seconds (None: the heap is empty)."""
        return self._heap[0][0] if self._heap else None

    @property
    def next_due(self) -> datetime | None:
        """Return when the earliest entry is due (None: the heap is empty)."""
        due_s = self.next_due_s
        return None if due_s is None else datetime.fromtimestamp(due_s, UTC)

    def push(self, slot: Slot, due: datetime) -> bool:
        """Schedule ``slot`` at ``due``, making its older entries stale; return whether it is now first."""
        due_s = due.timestamp()
        earliest = self.next_due_s
        slot.entry = next(self._sequence)
        heapq.heappush(self._heap, (due_s, slot.entry, slot.meter.id, slot.generation))
        return earliest is None or due_s < earliest

    def pop_due(self, now_s: float, slots: Mapping[str, Slot]) -> Slot | None:
        """Return the most overdue meter, skipping entries of meters removed or replaced."""
        while self._heap and self._heap[0][0] <= now_s:
            _, entry, meter_id, generation = heapq.heappop(self._heap)
            slot = slots.get(meter_id)
            current = slot is not None and slot.generation == generation and slot.entry == entry
            if slot is not None and current and not slot.running:
                return slot
        return None
