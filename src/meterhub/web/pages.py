"""The dashboard's pages: sign-in and sign-out, the overview, a meter, and collection health.

Handlers are thin: they check the session, read through the domain functions on a worker
thread, and render a template. A browser that is not signed in is sent to the sign-in page;
a meter the user may not see is a 404 page, as it is in the API.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from meterhub.analytics.calendar import to_zone
from meterhub.api.deps import COOKIE, CSRF_FIELD, Principal, get_web_sessions, store_of
from meterhub.api.problems import ApiProblem
from meterhub.api.websession import same_token
from meterhub.model import PHASE_TOTAL, Meter, utc_now
from meterhub.status import MeterStatus, meter_status
from meterhub.store.base import Store
from meterhub.web.pagekit import (
    current_session,
    page,
    period_context,
    safe_next,
    secure_headers,
    to_sign_in,
    visible_page,
)
from meterhub.web.periods import RANGES
from meterhub.web.views import Card, card_of, phase_rows

__all__ = ["LOGIN_CSRF_COOKIE", "cards_of", "router"]

router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "meterhub_login_csrf"
"""Before sign-in there is no session: the sign-in form's token is checked against this cookie."""


def _visible_meters(store: Store, principal: Principal) -> list[Meter]:
    return [m for m in store.list_meters() if principal.can_see_meter(m.id)]


def cards_of(store: Store, principal: Principal, now: datetime) -> list[Card]:
    """Return the overview cards of the meters a user may see."""
    meters = _visible_meters(store, principal)
    ids = [m.id for m in meters]
    latest = {r.meter: r for r in store.latest(ids, phase=PHASE_TOTAL)} if ids else {}
    health = store.health(ids) if ids else {}
    return [card_of(store, m, latest.get(m.id), health.get(m.id), now) for m in meters]


def _set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def _login_page(request: Request, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html",
        None,
        status_code=status_code,
        login_csrf=token,
        next=safe_next(request.query_params.get("next")),
        error=error,
    )
    _set_cookie(response, request, LOGIN_CSRF_COOKIE, token, 3600)
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    """Show the sign-in form (or go on, when already signed in)."""
    if await current_session(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return _login_page(request)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Check a sign-in; open a session and go on, or show the form again with what went wrong."""
    form = await request.form()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    if not same_token(
        str(form.get(CSRF_FIELD, "")) or None, request.cookies.get(LOGIN_CSRF_COOKIE, "") or "-"
    ):
        return _login_page(request, "The form expired; please sign in again.", 400)
    if not username or not password:
        return _login_page(request, "Enter your user name and password.", 400)
    address = request.client.host if request.client else "unknown"
    sessions = get_web_sessions(request)
    try:
        value, _ = await anyio.to_thread.run_sync(sessions.open, username, password, address)
    except ApiProblem as problem:
        message = "Wrong user name or password." if problem.status == 400 else f"{problem.detail}."
        return _login_page(request, message, problem.status)
    response = RedirectResponse(safe_next(str(form.get("next", "/"))), status_code=303)
    _set_cookie(response, request, COOKIE, value, None)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return secure_headers(response)


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (the form carries its CSRF token) and go to the sign-in page."""
    session = await current_session(request)
    response = RedirectResponse("/login", status_code=303)
    if session is not None:
        form = await request.form()
        if not same_token(str(form.get(CSRF_FIELD, "")) or None, session.csrf):
            return page(
                request, "error.html", session, 400, message="The form expired; reload and try again."
            )
        await anyio.to_thread.run_sync(get_web_sessions(request).close, request.cookies[COOKIE])
    response.delete_cookie(COOKIE, path="/")
    return secure_headers(response)


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request) -> Response:
    """Show every meter the user may see as a card, updated live."""
    session = await current_session(request)
    if session is None:
        return to_sign_in(request)
    cards = await anyio.to_thread.run_sync(cards_of, store_of(request), session.principal, utc_now())
    return page(request, "overview.html", session, cards=cards, title="Overview")


def _meter_page_data(store: Store, meter_id: str) -> tuple[Meter, list[dict[str, Any]], str]:
    """Return the meter, its phases now, and the local day its newest reading is from."""
    meter = store.get_meter(meter_id)
    latest = store.latest([meter_id], phase=None)
    newest = max((r.ts for r in latest), default=None)
    day = "" if newest is None else newest.astimezone(to_zone(meter.tz)).date().isoformat()
    return meter, phase_rows(latest, meter.phases), day


@router.get("/meters/{meter_id}", response_class=HTMLResponse)
async def meter_page(request: Request, meter_id: str) -> Response:
    """Show one meter: its power and energy over a chosen local period, and its phases now."""
    shown = await visible_page(request, "meter", meter_id, _meter_page_data)
    if isinstance(shown, Response):
        return shown
    session, (meter, phases, newest_day) = shown
    return page(
        request,
        "meter.html",
        session,
        meter=meter,
        phases=phases,
        title=meter.name or meter.id,
        **period_context(request, RANGES, newest_day),
    )


def _status_rows(store: Store, principal: Principal) -> list[MeterStatus]:
    return meter_status(store, [m.id for m in _visible_meters(store, principal)])


@router.get("/health", response_class=HTMLResponse)
async def health(request: Request) -> Response:
    """Show how collecting each visible meter goes: cadence, failures, quota left, backfill."""
    session = await current_session(request)
    if session is None:
        return to_sign_in(request)
    rows = await anyio.to_thread.run_sync(_status_rows, store_of(request), session.principal)
    now = utc_now()
    return page(
        request, "health.html", session, rows=rows, title="Health", now_text=f"{now:%Y-%m-%d %H:%M:%S} UTC"
    )
