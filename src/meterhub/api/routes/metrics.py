"""``/metrics``: the hub's Prometheus metrics, for any authenticated caller (scrape with an API key)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from meterhub import metrics
from meterhub.api.deps import PrincipalDep
from meterhub.api.problems import PROBLEM_RESPONSES

__all__ = ["router"]

router = APIRouter(tags=["health"], responses=PROBLEM_RESPONSES)


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
)
def prometheus(principal: PrincipalDep) -> Response:
    """Answer every metric in the Prometheus text format."""
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)
