"""The places pages: the places a user may see, and one place's energy flow, power and cost.

Handlers are thin, as in ``pages``: check the session, read on a worker thread, render. A place
the user may not see is a 404 page. The place page's data routes live in ``place_data``.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from meterhub.analytics.calendar import to_zone
from meterhub.api.deps import Principal, store_of
from meterhub.model import PHASE_TOTAL, Place, utc_now
from meterhub.store.base import Store
from meterhub.web import place_data
from meterhub.web.pagekit import current_session, page, period_context, to_sign_in, visible_page
from meterhub.web.place_data import PLACE_RANGES
from meterhub.web.place_views import tariff_note

__all__ = ["PlaceRow", "place_rows", "router"]

router = APIRouter()
router.include_router(place_data.router)  # API routes, in the schema; the pages below are not


@dataclass(frozen=True)
class PlaceRow:
    """One place in the list: its name, zone, meters by role and whether a tariff prices it."""

    id: str
    name: str
    tz: str
    meters: tuple[tuple[str, str], ...]
    priced: bool


def place_rows(store: Store, principal: Principal) -> list[PlaceRow]:
    """Return the places a user may see, ordered by id."""
    return [
        PlaceRow(p.id, p.name or p.id, p.tz, tuple((m, r.value) for m, r in p.meters), tariff_note(p) is None)
        for p in store.list_places()
        if principal.can_see_place(p.id)
    ]


def _place_page_data(store: Store, place_id: str) -> tuple[Place, str]:
    """Return the place and the local day of its meters' newest reading (today while they report)."""
    place = store.get_place(place_id)
    ids = [meter_id for meter_id, _ in place.meters]
    newest = max((r.ts for r in store.latest(ids, phase=PHASE_TOTAL)), default=None) if ids else None
    when = newest if newest is not None else utc_now()
    return place, when.astimezone(to_zone(place.tz)).date().isoformat()


@router.get("/places", response_class=HTMLResponse, include_in_schema=False)
async def places(request: Request) -> Response:
    """List the places the user may see, each with its zone and meters by role."""
    session = await current_session(request)
    if session is None:
        return to_sign_in(request)
    rows = await anyio.to_thread.run_sync(place_rows, store_of(request), session.principal)
    return page(request, "places.html", session, places=rows, title="Places", active="places")


@router.get("/places/{place_id}", response_class=HTMLResponse, include_in_schema=False)
async def place_page(request: Request, place_id: str) -> Response:
    """Show one place: energy flow, stacked bars and cost of a local period, and power now."""
    shown = await visible_page(request, "place", place_id, _place_page_data, active="places")
    if isinstance(shown, Response):
        return shown
    session, (place, newest_day) = shown
    return page(
        request,
        "place.html",
        session,
        place=place,
        **period_context(request, PLACE_RANGES, newest_day),
        tariff_note=tariff_note(place),
        title=place.name or place.id,
        active="places",
    )
