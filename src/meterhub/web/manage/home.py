"""The ``/manage`` landing page, and the admin check every manage page of places, users and keys makes.

Anyone but an admin gets the 404 page on every manage URL, as the API answers objects a caller
may not see: the pages do not tell that they exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from meterhub.api.deps import store_of
from meterhub.api.websession import WebSession
from meterhub.errors import FieldError, MeterhubError
from meterhub.redact import redact_text
from meterhub.status import meter_status
from meterhub.store.base import Store
from meterhub.web.forms import FormErrors, is_admin
from meterhub.web.pagekit import current_session, page, to_sign_in

__all__ = ["Area", "admin_only", "blame", "hidden", "router", "show"]

router = APIRouter(include_in_schema=False)


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


def blame(errors: FormErrors, exc: MeterhubError, field: str | None = None) -> None:
    """Keep a domain error by the field it names (a FieldError's), else ``field`` or the whole form."""
    errors.add(exc.field if isinstance(exc, FieldError) else field, redact_text(str(exc)))


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


@router.get("/manage", response_class=HTMLResponse)
async def manage_home(request: Request) -> Response:
    """Link to every area an admin manages, each with its count."""
    session = await admin_only(request)
    if not isinstance(session, WebSession):
        return session
    areas = await anyio.to_thread.run_sync(_areas, store_of(request))
    return show(request, "manage_home.html", session, areas=areas, title="Manage")
