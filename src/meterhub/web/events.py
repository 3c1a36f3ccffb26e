"""``/api/v1/events``: readings as they are stored, as server-sent events.

Each stream listens to the process's live feed and sends, per stored batch, the newest reading
of each meter the caller may see (event ``readings``, data a JSON list). It starts with a
``hello`` event. Streams end when the client goes away or the hub stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import orjson
from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from meterhub.api.deps import Principal, PrincipalDep
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.livefeed import FEED, LiveFeed
from meterhub.web.views import reading_event

__all__ = ["DRAIN_CHECK_S", "draining", "router"]

router = APIRouter(prefix="/api/v1", tags=["dashboard"], responses=PROBLEM_RESPONSES)

DRAIN_CHECK_S = 1.0
"""How often an idle stream looks whether the hub is stopping."""
PING_S = 15
"""Comment lines keep idle connections (and proxies) open."""


def draining(request: Request) -> bool:
    """Tell whether the app is stopping, so streams should end."""
    return bool(getattr(request.app.state, "draining", False))


async def _events(request: Request, principal: Principal, feed: LiveFeed) -> AsyncIterator[ServerSentEvent]:
    async with feed.subscribe() as subscription:
        yield ServerSentEvent(data=orjson.dumps({"user": principal.user}).decode(), event="hello")
        while not draining(request):
            batch = None
            with anyio.move_on_after(DRAIN_CHECK_S):
                batch = await subscription.get()
            if batch is None:
                continue
            shown = [reading_event(r) for r in batch if principal.can_see_meter(r.meter)]
            if shown:
                yield ServerSentEvent(data=orjson.dumps(shown).decode(), event="readings")


@router.get("/events", summary="Live readings (server-sent events)", response_class=EventSourceResponse)
async def events(request: Request, principal: PrincipalDep) -> EventSourceResponse:
    """Stream the newest reading of each visible meter as it is stored (text/event-stream)."""
    return EventSourceResponse(
        _events(request, principal, FEED),
        ping=PING_S,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
