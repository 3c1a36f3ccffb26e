"""What every dashboard page shares: templates, the signed-in session, safe headers, redirects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import anyio.to_thread
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from meterhub import __version__
from meterhub.api.deps import COOKIE, Principal, get_web_sessions, store_of
from meterhub.api.websession import WebSession
from meterhub.errors import NotFoundError, UnknownMeterError, UnknownPlaceError
from meterhub.store.base import Store
from meterhub.web.formatting import duration, local, when

__all__ = [
    "CSP",
    "TEMPLATES",
    "current_session",
    "page",
    "period_context",
    "safe_next",
    "secure_headers",
    "to_sign_in",
    "visible_page",
]

T = TypeVar("T")

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
TEMPLATES.env.globals.update(version=__version__, duration=duration, when=when, local=local)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
"""No inline or foreign scripts; Plotly sets inline styles, so styles may be inline."""


def secure_headers(response: Response) -> Response:
    """Set the headers every page carries: CSP, no caching of private data, no framing."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    return response


async def current_session(request: Request) -> WebSession | None:
    """Return the browser's live session, or None when it is not signed in."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    sessions = get_web_sessions(request)
    return sessions.cached(cookie) or await anyio.to_thread.run_sync(sessions.check, cookie)


def safe_next(target: str | None) -> str:
    """Return a local path to go to after signing in; anything else becomes the overview."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def to_sign_in(request: Request) -> RedirectResponse:
    """Send the browser to the sign-in page, coming back here afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(here, safe='')}", status_code=303)


def page(
    request: Request, template: str, session: WebSession | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render a page for the session (None on the sign-in page) with the safe headers."""
    principal = session.principal if session is not None else None
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "principal": principal,
            "csrf": session.csrf if session is not None else "",
            "is_admin": principal is not None and principal.role.value == "admin",
            "can_write": principal is not None and principal.role.value != "viewer",
            "status_code": status_code,
            "notice": request.query_params.get("done", "")[:200],
            **context,
        },
        status_code=status_code,
    )
    secure_headers(response)
    return response


_OBJECTS: dict[str, tuple[Callable[[Principal, str], bool], type[NotFoundError]]] = {
    "meter": (Principal.can_see_meter, UnknownMeterError),
    "place": (Principal.can_see_place, UnknownPlaceError),
}


async def visible_page(
    request: Request,
    kind: Literal["meter", "place"],
    object_id: str,
    read: Callable[[Store, str], T],
    **context: Any,
) -> tuple[WebSession, T] | Response:
    """Return the session and ``read(store, object_id)`` (on a worker thread), or the answer instead.

    That answer is the sign-in redirect without a session, and the 404 page (with ``context``)
    when the user may not see the meter or place ``object_id`` or ``read`` finds it gone. An
    empty ``object_id``, on a page where choosing one is optional, is read without a check.
    """
    session = await current_session(request)
    if session is None:
        return to_sign_in(request)
    can_see, gone = _OBJECTS[kind]
    missing = f"There is no {kind} {object_id!r} you may see."
    if object_id and not can_see(session.principal, object_id):
        return page(request, "error.html", session, 404, message=missing, **context)
    try:
        found = await anyio.to_thread.run_sync(read, store_of(request), object_id)
    except gone:
        return page(request, "error.html", session, 404, message=missing, **context)
    return session, found


def period_context(request: Request, ranges: tuple[str, ...], newest_day: str) -> dict[str, Any]:
    """Return what templates/period_controls.html shows: the ranges, the one chosen and the anchor.

    Without an anchor a page opens on the day of its newest reading (today, while it reports).
    """
    chosen = request.query_params.get("range", "day")
    return {
        "ranges": ranges,
        "range": chosen if chosen in ranges else "day",
        "anchor": request.query_params.get("anchor") or newest_day,
    }
