"""Manage users from the dashboard (admins only): add, role, password, remove, and shares.

Every change goes through the account functions the CLI and the API use
(:mod:`meterhub.api.security`, the store's shares), so the last admin can be neither demoted nor
removed here either. After each change the authenticator forgets what it cached, so API keys,
tokens and browser sessions see the change at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from meterhub.api import security
from meterhub.api.deps import get_authenticator, store_of
from meterhub.api.websession import WebSession
from meterhub.errors import ConflictError, MeterhubError, NotFoundError
from meterhub.model import User, UserRole
from meterhub.store.accounts import SHARE_KINDS
from meterhub.store.base import Store
from meterhub.web.forms import FormErrors, done
from meterhub.web.manage.home import Refused, admin_page, refuse, run, stored_page, submit

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

LIST = "/manage/users"
ROLE_WORDS = {
    UserRole.ADMIN: "admin: manages everything",
    UserRole.MEMBER: "member: reads and controls what is shared",
    UserRole.VIEWER: "viewer: only reads what is shared",
}
_PASSWORDS = ("password", "password2")


def _exists(store: Store, name: str) -> bool:
    return any(user.name == name for user in store.list_users())


def _listing(store: Store) -> dict[str, Any]:
    users = store.list_users()
    return {"users": users, "shares": {u.name: store.shares_of(u.name) for u in users}}


async def _list_page(
    request: Request,
    session: WebSession,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
) -> HTMLResponse:
    values = values or {}
    return await stored_page(
        request,
        session,
        "manage_users.html",
        _listing,
        errors,
        values=values,
        roles=ROLE_WORDS,
        title="Users",
    )


@router.get("/manage/users", response_class=HTMLResponse)
@admin_page
async def users_page(request: Request, session: WebSession) -> Response:
    """List users with their roles and shares; a form adds one."""
    return await _list_page(request, session)


def _add(store: Store, values: dict[str, str]) -> User:
    name, role, password = values["name"], values["role"], values["password"]
    errors = FormErrors()
    for field, check, value in (
        ("name", security.check_user_name, name),
        ("password", security.check_password, password),
    ):
        try:
            check(value)
        except MeterhubError as exc:
            errors.add(field, str(exc))
    if password != values["password2"]:
        errors.add("password2", "the two passwords differ; type the same one twice")
    if role not in {r.value for r in UserRole}:
        errors.add("role", f"choose a role: {', '.join(r.value for r in UserRole)}")
    if errors:
        raise Refused(errors)
    return security.create_user(store, name, UserRole(role), password)


@router.post("/manage/users", response_class=HTMLResponse)
@admin_page
async def add_user(request: Request, session: WebSession) -> Response:
    """Add a user with a role and a password typed twice."""

    def added(user: User) -> Response:
        get_authenticator(request).forget()
        return done(f"{LIST}/{user.name}", f"User {user.name} added as {user.role.value}.")

    return await submit(
        request,
        session,
        ("name", "role"),
        _add,
        again=lambda errors, values: _list_page(request, session, values, errors),
        then=added,
        field=lambda _: "name",
        secrets=_PASSWORDS,
    )


# --- one user -----------------------------------------------------------------------------
def _user_context(store: Store, name: str, values: dict[str, str] | None) -> dict[str, Any]:
    user = store.get_user(name)
    return {
        "user": user,
        "shares": store.shares_of(name),
        "meters": store.list_meters(),
        "places": store.list_places(),
        "key_count": sum(not k.revoked for k in store.list_api_keys(name)),
        "values": values or {"role": user.role.value},
    }


async def _user_page(
    request: Request,
    session: WebSession,
    name: str,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
    confirm_remove: bool = False,
) -> HTMLResponse:
    return await stored_page(
        request,
        session,
        "manage_user.html",
        functools.partial(_user_context, name=name, values=values),
        errors,
        roles=ROLE_WORDS,
        kinds=SHARE_KINDS,
        confirm_remove=confirm_remove,
        title=f"User {name}",
    )


@router.get("/manage/users/{name}", response_class=HTMLResponse)
@admin_page
async def user_page(request: Request, session: WebSession, name: str) -> Response:
    """Show a user's role, a password reset, what is shared with them, and a way to remove them."""
    return await _user_page(request, session, name)


