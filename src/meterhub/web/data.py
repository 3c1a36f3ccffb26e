"""``/api/v1/dashboard``: the data the dashboard's pages draw, as columns.

The same routes serve any API client (token, key or browser session) and read through the
same domain functions as the rest of the API: ``history.power_series`` (rollups), and
``analytics.energy.meter_energy`` (local calendar periods).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from meterhub.api.deps import PrincipalDep, StoreDep
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.api.routes._params import EndQuery, StartQuery, time_range, visible_meter
from meterhub.model import utc_now
from meterhub.web.pages import cards_of
from meterhub.web.periods import RANGES, period_of
from meterhub.web.views import CHART_POINTS, meter_view

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"], responses=PROBLEM_RESPONSES)

RangeQuery = Annotated[
    str, Query(alias="range", pattern="^(" + "|".join(RANGES) + ")$", description="The period kind.")
]
AnchorQuery = Annotated[
    str | None,
    Query(
        max_length=32,
        description="A local date (2026-03-29) or time (2026-03-29T14:00) in the meter's zone; default now.",
    ),
]


def _json(body: dict[str, Any]) -> Response:
    """Answer a body as JSON, encoded in one step (series are long lists of numbers)."""
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


@router.get("/overview", summary="Overview cards")
def overview(store: StoreDep, principal: PrincipalDep) -> Response:
    """Answer every visible meter's newest power, today's energy (local day) and health."""
    return _json({"cards": [card.as_json() for card in cards_of(store, principal, utc_now())]})


@router.get("/meters/{meter_id}/view", summary="A meter's view of one period")
def view(
    meter_id: str,
    store: StoreDep,
    principal: PrincipalDep,
    kind: RangeQuery = "day",
    anchor: AnchorQuery = None,
    start: StartQuery = None,
    end: EndQuery = None,
    compare: Annotated[bool, Query(description="Add the previous period, shifted onto this one.")] = False,
    power: Annotated[bool, Query(description="Add power (average, min-max) per bucket.")] = True,
    energy: Annotated[bool, Query(description="Add energy bars by local period.")] = True,
    points: Annotated[int, Query(ge=10, le=4000, description="Power buckets wanted.")] = CHART_POINTS,
) -> Response:
    """Answer power (average and min-max, breaks at gaps) and energy bars of a local period.

    ``range`` is hour, day, week, month or year around ``anchor``, or custom between ``start``
    and ``end``. Power comes from rollups at any range, so a year costs about what a day does.
    """
    meter = visible_meter(store, principal.can_see_meter, meter_id)
    now = utc_now()
    lo, hi = (
        time_range(start, end, meter.tz, default_span=timedelta(days=1)) if kind == "custom" else (None, None)
    )
    period = period_of(kind, anchor, meter.tz, now, lo, hi)
    previous = None
    if compare:
        previous = (
            period_of("custom", None, meter.tz, now, period.start - (period.end - period.start), period.start)
            if period.previous is None
            else period_of(kind, period.previous, meter.tz, now)
        )
    body: dict[str, Any] = meter_view(
        store, meter, period, previous, points=points, power=power, energy=energy
    )
    return _json(body)
