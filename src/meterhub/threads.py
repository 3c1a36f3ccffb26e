"""Worker threads of ingest's own, so a poll or an MQTT write never waits for a thread a read holds.

Blocking store calls run on worker threads. The API's run on the event loop's default pool
(FastAPI's plain routes and dependencies, streamed bodies chunk by chunk); everything that
collects data (polls, live reads, MQTT writes, backfills, the quota ledger) runs through
:func:`run_ingest`, which takes its threads from a limiter of its own, one per event loop. However
many reads are running or waiting, ingest finds a thread at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, TypeVarTuple, Unpack

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

__all__ = ["INGEST_THREADS", "ingest_limiter", "run_ingest"]

INGEST_THREADS = 32
"""Worker threads ingest may hold at once, apart from the API's."""

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")
_LIMITER: RunVar[anyio.CapacityLimiter] = RunVar("meterhub_ingest_limiter")


def ingest_limiter() -> anyio.CapacityLimiter:
    """Return this event loop's limiter of ingest threads, making it on first use."""
    try:
        return _LIMITER.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(INGEST_THREADS)
        _LIMITER.set(limiter)
        return limiter


async def run_ingest(function: Callable[[Unpack[_Ts]], _T], *args: *_Ts) -> _T:
    """Run a blocking call of ingest on one of ingest's own worker threads."""
    return await anyio.to_thread.run_sync(function, *args, limiter=ingest_limiter())
