"""Manage meters from the dashboard (admins only): list, add (with discovery), edit and remove.

Every change goes through :mod:`meterhub.catalog`, as ``meterhub meters`` and ``/api/v1/meters``
do, so a value is refused with the same message; the message is shown next to the field it
names, with what was typed kept. Anyone but an admin gets the 404 page on every URL here.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from meterhub import catalog
from meterhub.api.deps import store_of
from meterhub.api.websession import WebSession
from meterhub.catalog import FieldError
from meterhub.errors import ConflictError, MeterhubError, NotFoundError
from meterhub.model import Meter
from meterhub.redact import redact_text
from meterhub.status import meter_status
from meterhub.store.base import Store
from meterhub.vendors.base import Discovered
from meterhub.web.forms import FormErrors, done, form_text, is_admin, read_form
from meterhub.web.manage.meter_form import error_field, fields_of, form_values, options_from_form
from meterhub.web.pagekit import current_session, page, to_sign_in

__all__ = ["admin_session", "not_found", "router"]

router = APIRouter(include_in_schema=False)

LIST = "/manage/meters"


def not_found(request: Request, session: WebSession) -> HTMLResponse:
    """Answer the 404 page that anyone but an admin gets on a manage URL."""
    return page(request, "error.html", session, 404, message="There is no such page.")


async def admin_session(request: Request) -> WebSession | Response:
    """Return the admin's session, or the response for anyone else (sign-in, or the 404 page)."""
    session = await current_session(request)
    if session is None:
        return to_sign_in(request)
    if not is_admin(session):
        return not_found(request, session)
    return session


def _show(
    request: Request, template: str, session: WebSession, errors: FormErrors | None = None, **context: Any
) -> HTMLResponse:
    status = 400 if errors else 200
    return page(request, template, session, status, errors=errors or FormErrors(), active="manage", **context)


def _refused(errors: FormErrors, exc: MeterhubError, vendor: str) -> None:
    """Keep a domain error next to the field it names (the whole form's, else)."""
    if isinstance(exc, FieldError):
        errors.add(error_field(vendor, exc.field), str(exc))
    elif isinstance(exc, ConflictError):
        errors.add("id", str(exc))
    else:
        errors.add(None, redact_text(str(exc)))


# --- the list ----------------------------------------------------------------------------
@router.get("/manage/meters", response_class=HTMLResponse)
async def meters_page(request: Request) -> Response:
    """List every meter with its vendor, zone, interval and health."""
    session = await admin_session(request)
    if not isinstance(session, WebSession):
        return session
    rows = await anyio.to_thread.run_sync(meter_status, store_of(request))
    meters = {m.id: m for m in await anyio.to_thread.run_sync(store_of(request).list_meters)}
    return _show(request, "manage_meters.html", session, rows=rows, meters=meters, title="Meters")


# --- adding ------------------------------------------------------------------------------
def _meter_values(form: FormData) -> dict[str, str]:
    names = ("id", "vendor", "name", "phases", "tz", "interval_s", "extra")
    values = {name: form_text(form, name) for name in names}
    values.update({k: form_text(form, k) for k in form if k.startswith(("opt_", "env_"))})
    return values


def _number(errors: FormErrors, values: dict[str, str], name: str, what: str) -> int | None:
    text = values.get(name, "")
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        errors.add(name, f"{what} must be a whole number, not {text!r}")
        return None


def _add_page(
    request: Request, session: WebSession, values: dict[str, str], errors: FormErrors | None = None
) -> HTMLResponse:
    vendor = values.get("vendor", "")
    return _show(
        request,
        "manage_meter.html",
        session,
        errors,
        mode="add",
        values=values,
        vendor=vendor,
        vendors=catalog.vendor_choices(),
        option_fields=fields_of(vendor),
        title="Add a meter",
    )


