"""The ``/manage`` landing page, and what every manage page shares: the admin check, rendering, forms.

Anyone but an admin gets the 404 page on every manage URL, as the API answers objects a caller
may not see: the pages do not tell that they exist.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from meterhub.api.deps import store_of
from meterhub.api.websession import WebSession
from meterhub.errors import FieldError, MeterhubError, NotFoundError
from meterhub.hubzone import ZoneChoice, default_zone, set_default_zone
from meterhub.redact import redact_text
from meterhub.status import meter_status
from meterhub.store.base import Store
from meterhub.web.forms import FormErrors, done, form_text, is_admin, read_form
from meterhub.web.pagekit import current_session, page, to_sign_in

__all__ = [
    "Area",
    "Refused",
    "admin_only",
    "admin_page",
    "blame",
    "hidden",
    "read_values",
    "refuse",
    "router",
    "run",
    "show",
    "stored_page",
    "submit",
]

router = APIRouter(include_in_schema=False)

_P = ParamSpec("_P")
_T = TypeVar("_T")


def hidden(request: Request, session: WebSession) -> HTMLResponse:
    """Answer the 404 page anyone but an admin gets on a manage URL."""
    return page(request, "error.html", session, 404, message="There is no such page.")


async def admin_only(request: Request) -> WebSession | Response:
    """Return the admin's session, or what anyone else gets: the sign-in form, or the 404 page."""
    session = await current_session(request)
    if session is None:
        return to_sign_in(request)
    if not is_admin(session):
        return hidden(request, session)
    return session


def admin_page(
    handler: Callable[Concatenate[Request, WebSession, _P], Awaitable[Response]],
) -> Callable[..., Awaitable[Response]]:
    """Run a manage page's handler with the admin's session; anyone else gets what :func:`admin_only` answers.

    The route sees the handler's parameters but the session, so its path and query parameters stay.
    """

    async def for_admin(request: Request, *args: _P.args, **kwargs: _P.kwargs) -> Response:
        session = await admin_only(request)
        if not isinstance(session, WebSession):
            return session
        return await handler(request, session, *args, **kwargs)

    functools.update_wrapper(for_admin, handler)
    signature = inspect.signature(handler, eval_str=True)
    request, _, *rest = signature.parameters.values()
    for_admin.__signature__ = signature.replace(parameters=[request, *rest])  # type: ignore[attr-defined]
    return for_admin


