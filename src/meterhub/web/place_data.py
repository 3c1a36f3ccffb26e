"""``/api/v1/dashboard/places``: what a place's page draws, as columns, and its power flow now.

Any API client may call these (token, key or browser session); a place the caller may not see
is a 404, as in the rest of the API. Energy and cost come from the functions behind
``/api/v1/places/{id}/energy`` and ``/api/v1/places/{id}/cost`` (see ``place_views``).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends
from fastapi.responses import Response

from meterhub.api.deps import PrincipalDep, StoreDep
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.api.routes._params import visible_place
from meterhub.model import utc_now
from meterhub.web.place_views import cost_now, place_view, power_now
from meterhub.web.view_periods import PeriodQuery, period_query

__all__ = ["PLACE_RANGES", "router"]

router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"], responses=PROBLEM_RESPONSES)

PLACE_RANGES: tuple[str, ...] = ("day", "week", "month", "year", "custom")
"""The periods a place's page shows (its bars are hours at the finest)."""

PlacePeriod = Annotated[
    PeriodQuery,
    Depends(
        period_query(
            PLACE_RANGES,
            "A local date (2026-03-29) in the place's zone; default today.",
            "Add the previous period's figures.",
        )
    ),
]


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/places/{place_id}/view", summary="A place's energy flow, bars and cost of one period")
def view(
    place_id: str,
    store: StoreDep,
    principal: PrincipalDep,
    asked: PlacePeriod,
) -> Response:
    """Answer a place's energy flow (each figure with its source), stacked bars and cost of a period.

    ``range`` is day, week, month or year around ``anchor`` (local to the place), or custom
    between ``start`` and ``end``. Bars are hours of a day, days of a week or month, months of
    a year: the ``groupby`` of ``/api/v1/places/{id}/energy`` and ``/cost`` for the same span.
    """
    place = visible_place(store, principal.can_see_place, place_id)
    period, previous = asked.periods(place.tz, utc_now())
    return _json(place_view(store, place, period, previous))


@router.get("/places/{place_id}/now", summary="A place's power flow now and its cost so far")
def now(place_id: str, store: StoreDep, principal: PrincipalDep) -> Response:
    """Answer each meter's newest power by role, the power flow they make, and cost so far.

    Cost so far is today's, this month's, and last month's over the same days (local to the place).
    """
    place = visible_place(store, principal.can_see_place, place_id)
    instant = utc_now()
    return _json(
        {
            "place": place.id,
            "tz": place.tz,
            "as_of": instant.isoformat(),
            "power": power_now(store, place),
            "cost": cost_now(store, place, instant),
        }
    )