@router.get("/manage/meters/new", response_class=HTMLResponse)
async def add_form(request: Request) -> Response:
    """Show the form for a new meter: its vendor first, then that vendor's connection options."""
    session = await admin_session(request)
    if not isinstance(session, WebSession):
        return session
    vendor = request.query_params.get("vendor", "").strip().lower()
    values = {"vendor": vendor if vendor in catalog.vendor_choices() else "", "phases": "1", "tz": "UTC"}
    return _add_page(request, session, values)


@router.post("/manage/meters/new", response_class=HTMLResponse)
async def add(request: Request) -> Response:
    """Add the meter the form describes, without discovery."""
    session = await admin_session(request)
    if not isinstance(session, WebSession):
        return session
    form, errors = await read_form(request, session)
    values = _meter_values(form)
    vendor = values["vendor"].lower()
    options = options_from_form(vendor, form, errors)
    phases = _number(errors, values, "phases", "phases")
    interval_s = _number(errors, values, "interval_s", "the interval")
    if errors:
        return _add_page(request, session, values, errors)
    try:
        meter = await anyio.to_thread.run_sync(
            lambda: catalog.add_meter(
                store_of(request),
                values["id"],
                vendor,
                phases=phases or 1,
                tz=values["tz"] or "UTC",
                interval_s=interval_s,
                name=values["name"],
                options=options,
            )
        )
    except MeterhubError as exc:
        _refused(errors, exc, vendor)
        return _add_page(request, session, values, errors)
    return done(LIST, f"Added meter {meter.id} ({meter.vendor}, every {meter.interval_s} s).")


# --- discovery ---------------------------------------------------------------------------
async def _discover(store: Store, vendor: str, options: dict[str, str], tz: str) -> list[Discovered]:
    return await catalog.discover_meters(store, vendor, options, tz)


@router.post("/manage/meters/discover", response_class=HTMLResponse)
async def discover(request: Request) -> Response:
    """Ask the vendor what the account or device holds, and offer each meter found to add."""
    session = await admin_session(request)
    if not isinstance(session, WebSession):
        return session
    form, errors = await read_form(request, session)
    values = _meter_values(form)
    vendor = values["vendor"].lower()
    options = options_from_form(vendor, form, errors)
    if errors:
        return _add_page(request, session, values, errors)
    try:
        found = await _discover(store_of(request), vendor, options, values["tz"] or "UTC")
    except MeterhubError as exc:
        _refused(errors, exc, vendor)
        return _add_page(request, session, values, errors)
    known = {m.id for m in await anyio.to_thread.run_sync(store_of(request).list_meters)}
    return _show(
        request,
        "manage_discover.html",
        session,
        values=values,
        vendor=vendor,
        found=found,
        known=known,
        option_fields=fields_of(vendor),
        title="Meters found",
    )


@router.post("/manage/meters/discover/add", response_class=HTMLResponse)
async def add_found(request: Request) -> Response:
    """Add the meters picked from a discovery (asked again, so only what the vendor holds)."""
    session = await admin_session(request)
    if not isinstance(session, WebSession):
        return session
    form, errors = await read_form(request, session)
    values = _meter_values(form)
    vendor = values["vendor"].lower()
    options = options_from_form(vendor, form, errors)
    picked = {str(v) for v in form.getlist("pick")}
    if not picked and not errors:
        errors.add(None, "Pick at least one meter to add.")
    if errors:
        return _add_page(request, session, values, errors)
    store = store_of(request)
    try:
        found = [
            d
            for d in await _discover(store, vendor, options, values["tz"] or "UTC")
            if d.suggested_id in picked
        ]
        outcomes = await anyio.to_thread.run_sync(catalog.add_discovered, store, found)
    except MeterhubError as exc:
        _refused(errors, exc, vendor)
        return _add_page(request, session, values, errors)
    added = [o.meter_id for o in outcomes if o.added]
    kept = [o.line for o in outcomes if not o.added]
    message = f"Added {len(added)} meter(s): {', '.join(added) or 'none'}." + (
        f" {'; '.join(kept)}." if kept else ""
    )
    return done(LIST, message)


