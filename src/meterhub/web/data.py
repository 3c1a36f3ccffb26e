"""``/api/v1/dashboard``: the data the dashboard's pages draw, as columns.

The same routes serve any API client (token, key or browser session) and read through the
same domain functions as the rest of the API: ``history.power_series`` (rollups), and
``analytics.energy.meter_energy`` (local calendar periods).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from meterhub.api.deps import PrincipalDep, StoreDep
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.api.routes._params import visible_meter
from meterhub.model import utc_now
from meterhub.web.device_views import device_view
from meterhub.web.pages import cards_of
from meterhub.web.periods import RANGES
from meterhub.web.view_periods import PeriodQuery, period_query
from meterhub.web.views import CHART_POINTS, meter_view

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"], responses=PROBLEM_RESPONSES)

MeterPeriod = Annotated[
    PeriodQuery,
    Depends(
        period_query(
            RANGES,
            "A local date (2026-03-29) or time (2026-03-29T14:00) in the meter's zone; default now.",
            "Add the previous period, shifted onto this one.",
        )
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
    asked: MeterPeriod,
    power: Annotated[bool, Query(description="Add power (average, min-max) per bucket.")] = True,
    energy: Annotated[bool, Query(description="Add energy bars by local period.")] = True,
    points: Annotated[int, Query(ge=10, le=4000, description="Power buckets wanted.")] = CHART_POINTS,
    device: Annotated[
        bool, Query(description="Add the device series (last value, age, and the period's values).")
    ] = False,
) -> Response:
    """Answer power (average and min-max, breaks at gaps) and energy bars of a local period.

    ``range`` is hour, day, week, month or year around ``anchor``, or custom between ``start``
    and ``end``. Power comes from rollups at any range, so a year costs about what a day does.
    With ``device`` the meter's device series come too (``device``: last value, age, and the
    period's values of the series the page draws).
    """
    meter = visible_meter(store, principal.can_see_meter, meter_id)
    now = utc_now()
    period, previous = asked.periods(meter.tz, now)
    body: dict[str, Any] = meter_view(
        store, meter, period, previous, points=points, power=power, energy=energy
    )
    if device:
        body["device"] = device_view(store, meter, period, now)
    return _json(body)