async def _change(
    request: Request,
    session: WebSession,
    name: str,
    fields: tuple[str, ...],
    change: Callable[[Store, dict[str, str]], object],
    notice: str,
    then: str | None = None,
) -> Response:
    """Read a form of a user's page, make the change, forget cached principals, and redirect."""

    async def gone(exc: MeterhubError) -> bool:
        return isinstance(exc, NotFoundError) and not await run(_exists, store_of(request), name)

    def changed(_: object) -> Response:
        get_authenticator(request).forget()
        return done(then or f"{LIST}/{name}", notice)

    return await submit(
        request,
        session,
        fields,
        change,
        again=lambda errors, typed: _user_page(request, session, name, errors, typed),
        then=changed,
        field=lambda _: fields[0] if fields else None,
        gone=gone,
        secrets=_PASSWORDS,
    )


def _set_role(name: str) -> Callable[[Store, dict[str, str]], object]:
    def change(store: Store, values: dict[str, str]) -> object:
        if values["role"] not in {r.value for r in UserRole}:
            raise refuse("role", f"choose a role: {', '.join(r.value for r in UserRole)}")
        try:
            return security.set_role(store, name, UserRole(values["role"]))
        except ConflictError as exc:
            raise refuse("role", str(exc)) from exc

    return change


@router.post("/manage/users/{name}/role", response_class=HTMLResponse)
@admin_page
async def set_role(request: Request, session: WebSession, name: str) -> Response:
    """Change a user's role (never leaving the hub without an admin)."""
    return await _change(request, session, name, ("role",), _set_role(name), f"{name} has a new role.")


def _reset_password(name: str) -> Callable[[Store, dict[str, str]], object]:
    def change(store: Store, values: dict[str, str]) -> object:
        if values["password"] != values["password2"]:
            raise refuse("password2", "the two passwords differ; type the same one twice")
        store.get_user(name)
        try:
            security.check_password(values["password"])
        except MeterhubError as exc:
            raise refuse("password", str(exc)) from exc
        security.change_password(store, name, values["password"])
        return None

    return change


@router.post("/manage/users/{name}/password", response_class=HTMLResponse)
@admin_page
async def reset_password(request: Request, session: WebSession, name: str) -> Response:
    """Set a user's password, typed twice; their sign-in sessions end."""
    return await _change(
        request,
        session,
        name,
        (),
        _reset_password(name),
        f"Password of {name} changed; their sessions ended.",
    )


@router.post("/manage/users/{name}/shares", response_class=HTMLResponse)
@admin_page
async def share(request: Request, session: WebSession, name: str) -> Response:
    """Let the user see a meter, or a place with its meters (``object`` is kind:id)."""

    def change(store: Store, values: dict[str, str]) -> object:
        kind, _, object_id = values["object"].partition(":")
        if not object_id:
            raise refuse("object", "choose a meter or a place to share")
        store.share(name, kind, object_id)
        return None

    return await _change(request, session, name, ("object",), change, f"Shared with {name}.")


@router.post("/manage/users/{name}/shares/{kind}/{object_id}/unshare", response_class=HTMLResponse)
@admin_page
async def unshare(request: Request, session: WebSession, name: str, kind: str, object_id: str) -> Response:
    """Stop sharing a meter or a place with the user."""
    return await _change(
        request,
        session,
        name,
        ("unshare",),
        lambda store, _: store.unshare(name, kind, object_id),
        f"Stopped sharing {kind} {object_id} with {name}.",
    )


# --- removing -----------------------------------------------------------------------------
@router.get("/manage/users/{name}/remove", response_class=HTMLResponse)
@admin_page
async def remove_form(request: Request, session: WebSession, name: str) -> Response:
    """Ask whether to remove the user."""
    return await _user_page(request, session, name, confirm_remove=True)


@router.post("/manage/users/{name}/remove", response_class=HTMLResponse)
@admin_page
async def remove_user(request: Request, session: WebSession, name: str) -> Response:
    """Remove the user with their keys and shares (never the last admin)."""

    def change(store: Store, _: dict[str, str]) -> object:
        try:
            security.remove_user(store, name)
        except ConflictError as exc:
            raise refuse("remove", str(exc)) from exc
        return None

    return await _change(request, session, name, ("remove",), change, f"User {name} removed.", then=LIST)
