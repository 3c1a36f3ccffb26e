"""Manage places from the dashboard (admins only): add, edit, remove, meters by role, and tariffs.

Every change goes through :mod:`meterhub.placebook`, as ``meterhub places`` and
``/api/v1/places`` do, so the same input is refused with the same message; it is shown next to
the field it names, with what was typed kept. A change that worked redirects with a notice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from meterhub import placebook
from meterhub.api.deps import store_of
from meterhub.api.websession import WebSession
from meterhub.errors import ConflictError, MeterhubError, NotFoundError, UnknownPlaceError
from meterhub.model import Role
from meterhub.store.base import Store
from meterhub.web.forms import FormErrors, done, read_form
from meterhub.web.manage.home import admin_page, hidden, run, show, stored_page, submit
from meterhub.web.manage.tariff_form import ROLE_WORDS, TARIFF_GROUPS, tariff_values

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

LIST = "/manage/places"


def _listing(store: Store) -> dict[str, Any]:
    return {"places": store.list_places(), "meter_count": len(store.list_meters())}


async def _list_page(
    request: Request,
    session: WebSession,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
) -> HTMLResponse:
    values = values or {"tz": "Europe/Oslo"}
    return await stored_page(
        request, session, "manage_places.html", _listing, errors, values=values, title="Places"
    )


@router.get("/manage/places", response_class=HTMLResponse)
@admin_page
async def places_page(request: Request, session: WebSession) -> Response:
    """List places with their zones, meters and whether they have a tariff; a form adds one."""
    return await _list_page(request, session)


@router.post("/manage/places", response_class=HTMLResponse)
@admin_page
async def add_place(request: Request, session: WebSession) -> Response:
    """Add a place with an id, a name and a time zone."""
    return await submit(
        request,
        session,
        ("id", "name", "tz"),
        lambda store, v: placebook.add_place(store, v["id"], v["tz"], v["name"]),
        again=lambda errors, values: _list_page(request, session, values, errors),
        then=lambda place: done(f"{LIST}/{place.id}", f"Place {place.id} added."),
        field=lambda exc: "id" if isinstance(exc, ConflictError) else None,
    )


# --- one place ----------------------------------------------------------------------------
def _place_context(store: Store, place_id: str, typed: dict[str, str]) -> dict[str, Any]:
    place = store.get_place(place_id)
    inside = {meter for meter, _ in place.meters}
    meters = store.list_meters()
    tariff = tariff_values(place.tariff)
    return {
        "place": place,
        "names": {m.id: m.name for m in meters},
        "free_meters": [m for m in meters if m.id not in inside],
        "tariff": tariff,
        "values": {"name": place.name, "tz": place.tz, **tariff, **typed},
    }


async def _place_page(
    request: Request,
    session: WebSession,
    place_id: str,
    errors: FormErrors | None = None,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    """Show a place's forms; ``typed`` overrides what the failed form shows."""
    read = functools.partial(_place_context, place_id=place_id, typed=typed or {})
    return await stored_page(
        request,
        session,
        "manage_place.html",
        read,
        errors,
        groups=TARIFF_GROUPS,
        roles=ROLE_WORDS,
        title=f"Place {place_id}",
    )


@router.get("/manage/places/{place_id}", response_class=HTMLResponse)
@admin_page
async def place_page(request: Request, session: WebSession, place_id: str) -> Response:
    """Show a place's name and zone, its meters by role, its tariff form, and a way to remove it."""
    return await _place_page(request, session, place_id)


async def _change(
    request: Request,
    session: WebSession,
    place_id: str,
    fields: tuple[str, ...],
    change: Callable[[Store, dict[str, str]], object],
    notice: str,
) -> Response:
    """Read a form of a place's page, make the change, and redirect; or show the page with errors."""

    async def gone(exc: MeterhubError) -> bool:
        if isinstance(exc, UnknownPlaceError) and exc.place_id != place_id:
            raise exc
        return isinstance(exc, UnknownPlaceError)

    return await submit(
        request,
        session,
        fields,
        change,
        again=lambda errors, typed: _place_page(request, session, place_id, errors, typed),
        then=lambda _: done(f"{LIST}/{place_id}", notice),
        field=lambda _: fields[0],
        gone=gone,
    )


@router.post("/manage/places/{place_id}", response_class=HTMLResponse)
@admin_page
async def edit_place(request: Request, session: WebSession, place_id: str) -> Response:
    """Change a place's name and time zone."""
    return await _change(
        request,
        session,
        place_id,
        ("name", "tz"),
        lambda store, v: placebook.change_place(store, place_id, name=v["name"], tz=v["tz"]),
        f"Place {place_id} changed.",
    )


@router.post("/manage/places/{place_id}/meters", response_class=HTMLResponse)
@admin_page
async def attach_meter(request: Request, session: WebSession, place_id: str) -> Response:
    """Put a meter in the place with a role (a meter already there takes the new role)."""

    def attach(store: Store, v: dict[str, str]) -> object:
        if v["role"] not in {r.value for r in Role}:
            raise placebook.FieldError("role", f"choose a role: {', '.join(r.value for r in Role)}")
        if not v["meter"]:
            raise placebook.FieldError("meter", "choose a meter")
        return placebook.attach_meter(store, place_id, v["meter"], Role(v["role"]))

    return await _change(
        request, session, place_id, ("meter", "role"), attach, f"Meter attached to {place_id}."
    )


@router.post("/manage/places/{place_id}/meters/{meter_id}/detach", response_class=HTMLResponse)
@admin_page
async def detach_meter(request: Request, session: WebSession, place_id: str, meter_id: str) -> Response:
    """Take a meter out of the place; the meter and its data stay."""
    return await _change(
        request,
        session,
        place_id,
        ("detach",),
        lambda store, _: placebook.detach_meter(store, place_id, meter_id),
        f"Meter {meter_id} taken out of {place_id}.",
    )


@router.post("/manage/places/{place_id}/tariff", response_class=HTMLResponse)
@admin_page
async def set_tariff(request: Request, session: WebSession, place_id: str) -> Response:
    """Replace the place's tariff with what the form says (every field empty clears it)."""
    names = tuple(field.name for _, _, fields in TARIFF_GROUPS for field in fields)
    return await _change(
        request,
        session,
        place_id,
        names,
        lambda store, v: placebook.set_tariff(store, place_id, placebook.tariff_from_text(v)),
        f"Tariff of {place_id} saved.",
    )


# --- removing -----------------------------------------------------------------------------
@router.get("/manage/places/{place_id}/remove", response_class=HTMLResponse)
@admin_page
async def remove_form(request: Request, session: WebSession, place_id: str) -> Response:
    """Ask whether to remove the place."""
    try:
        place = await run(store_of(request).get_place, place_id)
    except NotFoundError:
        return hidden(request, session)
    return show(
        request, "manage_place.html", session, place=place, confirm_remove=True, title=f"Remove {place_id}"
    )


@router.post("/manage/places/{place_id}/remove", response_class=HTMLResponse)
@admin_page
async def remove_place(request: Request, session: WebSession, place_id: str) -> Response:
    """Remove the place; its meters and their data stay."""
    _, errors = await read_form(request, session)
    if errors:
        return await _place_page(request, session, place_id, errors)
    try:
        await run(placebook.remove_place, store_of(request), place_id)
    except NotFoundError:
        return hidden(request, session)
    return done(LIST, f"Place {place_id} removed; its meters and their data stay.")
