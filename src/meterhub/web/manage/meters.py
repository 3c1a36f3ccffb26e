"""Manage meters from the dashboard (admins only): list, add (with discovery), edit and remove.

Every change goes through :mod:`meterhub.catalog`, as ``meterhub meters`` and ``/api/v1/meters``
do, so a value is refused with the same message; the message is shown next to the field it
names, with what was typed kept. Anyone but an admin gets the 404 page on every URL here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from meterhub import catalog
from meterhub.api.deps import store_of
from meterhub.api.websession import WebSession
from meterhub.catalog import FieldError
from meterhub.errors import ConflictError, MeterhubError, NotFoundError
from meterhub.hubzone import default_zone
from meterhub.model import Meter
from meterhub.redact import redact_text
from meterhub.status import meter_status
from meterhub.store.base import Store
from meterhub.vendors.base import Discovered
from meterhub.web.forms import FormErrors, done, form_text, read_form
from meterhub.web.manage.home import admin_page, hidden, run, show
from meterhub.web.manage.meter_form import error_field, fields_of, form_values, options_from_form

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

LIST = "/manage/meters"


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
@admin_page
async def meters_page(request: Request, session: WebSession) -> Response:
    """List every meter with its vendor, zone, interval and health."""
    rows = await run(meter_status, store_of(request))
    meters = {m.id: m for m in await run(store_of(request).list_meters)}
    return show(request, "manage_meters.html", session, rows=rows, meters=meters, title="Meters")


# --- adding ------------------------------------------------------------------------------
def _meter_values(form: FormData) -> dict[str, str]:
    names = ("id", "vendor", "name", "phases", "tz", "interval_s", "extra")
    values = {name: form_text(form, name) for name in names}
    values.update({k: form_text(form, k) for k in form if k.startswith(("opt_", "env_"))})
    return values


async def _read_meter_form(
    request: Request, session: WebSession
) -> tuple[FormData, FormErrors, dict[str, str], str, dict[str, str]]:
    """Read a form that adds meters: what was typed, the vendor and its connection options."""
    form, errors = await read_form(request, session)
    values = _meter_values(form)
    vendor = values["vendor"].lower()
    return form, errors, values, vendor, options_from_form(vendor, form, errors)


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
    return show(
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
@admin_page
async def add_form(request: Request, session: WebSession) -> Response:
    """Show the form for a new meter: its vendor first, then that vendor's connection options."""
    vendor = request.query_params.get("vendor", "").strip().lower()
    zone = (await run(default_zone, store_of(request))).tz
    values = {"vendor": vendor if vendor in catalog.vendor_choices() else "", "phases": "1", "tz": zone}
    return _add_page(request, session, values)


@router.post("/manage/meters/new", response_class=HTMLResponse)
@admin_page
async def add(request: Request, session: WebSession) -> Response:
    """Add the meter the form describes, without discovery."""
    _, errors, values, vendor, options = await _read_meter_form(request, session)
    phases = _number(errors, values, "phases", "phases")
    interval_s = _number(errors, values, "interval_s", "the interval")
    if errors:
        return _add_page(request, session, values, errors)
    try:
        meter = await run(
            catalog.add_meter,
            store_of(request),
            values["id"],
            vendor,
            phases=phases or 1,
            tz=values["tz"] or None,
            interval_s=interval_s,
            name=values["name"],
            options=options,
        )
    except MeterhubError as exc:
        _refused(errors, exc, vendor)
        return _add_page(request, session, values, errors)
    return done(LIST, f"Added meter {meter.id} ({meter.vendor}, every {meter.interval_s} s).")


# --- discovery ---------------------------------------------------------------------------
async def _discover(store: Store, vendor: str, options: dict[str, str], tz: str | None) -> list[Discovered]:
    return await catalog.discover_meters(store, vendor, options, tz)


