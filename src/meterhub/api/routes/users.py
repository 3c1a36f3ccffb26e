"""``/api/v1/users``: users, roles, passwords and shares (admins; users may read and re-password self)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from meterhub.api import security
from meterhub.api.auth import AuthDep
from meterhub.api.deps import Principal, PrincipalDep, StoreDep
from meterhub.api.problems import PROBLEM_RESPONSES, ApiProblem
from meterhub.api.render import DocFormat, FormatQuery, answer_formats, render
from meterhub.api.routes._params import check_acceptable
from meterhub.ids import USER_NAME_PATTERN
from meterhub.model import User, UserRole
from meterhub.store.base import Store

__all__ = ["UserCreate", "UserPublic", "router"]

router = APIRouter(prefix="/api/v1/users", tags=["users"], responses=PROBLEM_RESPONSES)

NAME_PATTERN = USER_NAME_PATTERN
UserName = Annotated[str, Path(pattern=NAME_PATTERN, description="The user's name.")]
ShareKind = Literal["meter", "place"]
Password = Annotated[
    str, Field(min_length=security.PASSWORD_MIN_CHARS, max_length=security.PASSWORD_MAX_CHARS)
]


class UserCreate(BaseModel):
    """A new user."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    role: UserRole = UserRole.VIEWER
    password: Password


class UserUpdate(BaseModel):
    """A change of role."""

    model_config = ConfigDict(extra="forbid")

    role: UserRole


class PasswordChange(BaseModel):
    """A new password; a user changing their own gives the current one too."""

    model_config = ConfigDict(extra="forbid")

    password: Password
    current_password: str | None = Field(default=None, max_length=security.PASSWORD_MAX_CHARS)


class SharePublic(BaseModel):
    """A meter or place shared with a user."""

    kind: ShareKind
    id: str


class UserPublic(BaseModel):
    """A user as the API shows it (never with a password hash)."""

    name: str
    role: UserRole
    created_at: datetime
    shares: list[SharePublic]


def _public(store: Store, user: User) -> UserPublic:
    shares = [SharePublic.model_validate({"kind": k, "id": i}) for k, i in store.shares_of(user.name)]
    return UserPublic(name=user.name, role=user.role, created_at=user.created_at, shares=shares)


def _self_or_admin(principal: Principal, name: str) -> None:
    if principal.user != name:
        principal.require_admin()


@router.get("", response_model=list[UserPublic], summary="List users", responses=answer_formats(tabular=True))
def list_users(
    request: Request, store: StoreDep, principal: PrincipalDep, fmt: FormatQuery = None
) -> Response:
    """List every user with role and shares (admins only)."""
    principal.require_admin()
    users = [_public(store, user) for user in store.list_users()]
    rows = [
        {"name": u.name, "role": u.role.value, "created_at": u.created_at, "shares": len(u.shares)}
        for u in users
    ]
    return render(request, users, rows=rows, root="users")


@router.post(
    "", status_code=201, response_model=UserPublic, summary="Add a user", responses=answer_formats(status=201)
)
def add_user(body: UserCreate, request: Request, store: StoreDep, principal: PrincipalDep) -> Response:
    """Add a user (409 when the name is taken)."""
    principal.require_admin()
    check_acceptable(request)
    user = security.create_user(store, body.name, body.role, body.password)
    return render(request, _public(store, user), root="user", status_code=201)


@router.get("/{name}", response_model=UserPublic, summary="Show a user", responses=answer_formats())
def get_user(
    name: UserName, request: Request, store: StoreDep, principal: PrincipalDep, fmt: DocFormat = None
) -> Response:
    """Show one user (admins, or the user themself)."""
    _self_or_admin(principal, name)
    return render(request, _public(store, store.get_user(name)), root="user")


@router.patch(
    "/{name}", response_model=UserPublic, summary="Change a user's role", responses=answer_formats()
)
def update_user(
    name: UserName,
    body: UserUpdate,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    auth: AuthDep,
) -> Response:
    """Change a user's role (409 when that would leave no admin)."""
    principal.require_admin()
    check_acceptable(request)
    user = security.set_role(store, name, body.role)
    auth.forget()
    return render(request, _public(store, user), root="user")


@router.delete("/{name}", status_code=204, response_class=Response, summary="Remove a user")
def remove_user(name: UserName, store: StoreDep, principal: PrincipalDep, auth: AuthDep) -> Response:
    """Remove a user with their keys and shares (409 for the last admin)."""
    principal.require_admin()
    security.remove_user(store, name)
    auth.forget()
    return Response(status_code=204)


@router.put("/{name}/password", status_code=204, response_class=Response, summary="Change a password")
def change_password(
    name: UserName, body: PasswordChange, store: StoreDep, principal: PrincipalDep, auth: AuthDep
) -> Response:
    """Set a password; users changing their own give the current one. Ends the user's sessions."""
    _self_or_admin(principal, name)
    if principal.role is not UserRole.ADMIN and not security.verify_password(
        store.user_password_hash(name), body.current_password or ""
    ):
        raise ApiProblem(403, "Forbidden", "current_password is missing or wrong")
    security.change_password(store, name, body.password)
    auth.forget()
    return Response(status_code=204)


@router.get(
    "/{name}/shares",
    response_model=list[SharePublic],
    summary="List a user's shares",
    responses=answer_formats(tabular=True),
)
def list_shares(
    name: UserName, request: Request, store: StoreDep, principal: PrincipalDep, fmt: FormatQuery = None
) -> Response:
    """List the meters and places shared with a user (admins, or the user themself)."""
    _self_or_admin(principal, name)
    shares = _public(store, store.get_user(name)).shares
    return render(request, shares, rows=[s.model_dump() for s in shares], root="shares")


@router.put(
    "/{name}/shares/{kind}/{object_id}",
    response_model=list[SharePublic],
    summary="Share with a user",
    responses=answer_formats(),
)
def share(
    name: UserName,
    kind: ShareKind,
    object_id: str,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    auth: AuthDep,
) -> Response:
    """Let a user see a meter, or a place with its meters."""
    principal.require_admin()
    store.share(name, kind, object_id)
    auth.forget()
    return render(request, _public(store, store.get_user(name)).shares, root="shares")


@router.delete(
    "/{name}/shares/{kind}/{object_id}", status_code=204, response_class=Response, summary="Unshare"
)
def unshare(
    name: UserName, kind: ShareKind, object_id: str, store: StoreDep, principal: PrincipalDep, auth: AuthDep
) -> Response:
    """Stop sharing a meter or place with a user."""
    principal.require_admin()
    store.unshare(name, kind, object_id)
    auth.forget()
    return Response(status_code=204)
