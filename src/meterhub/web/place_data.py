"""``/api/v1/dashboard/places``: what a place's page draws, as columns, and its power flow now.

Any API client may call these (token, key or browser session); a place the caller may not see
is a 404, as in the rest of the API. Energy and cost come from the functions behind
``/api/v1/places/{id}/energy`` and ``/api/v1/places/{id}/cost`` (see ``place_views``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from meterhub.api.deps import PrincipalDep, StoreDep
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.api.routes._params import EndQuery, StartQuery, time_range, visible_place
from meterhub.errors import InputError
from meterhub.model import utc_now
from meterhub.web.periods import Period, period_of
from meterhub.web.place_views import cost_now, place_view, power_now

__all__ = ["PLACE_RANGES", "place_periods", "router"]

router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"], responses=PROBLEM_RESPONSES)

PLACE_RANGES: tuple[str, ...] = ("day", "week", "month", "year", "custom")
"""The periods a place's page shows (its bars are hours at the finest)."""

RangeQuery = Annotated[
    str, Query(alias="range", pattern="^(" + "|".join(PLACE_RANGES) + ")$", description="The period kind.")
]
AnchorQuery = Annotated[
    str | None,
    Query(max_length=32, description="A local date (2026-03-29) in the place's zone; default today."),
]


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def place_periods(
    kind: str, anchor: str | None, start: str | None, end: str | None, tz: str, now: datetime, compare: bool
) -> tuple[Period, Period | None]:
    """Return the period asked for and, when comparing, the one before it (as long, for custom)."""
    lo, hi = time_range(start, end, tz, default_span=timedelta(days=1)) if kind == "custom" else (None, None)
    try:
        period = period_of(kind, anchor, tz, now, lo, hi)
        if not compare:
            return period, None
        if period.previous is None:
            span = period.end - period.start
            return period, period_of("custom", None, tz, now, period.start - span, period.start)
        return period, period_of(kind, period.previous, tz, now)
    except (OverflowError, ValueError) as exc:  # a calendar edge beyond what dates can hold
        raise InputError(f"anchor {anchor!r} is out of range; choose a date between 1970 and 2199") from exc


@router.get("/places/{place_id}/view", summary="A place's energy flow, bars and cost of one period")
def view(
    place_id: str,
    store: StoreDep,
    principal: PrincipalDep,
    kind: RangeQuery = "day",
    anchor: AnchorQuery = None,
    start: StartQuery = None,
    end: EndQuery = None,
    compare: Annotated[bool, Query(description="Add the previous period's figures.")] = False,
) -> Response:
    """Answer a place's energy flow (each figure with its source), stacked bars and cost of a period.

    ``range`` is day, week, month or year around ``anchor`` (local to the place), or custom
    between ``start`` and ``end``. Bars are hours of a day, days of a week or month, months of
    a year: the ``groupby`` of ``/api/v1/places/{id}/energy`` and ``/cost`` for the same span.
    """
    place = visible_place(store, principal.can_see_place, place_id)
    period, previous = place_periods(kind, anchor, start, end, place.tz, utc_now(), compare)
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
