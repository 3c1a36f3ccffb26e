"""Manage API keys from the dashboard (admins only): list, create for a user, revoke.

A new key is shown once, in the answer to the form that made it (never in a URL, a redirect or
the list); the list shows each key's id and prefix only. Keys are made and revoked by the same
functions as ``meterhub keys`` and ``/api/v1/keys``, and the authenticator forgets what it cached.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from meterhub.api import security
from meterhub.api.deps import get_authenticator, store_of
from meterhub.api.websession import WebSession
from meterhub.errors import MeterhubError, NotFoundError
from meterhub.model import ApiKey
from meterhub.store.base import Store
from meterhub.web.forms import FormErrors, done, read_form
from meterhub.web.manage.home import admin_page, hidden, run, stored_page, submit

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

LIST = "/manage/keys"


def _listing(store: Store) -> dict[str, Any]:
    return {"keys": store.list_api_keys(), "users": store.list_users()}


async def _keys_page(
    request: Request,
    session: WebSession,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    created: tuple[ApiKey, str] | None = None,
) -> HTMLResponse:
    return await stored_page(
        request,
        session,
        "manage_keys.html",
        _listing,
        errors,
        status_code=201 if created else None,
        values=values or {},
        created=created,
        title="API keys",
    )


@router.get("/manage/keys", response_class=HTMLResponse)
@admin_page
async def keys_page(request: Request, session: WebSession) -> Response:
    """List every key (id, user, name, created, last used, revoked; never its secret)."""
    return await _keys_page(request, session)


def _blamed_field(exc: MeterhubError) -> str:
    return "user" if isinstance(exc, NotFoundError) else "name"


@router.post("/manage/keys", response_class=HTMLResponse)
@admin_page
async def create_key(request: Request, session: WebSession) -> Response:
    """Create a key for a user; the answer shows it this once."""

    async def shown(created: tuple[ApiKey, str]) -> Response:
        get_authenticator(request).forget()
        return await _keys_page(request, session, created=created)

    return await submit(
        request,
        session,
        ("user", "name"),
        lambda store, v: security.issue_api_key(store, v["user"], v["name"]),
        again=lambda errors, values: _keys_page(request, session, values, errors),
        then=shown,
        field=_blamed_field,
    )


@router.post("/manage/keys/{key_id}/revoke", response_class=HTMLResponse)
@admin_page
async def revoke_key(request: Request, session: WebSession, key_id: str) -> Response:
    """Revoke a key; it stops working at once and stays listed as revoked."""
    _, errors = await read_form(request, session)
    if errors:
        return await _keys_page(request, session, errors=errors)
    try:
        await run(store_of(request).revoke_api_key, key_id)
    except NotFoundError:
        return hidden(request, session)
    get_authenticator(request).forget()
    return done(LIST, f"Key {key_id} revoked.")
