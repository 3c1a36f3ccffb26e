"""A place's capacity-tariff month: the page, and its data under ``/api/v1/dashboard``.

The page is a frame (place, month, links to the months around it); capacity.js draws the
figures from the data route, which reads ``analytics.capacity.place_capacity`` as
``/api/v1/places/{id}/capacity`` does, and keeps the hour in progress up to date from the
live event stream. A place the user may not see is a 404, as in the API.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from meterhub.analytics.calendar import to_zone
from meterhub.analytics.capacity import month_edges
from meterhub.api.deps import PrincipalDep, StoreDep
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.api.routes._params import visible_place
from meterhub.api.routes.energy import thresholds_kwh
from meterhub.errors import InputError
from meterhub.model import utc_now
from meterhub.web.capacity_views import capacity_view, month_after, month_before, month_title
from meterhub.web.pagekit import page, visible_page

__all__ = ["router"]

router = APIRouter()

MonthQuery = Annotated[
    str | None,
    Query(
        pattern=r"^(19[7-9]\d|2[01]\d\d)-(0[1-9]|1[0-2])$",
        description="YYYY-MM, local to the place (default: this month, to date).",
    ),
]


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


@router.get(
    "/api/v1/dashboard/places/{place_id}/capacity",
    tags=["dashboard"],
    responses=PROBLEM_RESPONSES,
    summary="A place's capacity-tariff month, drawn",
)
def capacity_data(
    place_id: str,
    store: StoreDep,
    principal: PrincipalDep,
    month: MonthQuery = None,
    thresholds: Annotated[
        str | None,
        Query(max_length=200, description="Steps in kWh/h such as 5,10,15 (default: the tariff's)."),
    ] = None,
) -> Response:
    """Answer each local day's biggest hourly import, the top days, the month value and step.

    While the month runs, ``live`` is the hour in progress: its import so far, the most it may
    import with the month value staying in its step, and the grid registers read so far.
    """
    place = visible_place(store, principal.can_see_place, place_id)
    return _json(capacity_view(store, place, month, utc_now(), thresholds_kwh(thresholds)))


@router.get("/places/{place_id}/capacity", response_class=HTMLResponse, include_in_schema=False)
async def capacity_page(request: Request, place_id: str) -> Response:
    """Show a place's capacity-tariff month: day peaks, top days, thresholds and the hour in progress."""
    shown = await visible_page(request, "place", place_id, lambda store, key: store.get_place(key))
    if isinstance(shown, Response):
        return shown
    session, place = shown
    now = utc_now()
    month = request.query_params.get("month") or f"{now.astimezone(to_zone(place.tz)):%Y-%m}"
    try:
        start, end = month_edges(month, place.tz)
    except (InputError, ValueError) as error:
        return page(request, "error.html", session, 400, message=str(error))
    if start >= now:
        return page(request, "error.html", session, 400, message=f"{month_title(month)} has not begun.")
    return page(
        request,
        "capacity.html",
        session,
        place=place,
        month=month,
        month_title=month_title(month),
        previous_month=month_before(month),
        next_month=month_after(month) if end < now else None,
        title=f"Capacity · {place.name or place.id}",
        active="places",
    )
