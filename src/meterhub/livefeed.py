"""Readings as they are stored, for whoever listens in this process (the dashboard's live stream).

The :class:`~meterhub.ingest.Ingestor` publishes each committed batch to :data:`FEED`: per meter
and phase only the newest reading, so a backfill of a year costs one event per meter and batch.
Publishing is thread-safe and costs nothing while no one listens. A listener holds a
:class:`Subscription` on its event loop; when it falls behind by more than its queue holds, the
oldest events are dropped (a live view only needs the newest).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from meterhub.model import Reading

__all__ = ["FEED", "LiveFeed", "Subscription", "newest_per_meter"]

QUEUE_BATCHES = 256
"""Batches a listener may fall behind by before the oldest are dropped."""


def newest_per_meter(readings: Sequence[Reading]) -> list[Reading]:
    """Return the newest reading of each (meter, phase) among ``readings``."""
    newest: dict[tuple[str, int], Reading] = {}
    for reading in readings:
        key = (reading.meter, reading.phase)
        kept = newest.get(key)
        if kept is None or reading.ts >= kept.ts:
            newest[key] = reading
    return list(newest.values())


class Subscription:
    """One listener: an asyncio queue of batches of newest readings."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int = QUEUE_BATCHES) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[list[Reading]] = asyncio.Queue(maxsize)
        self.dropped = 0

    def _offer(self, batch: list[Reading]) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(batch)

    def offer(self, batch: list[Reading]) -> None:
        """Hand a batch to the listener from any thread."""
        with contextlib.suppress(RuntimeError):  # the listener's loop has closed: it is going away
            self._loop.call_soon_threadsafe(self._offer, batch)

    async def get(self) -> list[Reading]:
        """Wait for the next batch."""
        return await self._queue.get()


class LiveFeed:
    """Fans stored readings out to the subscriptions of this process."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()

    @property
    def listeners(self) -> int:
        """Return how many subscriptions are open."""
        return len(self._subscriptions)

    @property
    def listening(self) -> bool:
        """Return whether anyone listens (so a batch's readings are worth building)."""
        return bool(self._subscriptions)

    def publish(self, readings: Sequence[Reading]) -> None:
        """Offer the newest reading per meter and phase of a stored batch to every listener."""
        if not self._subscriptions or not readings:
            return
        batch = newest_per_meter(readings)
        with self._lock:
            listeners = list(self._subscriptions)
        for subscription in listeners:
            subscription.offer(batch)

    @asynccontextmanager
    async def subscribe(self, maxsize: int = QUEUE_BATCHES) -> AsyncIterator[Subscription]:
        """Listen while the context is open."""
        subscription = Subscription(asyncio.get_running_loop(), maxsize)
        with self._lock:
            self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            with self._lock:
                self._subscriptions.discard(subscription)


FEED = LiveFeed()
"""The process's feed: the Ingestor publishes to it, the dashboard's event stream listens."""
