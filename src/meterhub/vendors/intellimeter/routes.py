"""The routes of the Intellimeter API document, one small handler per (path, method)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from meterhub.errors import InputError, VendorAuthError

from .accounts import account_info, public_user
from .payloads import point_info
from .protocol import SESSION_COOKIE, Call, Handler, is_true, respond

__all__ = ["ROUTES"]

_T = TypeVar("_T")
_EMPTY: dict[str, Any] = {}
_PNG_MEDIA_TYPE = "image/png"


async def _in_thread(function: Callable[..., _T], *args: Any) -> _T:
    return await run_in_threadpool(function, *args)


def _xml_flag(call: Call) -> bool | None:
    return is_true(call.params["xml"]) if "xml" in call.params else None


async def session_get(call: Call) -> Response:
    """Return the logged-in account."""
    account = call.login()
    info = account_info(account, call.site.book, call.site.zone, xml=call.xml)
    return respond(info, xml=call.xml)


async def session_put(call: Call) -> Response:
    """Log in by key, or by username and password; 401 when that fails."""
    book, params = call.site.book, call.params
    if "key" in params:
        account = book.by_key(params["key"])
    elif "username" in params and "password" in params:
        account = book.by_password(params["username"], params["password"])
    else:
        raise VendorAuthError("log in with key, or with username and password")
    if account is None:
        raise VendorAuthError("these credentials open no account")
    flag = _xml_flag(call)
    if flag is not None:
        account = book.update(account.uuid, xml=flag)
    response = respond({"uuid": account.uuid}, xml=call.xml or account.xml)
    response.set_cookie(SESSION_COOKIE, book.open_session(account.uuid), httponly=True)
    return response


async def session_delete(call: Call) -> Response:
    """Log out; answer an empty document."""
    token = call.request.cookies.get(SESSION_COOKIE)
    if token is not None:
        call.site.book.close_session(token)
    response = respond(_EMPTY, xml=call.xml)
    response.delete_cookie(SESSION_COOKIE)
    return response


async def key_get(call: Call) -> Response:
    """Return the API key of the logged-in account."""
    return respond({"key": call.login().key}, xml=call.xml)


async def key_post(call: Call) -> Response:
    """Rotate the API key of the logged-in account and return the new one."""
    account = call.site.book.rotate_key(call.login().uuid)
    return respond({"key": account.key}, xml=call.xml)


async def _latest(call: Call, *, interval: bool) -> Response:
    call.login()
    site = call.site
    points = list(site.points.values())
    rows = await _in_thread(site.readings.latest_rows, points, site.clock.now(), interval)
    return respond(rows, xml=call.xml)


async def data_get(call: Call) -> Response:
    """Return the latest register reading of every metering point."""
    return await _latest(call, interval=False)


async def interval_get(call: Call) -> Response:
    """Return the latest 5-minute interval energy of every metering point."""
    return await _latest(call, interval=True)


async def user_get(call: Call) -> Response:
    """List the public information of every account of the project."""
    call.login()
    users = [public_user(account, call.site.zone) for account in call.site.book.all()]
    return respond(users, xml=call.xml)


async def user_post(call: Call) -> Response:
    """Update the logged-in account; 409 when the new username is taken."""
    params = call.params
    account = call.site.book.update(
        call.login().uuid,
        username=params.get("username"),
        password=params.get("password"),
        email=params.get("email"),
        xml=_xml_flag(call),
    )
    info = account_info(account, call.site.book, call.site.zone, xml=call.xml)
    return respond(info, xml=call.xml)


async def user_put(call: Call) -> Response:
    """Create an account in the project; 409 when the username is taken."""
    call.login()
    missing = [name for name in ("username", "password", "email") if not call.params.get(name)]
    if missing:
        raise InputError(f"missing {', '.join(missing)}")
    site, params = call.site, call.params
    account = site.book.create(
        params["username"], params["password"], params["email"], site.clock.now()
    )
    return respond(account_info(account, site.book, site.zone, xml=call.xml), xml=call.xml)


async def user_delete(call: Call) -> Response:
    """Delete the logged-in account, which also logs it out."""
    call.site.book.delete(call.login().uuid)
    response = respond(_EMPTY, xml=call.xml)
    response.delete_cookie(SESSION_COOKIE)
    return response


async def graphics_get(call: Call) -> Response:
    """Draw a PNG chart of the metering points as the parameters ask."""
    call.login()
    png = await _in_thread(call.site.chart, call.params)
    return Response(png, media_type=_PNG_MEDIA_TYPE)


async def point_get(call: Call) -> Response:
    """Describe one metering point, by id (preferred) or name."""
    call.login()
    return respond(point_info(call.site.find_point(call.params)), xml=call.xml)


async def point_post(call: Call) -> Response:
    """Rename one metering point to ``new``."""
    call.login()
    new_name = call.params.get("new")
    if not new_name:
        raise InputError("give the new name as new")
    point = call.site.rename(call.site.find_point(call.params), new_name)
    return respond(point_info(point), xml=call.xml)


async def file_get(call: Call) -> Response:
    """Export past readings as csv, json, xml or yaml; start and end in either order."""
    call.login()
    body, media_type, file_name = await _in_thread(call.site.export, call.params)
    disposition = {"Content-Disposition": f'attachment; filename="{file_name}"'}
    return Response(body, media_type=media_type, headers=disposition)


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("/session", "GET", session_get),
    ("/session", "PUT", session_put),
    ("/session", "DELETE", session_delete),
    ("/key", "GET", key_get),
    ("/key", "POST", key_post),
    ("/data", "GET", data_get),
    ("/interval", "GET", interval_get),
    ("/user", "GET", user_get),
    ("/user", "POST", user_post),
    ("/user", "PUT", user_put),
    ("/user", "DELETE", user_delete),
    ("/graphics", "GET", graphics_get),
    ("/point", "GET", point_get),
    ("/point", "POST", point_post),
    ("/file", "GET", file_get),
)
"""Every documented (path, method) and its handler."""
