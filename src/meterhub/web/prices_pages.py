"""The prices page and its data under ``/api/v1/dashboard``: a price series over two local days.

The page renders the choices (series, day, place) as a plain GET form; prices.js draws the
step chart, the cheapest and dearest hours, and a chosen place's cost per hour from the data
route. With no series stored the page says how to import one. Each day-ahead price feed a hub
runs on the store is shown by its series with its state: who fetches it, the last success and
what it stored, the newest slot and whether tomorrow is stored, the last error and the next try.
A place the user may not see is a 404, as in the API.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from meterhub.api.deps import Principal, PrincipalDep, StoreDep, store_of
from meterhub.api.problems import PROBLEM_RESPONSES, ApiProblem
from meterhub.api.routes._params import visible_place
from meterhub.errors import InputError
from meterhub.model import Place, utc_now
from meterhub.store.base import Store
from meterhub.web.pagekit import page, visible_page
from meterhub.web.prices_views import DEFAULT_PRICE_ZONE, feed_cards, prices_view, series_choices

__all__ = ["router"]

router = APIRouter()

_DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"cannot read day {text!r}; use YYYY-MM-DD like 2026-10-25") from None


@router.get(
    "/api/v1/dashboard/prices",
    tags=["dashboard"],
    responses=PROBLEM_RESPONSES,
    summary="A price series over two local days, drawn",
)
def prices_data(
    store: StoreDep,
    principal: PrincipalDep,
    series: Annotated[
        str | None, Query(max_length=64, description="The series (default: the first).")
    ] = None,
    day: Annotated[
        str | None, Query(pattern=_DAY_PATTERN, description="The first local day (default: today).")
    ] = None,
    place: Annotated[
        str | None, Query(max_length=64, description="A place whose cost per hour is drawn, in its zone.")
    ] = None,
) -> Response:
    """Answer a series' slots and hourly prices for a local day and the next, the cheapest and
    dearest hours of each, and with ``place`` that place's cost per hour over the same days.

    Days are local to the place's zone, else Europe/Oslo. ``series`` lists every stored series.
    """
    chosen_place = visible_place(store, principal.can_see_place, place) if place else None
    if series and not any(c["series"] == series for c in series_choices(store)):
        raise ApiProblem(404, "Unknown price series", f"no price series {series!r} (see GET /api/v1/prices)")
    return _json(prices_view(store, series or None, _day(day), chosen_place, utc_now()))


def _choices(
    store: Store, principal: Principal
) -> tuple[list[dict[str, Any]], list[Place], list[dict[str, Any]]]:
    places = [p for p in store.list_places() if principal.can_see_place(p.id)]
    return series_choices(store), places, feed_cards(store, utc_now())


@router.get("/prices", response_class=HTMLResponse, include_in_schema=False)
async def prices_page(request: Request) -> Response:
    """Show a price series over a local day and the next, with a place's cost beside it."""
    place_id = request.query_params.get("place", "")
    shown = await visible_page(
        request, "place", place_id, lambda store, key: store.get_place(key) if key else None
    )
    if isinstance(shown, Response):
        return shown
    session, place = shown
    store = store_of(request)
    series, places, feeds = await anyio.to_thread.run_sync(_choices, store, session.principal)
    feed_states: dict[str, list[str]] = {}
    for feed in feeds:
        feed_states.setdefault(feed["series"], []).append(feed["state"])
    chosen = request.query_params.get("series", "") or (series[0]["series"] if series else "")
    if series and not any(s["series"] == chosen for s in series):
        return page(request, "error.html", session, 404, message=f"There is no price series {chosen!r}.")
    day = request.query_params.get("day", "")
    try:
        _day(day)
    except InputError as error:
        return page(request, "error.html", session, 400, message=str(error))
    return page(
        request,
        "prices.html",
        session,
        series=series,
        chosen=chosen,
        day=day,
        places=places,
        place=place,
        feeds=feeds,
        feed_states=feed_states,
        tz=place.tz if place is not None else DEFAULT_PRICE_ZONE,
        title="Prices",
    )
