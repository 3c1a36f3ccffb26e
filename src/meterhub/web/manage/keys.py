"""Manage API keys from the dashboard (admins only): list, create for a user, revoke.

A new key is shown once, in the answer to the form that made it (never in a URL, a redirect or
the list); the list shows each key's id and prefix only. Keys are made and revoked by the same
functions as ``meterhub keys`` and ``/api/v1/keys``, and the authenticator forgets what it cached.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from meterhub.api import security
from meterhub.api.deps import get_authenticator, store_of
from meterhub.api.websession import WebSession
from meterhub.errors import MeterhubError, NotFoundError
from meterhub.model import ApiKey
from meterhub.store.base import Store
from meterhub.web.forms import FormErrors, done, form_text, read_form
from meterhub.web.manage.home import admin_only, blame, hidden, show

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

LIST = "/manage/keys"
_T = TypeVar("_T")


async def _run(call: Callable[..., _T], *args: Any) -> _T:
    return await anyio.to_thread.run_sync(functools.partial(call, *args))


def _listing(store: Store) -> dict[str, Any]:
    return {"keys": store.list_api_keys(), "users": store.list_users()}


async def _keys_page(
    request: Request,
    session: WebSession,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    created: tuple[ApiKey, str] | None = None,
) -> HTMLResponse:
    context = await _run(_listing, store_of(request))
    return show(
        request,
        "manage_keys.html",
        session,
        errors,
        status_code=201 if created else None,
        values=values or {},
        created=created,
        title="API keys",
        **context,
    )


@router.get("/manage/keys", response_class=HTMLResponse)
async def keys_page(request: Request) -> Response:
    """List every key (id, user, name, created, last used, revoked; never its secret)."""
    session = await admin_only(request)
    if not isinstance(session, WebSession):
        return session
    return await _keys_page(request, session)


@router.post("/manage/keys", response_class=HTMLResponse)
async def create_key(request: Request) -> Response:
    """Create a key for a user; the answer shows it this once."""
    session = await admin_only(request)
    if not isinstance(session, WebSession):
        return session
    form, errors = await read_form(request, session)
    values = {name: form_text(form, name) for name in ("user", "name")}
    created: tuple[ApiKey, str] | None = None
    if not errors:
        try:
            created = await _run(security.issue_api_key, store_of(request), values["user"], values["name"])
        except NotFoundError as exc:
            blame(errors, exc, "user")
        except MeterhubError as exc:
            blame(errors, exc, "name")
    if errors or created is None:
        return await _keys_page(request, session, values, errors)
    get_authenticator(request).forget()
    return await _keys_page(request, session, created=created)


@router.post("/manage/keys/{key_id}/revoke", response_class=HTMLResponse)
async def revoke_key(request: Request, key_id: str) -> Response:
    """Revoke a key; it stops working at once and stays listed as revoked."""
    session = await admin_only(request)
    if not isinstance(session, WebSession):
        return session
    _, errors = await read_form(request, session)
    if errors:
        return await _keys_page(request, session, errors=errors)
    try:
        await _run(store_of(request).revoke_api_key, key_id)
    except NotFoundError:
        return hidden(request, session)
    get_authenticator(request).forget()
    return done(LIST, f"Key {key_id} revoked.")
