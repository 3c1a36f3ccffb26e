"""Bound the worker threads the API holds at once, so ingest always has threads of its own.

A request holds at most one worker thread at any moment: FastAPI runs a plain route, each plain
dependency and each chunk of a streamed body one after another. Admitting at most ``limit``
requests at once therefore bounds the API's share of the event loop's thread pool, and the hub
(:mod:`meterhub.poller.hub`) makes that pool larger by ingest's share: a poll, an MQTT message or
a backfill never waits for a thread a read holds. Requests beyond the limit wait at the gate,
holding nothing. ``/healthz`` passes straight through, so a liveness probe never queues behind
heavy reads (it costs one short thread hop).
"""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["UNGATED_PATHS", "RequestGate"]

UNGATED_PATHS = frozenset({"/healthz"})
"""Paths answered without waiting at the gate."""


class RequestGate:
    """ASGI middleware: at most ``limit`` HTTP requests inside ``app`` at once."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the gate must admit at least one request, not {limit}")
        self.app = app
        self.limit = limit
        self._slots: anyio.Semaphore | None = None
        self.inside = 0
        """Requests inside the gate now."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on once a slot is free; lifespan and ungated paths at once."""
        if scope["type"] != "http" or scope.get("path") in UNGATED_PATHS:
            await self.app(scope, receive, send)
            return
        if self._slots is None:  # made on the serving event loop
            self._slots = anyio.Semaphore(self.limit)
        async with self._slots:
            self.inside += 1
            try:
                await self.app(scope, receive, send)
            finally:
                self.inside -= 1
