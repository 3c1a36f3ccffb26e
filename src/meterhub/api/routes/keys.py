"""``/api/v1/keys``: API keys. Users manage their own, admins everyone's; a key is shown only once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from meterhub.api import security
from meterhub.api.auth import AuthDep
from meterhub.api.deps import Principal, PrincipalDep, StoreDep
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.api.render import DocFormat, FormatQuery, answer_formats, render
from meterhub.api.routes._params import check_acceptable
from meterhub.errors import NotFoundError
from meterhub.model import ApiKey, UserRole
from meterhub.store.base import Store

__all__ = ["KeyCreate", "KeyCreated", "KeyPublic", "router"]

router = APIRouter(prefix="/api/v1/keys", tags=["keys"], responses=PROBLEM_RESPONSES)

KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="The key's id (as in its prefix).")]
_NO_STORE = {"Cache-Control": "no-store"}


class KeyCreate(BaseModel):
    """A new key: a label, and (for admins) the user it acts as (default: the caller)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=100)
    user: str | None = Field(default=None, max_length=64)


class KeyPublic(BaseModel):
    """A key as listed: its prefix, never its secret."""

    key_id: str
    user: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


class KeyCreated(KeyPublic):
    """A new key with the key itself, shown this once."""

    key: str = Field(description="The API key. Store it now: it is never shown again.")


def _public(key: ApiKey) -> KeyPublic:
    return KeyPublic(
        key_id=key.key_id,
        user=key.user,
        name=key.name,
        prefix=key.prefix,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked=key.revoked,
    )


def _created(key: ApiKey, text: str) -> KeyCreated:
    return KeyCreated(**_public(key).model_dump(), key=text)


def _own_key(store: Store, principal: Principal, key_id: str) -> ApiKey:
    found = store.api_key_by_id(key_id)
    if found is None or (found[0].user != principal.user and principal.role is not UserRole.ADMIN):
        raise NotFoundError(f"unknown API key {key_id!r}")
    return found[0]


@router.get(
    "", response_model=list[KeyPublic], summary="List API keys", responses=answer_formats(tabular=True)
)
def list_keys(
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    user: Annotated[str | None, Query(max_length=64, description="Only this user's keys (admins).")] = None,
    fmt: FormatQuery = None,
) -> Response:
    """List the caller's keys (admins: everyone's, or one user's), by prefix only."""
    if user is not None and user != principal.user:
        principal.require_admin()
    if user is None and principal.role is not UserRole.ADMIN:
        user = principal.user
    keys = [_public(key) for key in store.list_api_keys(user)]
    return render(request, keys, rows=[k.model_dump() for k in keys], root="keys")


@router.post(
    "",
    status_code=201,
    response_model=KeyCreated,
    summary="Create an API key",
    responses=answer_formats(status=201),
)
def create_key(body: KeyCreate, request: Request, store: StoreDep, principal: PrincipalDep) -> Response:
    """Create a key for the caller (admins: for any user); the answer holds the key, once."""
    owner = body.user or principal.user
    if owner != principal.user:
        principal.require_admin()
    check_acceptable(request)
    key, text = security.issue_api_key(store, owner, body.name)
    answer = render(request, _created(key, text), root="key", status_code=201)
    answer.headers.update(_NO_STORE)
    return answer


@router.get("/{key_id}", response_model=KeyPublic, summary="Show an API key", responses=answer_formats())
def get_key(
    key_id: KeyId, request: Request, store: StoreDep, principal: PrincipalDep, fmt: DocFormat = None
) -> Response:
    """Show one key by its id (prefix only)."""
    return render(request, _public(_own_key(store, principal, key_id)), root="key")


@router.post(
    "/{key_id}/rotate",
    status_code=201,
    response_model=KeyCreated,
    summary="Rotate an API key",
    responses=answer_formats(status=201),
)
def rotate_key(
    key_id: KeyId, request: Request, store: StoreDep, principal: PrincipalDep, auth: AuthDep
) -> Response:
    """Replace a key by a new one with the same user and name; the old one stops working now."""
    _own_key(store, principal, key_id)
    check_acceptable(request)
    key, text = security.rotate_api_key(store, key_id)
    auth.forget()
    answer = render(request, _created(key, text), root="key", status_code=201)
    answer.headers.update(_NO_STORE)
    return answer


@router.delete("/{key_id}", status_code=204, response_class=Response, summary="Revoke an API key")
def revoke_key(key_id: KeyId, store: StoreDep, principal: PrincipalDep, auth: AuthDep) -> Response:
    """Revoke a key; it stays listed as revoked."""
    _own_key(store, principal, key_id)
    store.revoke_api_key(key_id)
    auth.forget()
    return Response(status_code=204)
