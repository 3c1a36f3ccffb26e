"""Manage users from the dashboard (admins only): add, role, password, remove, and shares.

Every change goes through the account functions the CLI and the API use
(:mod:`meterhub.api.security`, the store's shares), so the last admin can be neither demoted nor
removed here either. After each change the authenticator forgets what it cached, so API keys,
tokens and browser sessions see the change at once.
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
from meterhub.errors import ConflictError, MeterhubError, NotFoundError
from meterhub.model import UserRole
from meterhub.store.accounts import SHARE_KINDS
from meterhub.store.base import Store
from meterhub.web.forms import FormErrors, done, form_text, read_form
from meterhub.web.manage.home import admin_only, blame, hidden, show

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

LIST = "/manage/users"
ROLE_WORDS = {
    UserRole.ADMIN: "admin: manages everything",
    UserRole.MEMBER: "member: reads and controls what is shared",
    UserRole.VIEWER: "viewer: only reads what is shared",
}
_T = TypeVar("_T")


async def _run(call: Callable[..., _T], *args: Any) -> _T:
    return await anyio.to_thread.run_sync(functools.partial(call, *args))


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
    context = await _run(_listing, store_of(request))
    return show(
        request,
        "manage_users.html",
        session,
        errors,
        values=values or {},
        roles=ROLE_WORDS,
        title="Users",
        **context,
    )


@router.get("/manage/users", response_class=HTMLResponse)
async def users_page(request: Request) -> Response:
    """List users with their roles and shares; a form adds one."""
    session = await admin_only(request)
    if not isinstance(session, WebSession):
        return session
    return await _list_page(request, session)


def _add(store: Store, name: str, role: str, password: str, again: str) -> None:
    errors = FormErrors()
    for field, check, value in (
        ("name", security.check_user_name, name),
        ("password", security.check_password, password),
    ):
        try:
            check(value)
        except MeterhubError as exc:
            errors.add(field, str(exc))
    if password != again:
        errors.add("password2", "the two passwords differ; type the same one twice")
    if role not in {r.value for r in UserRole}:
        errors.add("role", f"choose a role: {', '.join(r.value for r in UserRole)}")
    if errors:
        raise _Refused(errors)
    security.create_user(store, name, UserRole(role), password)


class _Refused(Exception):
    """A form's values were refused field by field."""

    def __init__(self, errors: FormErrors) -> None:
        super().__init__("refused")
        self.errors = errors


@router.post("/manage/users", response_class=HTMLResponse)
async def add_user(request: Request) -> Response:
    """Add a user with a role and a password typed twice."""
    session = await admin_only(request)
    if not isinstance(session, WebSession):
        return session
    form, errors = await read_form(request, session)
    values = {name: form_text(form, name) for name in ("name", "role")}
    password, again = str(form.get("password", "")), str(form.get("password2", ""))
    if not errors:
        try:
            await _run(_add, store_of(request), values["name"], values["role"], password, again)
        except _Refused as refused:
            errors = refused.errors
        except MeterhubError as exc:
            blame(errors, exc, "name")
    if errors:
        return await _list_page(request, session, values, errors)
    get_authenticator(request).forget()
    return done(f"{LIST}/{values['name']}", f"User {values['name']} added as {values['role']}.")


# --- one user -----------------------------------------------------------------------------
def _user_context(store: Store, name: str) -> dict[str, Any]:
    return {
        "user": store.get_user(name),
        "shares": store.shares_of(name),
        "meters": store.list_meters(),
        "places": store.list_places(),
        "key_count": sum(not k.revoked for k in store.list_api_keys(name)),
    }


async def _user_page(
    request: Request,
    session: WebSession,
    name: str,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
    confirm_remove: bool = False,
) -> HTMLResponse:
    try:
        context = await _run(_user_context, store_of(request), name)
    except NotFoundError:
        return hidden(request, session)
    return show(
        request,
        "manage_user.html",
        session,
        errors,
        values=values or {"role": context["user"].role.value},
        roles=ROLE_WORDS,
        kinds=SHARE_KINDS,
        confirm_remove=confirm_remove,
        title=f"User {name}",
        **context,
    )


@router.get("/manage/users/{name}", response_class=HTMLResponse)
async def user_page(request: Request, name: str) -> Response:
    """Show a user's role, a password reset, what is shared with them, and a way to remove them."""
    session = await admin_only(request)
    if not isinstance(session, WebSession):
        return session
    return await _user_page(request, session, name)