async def run(call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Run a store or domain call in a worker thread."""
    return await anyio.to_thread.run_sync(functools.partial(call, *args, **kwargs))


async def read_values(
    request: Request, session: WebSession, names: Iterable[str]
) -> tuple[FormData, FormErrors, dict[str, str]]:
    """Read a posted form (its CSRF check's error included) and the text of the fields ``names``."""
    form, errors = await read_form(request, session)
    return form, errors, {name: form_text(form, name) for name in names}


def show(
    request: Request,
    template: str,
    session: WebSession,
    errors: FormErrors | None = None,
    status_code: int | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a manage page; with errors it answers 400 (or ``status_code``) and shows them."""
    status = status_code or (400 if errors else 200)
    return page(request, template, session, status, errors=errors or FormErrors(), active="manage", **context)


async def stored_page(
    request: Request,
    session: WebSession,
    template: str,
    read: Callable[[Store], dict[str, Any]],
    errors: FormErrors | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a manage page with what ``read`` finds in the store, as :func:`show` does.

    What ``read`` does not find (a NotFoundError) gets the 404 page.
    """
    try:
        found = await run(read, store_of(request))
    except NotFoundError:
        return hidden(request, session)
    return show(request, template, session, errors, **context, **found)


def blame(errors: FormErrors, exc: MeterhubError, field: str | None = None) -> None:
    """Keep a domain error by the field it names (a FieldError's), else ``field`` or the whole form."""
    errors.add(exc.field if isinstance(exc, FieldError) else field, redact_text(str(exc)))


class Refused(Exception):
    """A form's values were refused field by field."""

    def __init__(self, errors: FormErrors) -> None:
        super().__init__("refused")
        self.errors = errors


def refuse(field: str, message: str) -> Refused:
    """Refuse a form for one field's sake."""
    errors = FormErrors()
    errors.add(field, message)
    return Refused(errors)


async def _never(_: MeterhubError) -> bool:
    return False


async def submit(
    request: Request,
    session: WebSession,
    fields: Iterable[str],
    change: Callable[[Store, dict[str, str]], _T],
    *,
    again: Callable[[FormErrors, dict[str, str]], Awaitable[Response]],
    then: Callable[[_T], Awaitable[Response] | Response],
    field: Callable[[MeterhubError], str | None],
    gone: Callable[[MeterhubError], Awaitable[bool]] = _never,
    secrets: Iterable[str] = (),
) -> Response:
    """Read a form, make its change, and answer ``then(result)``; or show the form ``again`` with its errors.

    ``change`` gets the store and the fields' text (``secrets`` unstripped). A :class:`Refused`
    keeps its errors; another domain error is kept by the field it names, else by ``field(exc)``,
    unless ``gone(exc)`` says the page's object is gone: then the 404 page answers.
    """
    form, errors, typed = await read_values(request, session, fields)
    unstripped = {name: str(form.get(name, "")) for name in secrets}
    if not errors:
        try:
            result = await run(change, store_of(request), {**typed, **unstripped})
        except Refused as refused:
            errors = refused.errors
        except MeterhubError as exc:
            if await gone(exc):
                return hidden(request, session)
            blame(errors, exc, field(exc))
    if errors:
        return await again(errors, typed)
    answer = then(result)
    return answer if isinstance(answer, Response) else await answer


@dataclass(frozen=True, slots=True)
class Area:
    """One thing to manage, with how many there are."""

    title: str
    path: str
    count: int
    what: str


def _areas(store: Store) -> list[Area]:
    keys = store.list_api_keys()
    backfills = sum(1 for row in meter_status(store) if row.backfill is not None)
    return [
        Area("Meters", "/manage/meters", len(store.list_meters()), "meters read by the hub"),
        Area("Places", "/manage/places", len(store.list_places()), "places, their meters and tariffs"),
        Area("Users", "/manage/users", len(store.list_users()), "users, roles and shares"),
        Area("Keys", "/manage/keys", sum(not k.revoked for k in keys), "API keys in use"),
        Area("Backfill", "/manage/backfill", backfills, "meters with a backfill on record"),
    ]


async def _home(
    request: Request,
    session: WebSession,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
) -> Response:
    store = store_of(request)
    areas = await run(_areas, store)
    zone = await run(default_zone, store)
    return show(
        request,
        "manage_home.html",
        session,
        areas=areas,
        zone=zone,
        values=values or {"default_tz": zone.tz},
        errors=errors or FormErrors(),
        title="Manage",
    )


@router.get("/manage", response_class=HTMLResponse)
@admin_page
async def manage_home(request: Request, session: WebSession) -> Response:
    """Link to every area an admin manages, each with its count, and show the hub's default zone."""
    return await _home(request, session)


def _set_zone(store: Store, values: dict[str, str]) -> ZoneChoice:
    try:
        return set_default_zone(store, values["default_tz"] or None)
    except FieldError as exc:
        raise refuse("default_tz", str(exc)) from exc


@router.post("/manage/settings", response_class=HTMLResponse)
@admin_page
async def change_settings(request: Request, session: WebSession) -> Response:
    """Set the hub's default zone (empty: forget it, so the next rule applies)."""
    return await submit(
        request,
        session,
        ("default_tz",),
        _set_zone,
        again=lambda errors, values: _home(request, session, values, errors),
        then=lambda zone: done("/manage", f"The default zone is {zone.tz} ({zone.source})."),
        field=lambda exc: "default_tz",
    )