@router.post("/manage/meters/discover", response_class=HTMLResponse)
@admin_page
async def discover(request: Request, session: WebSession) -> Response:
    """Ask the vendor what the account or device holds, and offer each meter found to add."""
    _, errors, values, vendor, options = await _read_meter_form(request, session)
    if errors:
        return _add_page(request, session, values, errors)
    try:
        found = await _discover(store_of(request), vendor, options, values["tz"] or None)
    except MeterhubError as exc:
        _refused(errors, exc, vendor)
        return _add_page(request, session, values, errors)
    known = {m.id for m in await run(store_of(request).list_meters)}
    return show(
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
@admin_page
async def add_found(request: Request, session: WebSession) -> Response:
    """Add the meters picked from a discovery (asked again, so only what the vendor holds)."""
    form, errors, values, vendor, options = await _read_meter_form(request, session)
    picked = {str(v) for v in form.getlist("pick")}
    if not picked and not errors:
        errors.add(None, "Pick at least one meter to add.")
    if errors:
        return _add_page(request, session, values, errors)
    store = store_of(request)
    try:
        found = [
            d
            for d in await _discover(store, vendor, options, values["tz"] or None)
            if d.suggested_id in picked
        ]
        outcomes = await run(catalog.add_discovered, store, found)
    except MeterhubError as exc:
        _refused(errors, exc, vendor)
        return _add_page(request, session, values, errors)
    added = [o.meter_id for o in outcomes if o.added]
    kept = [o.line for o in outcomes if not o.added and o.about == "meter"]
    placed = [o.line for o in outcomes if o.about == "place"]
    message = f"Added {len(added)} meter(s): {', '.join(added) or 'none'}." + "".join(
        f" {'; '.join(lines)}." for lines in (kept, placed) if lines
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
    return show(
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


def _meter_page(
    handler: Callable[[Request, WebSession, Meter], Awaitable[Response]],
) -> Callable[[Request, WebSession, str], Awaitable[Response]]:
    """Run a handler of one meter's page with that meter; a meter that is not there gets the 404 page."""

    async def with_meter(request: Request, session: WebSession, meter_id: str) -> Response:
        try:
            meter = await run(store_of(request).get_meter, meter_id)
        except NotFoundError:
            return hidden(request, session)
        return await handler(request, session, meter)

    with_meter.__name__ = with_meter.__qualname__ = handler.__name__
    with_meter.__doc__ = handler.__doc__
    return with_meter


@router.get("/manage/meters/{meter_id}/edit", response_class=HTMLResponse)
@admin_page
@_meter_page
async def edit_form(request: Request, session: WebSession, meter: Meter) -> Response:
    """Show a meter's settings to change; secret options only as their variable's NAME."""
    values = {
        "name": meter.name,
        "phases": str(meter.phases),
        "tz": meter.tz,
        "interval_s": str(meter.interval_s),
        **form_values(meter.vendor, meter.options),
    }
    return _edit_page(request, session, meter, values)


@router.post("/manage/meters/{meter_id}/edit", response_class=HTMLResponse)
@admin_page
@_meter_page
async def edit(request: Request, session: WebSession, meter: Meter) -> Response:
    """Change a meter as the API's PATCH does; options left empty are removed."""
    form, errors = await read_form(request, session)
    values = _meter_values(form)
    options: dict[str, str | None] = dict(options_from_form(meter.vendor, form, errors))
    options.update({key: None for key in meter.options if key not in options})
    phases = _number(errors, values, "phases", "phases")
    interval_s = _number(errors, values, "interval_s", "the interval")
    if errors:
        return _edit_page(request, session, meter, values, errors)
    try:
        updated = await run(
            catalog.update_meter,
            store_of(request),
            meter.id,
            phases=phases,
            tz=values["tz"],
            interval_s=interval_s,
            name=values["name"],
            options=options,
        )
    except MeterhubError as exc:
        _refused(errors, exc, meter.vendor)
        return _edit_page(request, session, meter, values, errors)
    return done(LIST, f"Saved meter {updated.id}.")


# --- removing ----------------------------------------------------------------------------
@router.get("/manage/meters/{meter_id}/remove", response_class=HTMLResponse)
@admin_page
@_meter_page
async def remove_form(request: Request, session: WebSession, meter: Meter) -> Response:
    """Ask to confirm removing a meter, saying that its data goes with it."""
    return show(request, "manage_meter_remove.html", session, meter=meter, title=f"Remove {meter.id}")


@router.post("/manage/meters/{meter_id}/remove", response_class=HTMLResponse)
@admin_page
@_meter_page
async def remove(request: Request, session: WebSession, meter: Meter) -> Response:
    """Remove a meter and all its data."""
    form, errors = await read_form(request, session)
    if form_text(form, "confirm") != "yes":
        errors.add("confirm", "Tick the box to confirm that the meter's data is deleted.")
    if errors:
        return show(
            request, "manage_meter_remove.html", session, errors, meter=meter, title=f"Remove {meter.id}"
        )
    removed = await run(catalog.remove_meter, store_of(request), meter.id)
    return done(LIST, f"Removed meter {meter.id} and its {removed} readings.")
