"""``/metrics``: the hub's Prometheus metrics, for any authenticated caller (scrape with an API key).

Besides the process's own counters (requests, polls, errors, quotas, ingest), every meter's
newest values, reading age and online status, read from the app's store when scraped.
"""

from __future__ import annotations

import threading

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry

from meterhub import metrics
from meterhub.api.deps import PrincipalDep, store_of
from meterhub.api.problems import PROBLEM_RESPONSES

__all__ = ["router"]

router = APIRouter(tags=["health"], responses=PROBLEM_RESPONSES)

_REGISTRY_LOCK = threading.Lock()


def _meter_registry(request: Request) -> CollectorRegistry:
    """Return the app's meter metrics registry, made on the first scrape."""
    state = request.app.state
    with _REGISTRY_LOCK:
        registry: CollectorRegistry | None = getattr(state, "meter_metrics", None)
        if registry is None:
            registry = metrics.meter_registry(store_of(request))
            state.meter_metrics = registry
        return registry


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
)
def prometheus(request: Request, principal: PrincipalDep) -> Response:
    """Answer every metric in the Prometheus text format, the meters' values among them."""
    return Response(metrics.exposition(_meter_registry(request)), media_type=metrics.CONTENT_TYPE)
