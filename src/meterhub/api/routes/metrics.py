"""``/metrics``: the hub's Prometheus metrics, for any authenticated caller (scrape with an API key).

Besides the process's own counters (requests, polls, errors, quotas, ingest), the newest values,
reading age and online status of every meter the caller may see (admins: all; others: those
shared with them), read from the app's store when scraped.
"""

from __future__ import annotations

import threading

from fastapi import APIRouter, Request, Response

from meterhub import metrics
from meterhub.api.deps import PrincipalDep, store_of
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.meternow import MeterNowCache

__all__ = ["router"]

router = APIRouter(tags=["health"], responses=PROBLEM_RESPONSES)

_CACHE_LOCK = threading.Lock()


def _meters_now(request: Request) -> MeterNowCache:
    """Return the app's cache of the meters' newest values, made on the first scrape."""
    state = request.app.state
    with _CACHE_LOCK:
        cache: MeterNowCache | None = getattr(state, "meters_now", None)
        if cache is None:
            cache = MeterNowCache(store_of(request))
            state.meters_now = cache
        return cache


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
)
def prometheus(request: Request, principal: PrincipalDep) -> Response:
    """Answer every metric in the Prometheus text format, the values of the caller's meters among them."""
    meters = metrics.meter_exposition(_meters_now(request), principal.can_see_meter, principal.can_see_place)
    return Response(metrics.exposition(meters), media_type=metrics.CONTENT_TYPE)
