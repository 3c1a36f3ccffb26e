"""The API's routers, one per resource; ``create_app`` includes every router in RESOURCE_ROUTERS.

A new resource adds its module here and appends its router to the list. Every route it declares
must depend on ``PrincipalDep`` (tests/api/test_auth.py enumerates the app's routes to prove it).
"""

from __future__ import annotations

from fastapi import APIRouter

from meterhub.api.routes import (
    analysis,
    auth,
    charts,
    docs,
    energy,
    export,
    keys,
    latest,
    meter_keys,
    meters,
    metrics,
    places,
    prices,
    readings,
    relay,
    series,
    session,
    status,
    users,
)

__all__ = ["RESOURCE_ROUTERS"]

RESOURCE_ROUTERS: list[APIRouter] = [
    latest.router,  # first: routes are matched in order, and /api/v1/latest is the most polled
    readings.router,  # then history, asked for by every chart
    auth.router,
    session.router,
    users.router,
    keys.router,
    metrics.router,
    docs.router,
    meters.router,
    status.router,
    series.router,
    energy.router,
    analysis.router,
    relay.router,
    meter_keys.router,
    places.router,
    prices.router,
    export.router,
    charts.router,
]