# --- editing -----------------------------------------------------------------------------
def _edit_page(
    request: Request,
    session: WebSession,
    meter: Meter,
    values: dict[str, str],
    errors: FormErrors | None = None,
) -> HTMLResponse:
    return _show(
        request,
        "manage_meter.html",
        session,
        errors,
        mode="edit",
        meter=meter,
        values=values,
        vendor=meter.vendor,
        option_fields=fields_of(meter.vendor),
        title=f"Edit {meter.id}",
    )


async def _meter(request: Request, meter_id: str) -> Meter | None:
    try:
        return await anyio.to_thread.run_sync(store_of(request).get_meter, meter_id)
    except NotFoundError:
        return None


@router.get("/manage/meters/{meter_id}/edit", response_class=HTMLResponse)
async def edit_form(request: Request, meter_id: str) -> Response:
    """Show a meter's settings to change; secret options only as their variable's NAME."""
    session = await admin_session(request)
    if not isinstance(session, WebSession):
        return session
    meter = await _meter(request, meter_id)
    if meter is None:
        return not_found(request, session)
    values = {
        "name": meter.name,
        "phases": str(meter.phases),
        "tz": meter.tz,
        "interval_s": str(meter.interval_s),
        **form_values(meter.vendor, meter.options),
    }
    return _edit_page(request, session, meter, values)


@router.post("/manage/meters/{meter_id}/edit", response_class=HTMLResponse)
async def edit(request: Request, meter_id: str) -> Response:
    """Change a meter as the API's PATCH does; options left empty are removed."""
    session = await admin_session(request)
    if not isinstance(session, WebSession):
        return session
    meter = await _meter(request, meter_id)
    if meter is None:
        return not_found(request, session)
    form, errors = await read_form(request, session)
    values = _meter_values(form)
    options: dict[str, str | None] = dict(options_from_form(meter.vendor, form, errors))
    options.update({key: None for key in meter.options if key not in options})
    phases = _number(errors, values, "phases", "phases")
    interval_s = _number(errors, values, "interval_s", "the interval")
    if errors:
        return _edit_page(request, session, meter, values, errors)
    try:
        updated = await anyio.to_thread.run_sync(
            lambda: catalog.update_meter(
                store_of(request),
                meter_id,
                phases=phases,
                tz=values["tz"],
                interval_s=interval_s,
                name=values["name"],
                options=options,
            )
        )
    except MeterhubError as exc:
        _refused(errors, exc, meter.vendor)
        return _edit_page(request, session, meter, values, errors)
    return done(LIST, f"Saved meter {updated.id}.")


# --- removing ----------------------------------------------------------------------------
@router.get("/manage/meters/{meter_id}/remove", response_class=HTMLResponse)
async def remove_form(request: Request, meter_id: str) -> Response:
    """Ask to confirm removing a meter, saying that its data goes with it."""
    session = await admin_session(request)
    if not isinstance(session, WebSession):
        return session
    meter = await _meter(request, meter_id)
    if meter is None:
        return not_found(request, session)
    return _show(request, "manage_meter_remove.html", session, meter=meter, title=f"Remove {meter.id}")


@router.post("/manage/meters/{meter_id}/remove", response_class=HTMLResponse)
async def remove(request: Request, meter_id: str) -> Response:
    """Remove a meter and all its data."""
    session = await admin_session(request)
    if not isinstance(session, WebSession):
        return session
    meter = await _meter(request, meter_id)
    if meter is None:
        return not_found(request, session)
    form, errors = await read_form(request, session)
    if form_text(form, "confirm") != "yes":
        errors.add("confirm", "Tick the box to confirm that the meter's data is deleted.")
    if errors:
        return _show(
            request, "manage_meter_remove.html", session, errors, meter=meter, title=f"Remove {meter.id}"
        )
    removed = await anyio.to_thread.run_sync(catalog.remove_meter, store_of(request), meter_id)
    return done(LIST, f"Removed meter {meter_id} and its {removed} readings.")
