"""The clock the poller schedules by: real UTC time, or a scaled one that follows a simulator."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

import anyio

__all__ = ["Clock"]


class Clock:
    """Tells the time and sleeps; ``speed`` simulated seconds pass per real second.

    ``Clock()`` is the real clock. ``Clock(start, speed)`` runs from ``start`` at ``speed`` times
    real time, like :class:`meterhub.vendors.physics.SimClock`, so a hub and a simulator started
    at the same instant with the same speed agree on the time.
    """

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        if not 0 < speed < math.inf:
            raise ValueError(f"speed must be a finite number > 0, not {speed}")
        if start is not None and start.utcoffset() is None:
            raise ValueError("the clock's start must be timezone-aware")
        self.is_real = start is None and speed == 1.0
        """Whether this clock is the wall clock."""
        self._start = start.astimezone(UTC) if start is not None else datetime.now(UTC)
        self._real_start_s = time.monotonic()
        self.speed = float(speed)

    def now(self) -> datetime:
        """Return the current instant, aware UTC."""
        if self.is_real:
            return datetime.now(UTC)
        elapsed_s = (time.monotonic() - self._real_start_s) * self.speed
        return self._start + timedelta(seconds=elapsed_s)

    def real_s(self, clock_s: float) -> float:
        """Return how many real seconds ``clock_s`` seconds of this clock take."""
        return max(0.0, clock_s) / self.speed

    async def sleep(self, clock_s: float) -> None:
        """Sleep ``clock_s`` seconds of this clock."""
        await anyio.sleep(self.real_s(clock_s))