async def _change(
    request: Request,
    name: str,
    fields: tuple[str, ...],
    change: Callable[[Store, dict[str, str]], object],
    notice: str,
    then: str | None = None,
) -> Response:
    """Read a form of a user's page, make the change, forget cached principals, and redirect."""
    session = await admin_only(request)
    if not isinstance(session, WebSession):
        return session
    form, errors = await read_form(request, session)
    typed = {field: form_text(form, field) for field in fields}
    secrets = {field: str(form.get(field, "")) for field in ("password", "password2")}
    if not errors:
        try:
            await _run(change, store_of(request), {**typed, **secrets})
        except _Refused as refused:
            errors = refused.errors
        except NotFoundError as exc:
            if not await _run(_exists, store_of(request), name):
                return hidden(request, session)
            blame(errors, exc, fields[0])
        except MeterhubError as exc:
            blame(errors, exc, fields[0])
    if errors:
        return await _user_page(request, session, name, errors, typed)
    get_authenticator(request).forget()
    return done(then or f"{LIST}/{name}", notice)


def _set_role(name: str) -> Callable[[Store, dict[str, str]], object]:
    def change(store: Store, values: dict[str, str]) -> object:
        if values["role"] not in {r.value for r in UserRole}:
            raise _Refused(_one("role", f"choose a role: {', '.join(r.value for r in UserRole)}"))
        try:
            return security.set_role(store, name, UserRole(values["role"]))
        except ConflictError as exc:
            raise _Refused(_one("role", str(exc))) from exc

    return change


def _one(field: str, message: str) -> FormErrors:
    errors = FormErrors()
    errors.add(field, message)
    return errors


@router.post("/manage/users/{name}/role", response_class=HTMLResponse)
async def set_role(request: Request, name: str) -> Response:
    """Change a user's role (never leaving the hub without an admin)."""
    return await _change(request, name, ("role",), _set_role(name), f"{name} has a new role.")


def _reset_password(name: str) -> Callable[[Store, dict[str, str]], object]:
    def change(store: Store, values: dict[str, str]) -> object:
        if values["password"] != values["password2"]:
            raise _Refused(_one("password2", "the two passwords differ; type the same one twice"))
        store.get_user(name)
        try:
            security.check_password(values["password"])
        except MeterhubError as exc:
            raise _Refused(_one("password", str(exc))) from exc
        security.change_password(store, name, values["password"])
        return None

    return change


@router.post("/manage/users/{name}/password", response_class=HTMLResponse)
async def reset_password(request: Request, name: str) -> Response:
    """Set a user's password, typed twice; their sign-in sessions end."""
    return await _change(
        request, name, (), _reset_password(name), f"Password of {name} changed; their sessions ended."
    )


@router.post("/manage/users/{name}/shares", response_class=HTMLResponse)
async def share(request: Request, name: str) -> Response:
    """Let the user see a meter, or a place with its meters (``object`` is kind:id)."""

    def change(store: Store, values: dict[str, str]) -> object:
        kind, _, object_id = values["object"].partition(":")
        if not object_id:
            raise _Refused(_one("object", "choose a meter or a place to share"))
        store.share(name, kind, object_id)
        return None

    return await _change(request, name, ("object",), change, f"Shared with {name}.")


@router.post("/manage/users/{name}/shares/{kind}/{object_id}/unshare", response_class=HTMLResponse)
async def unshare(request: Request, name: str, kind: str, object_id: str) -> Response:
    """Stop sharing a meter or a place with the user."""
    return await _change(
        request,
        name,
        ("unshare",),
        lambda store, _: store.unshare(name, kind, object_id),
        f"Stopped sharing {kind} {object_id} with {name}.",
    )


# --- removing -----------------------------------------------------------------------------
@router.get("/manage/users/{name}/remove", response_class=HTMLResponse)
async def remove_form(request: Request, name: str) -> Response:
    """Ask whether to remove the user."""
    session = await admin_only(request)
    if not isinstance(session, WebSession):
        return session
    return await _user_page(request, session, name, confirm_remove=True)


@router.post("/manage/users/{name}/remove", response_class=HTMLResponse)
async def remove_user(request: Request, name: str) -> Response:
    """Remove the user with their keys and shares (never the last admin)."""

    def change(store: Store, _: dict[str, str]) -> object:
        try:
            security.remove_user(store, name)
        except ConflictError as exc:
            raise _Refused(_one("remove", str(exc))) from exc
        return None

    return await _change(request, name, ("remove",), change, f"User {name} removed.", then=LIST)
