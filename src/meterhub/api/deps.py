"""What routes depend on: the store, and the authenticated caller with what they may see.

A request authenticates with ``Authorization: Bearer <access token or API key>``, the header
``X-API-Key: <key>``, or ``?token=<token or key>`` (for IAMMETER-style clients), in that order
of preference. Without one of them every route but /healthz and the token endpoint answers 401.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, cast

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, APIKeyQuery, OAuth2PasswordBearer

from meterhub.api.problems import ApiProblem
from meterhub.model import UserRole
from meterhub.store.base import Store

if TYPE_CHECKING:
    from meterhub.api.auth import Authenticator
    from meterhub.api.websession import WebSessions

__all__ = [
    "Principal",
    "PrincipalDep",
    "Role",
    "StoreDep",
    "current_principal",
    "get_authenticator",
    "get_store",
    "get_web_sessions",
    "store_of",
]

Role = UserRole
"""The role of a user (admin, member, viewer); not the role of a meter in a place."""

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 (a path, not a secret)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="meterhub"'}
COOKIE = "meterhub_session"
"""The dashboard's session cookie (see :mod:`meterhub.api.websession`)."""
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing; every other one needs the session's CSRF token."""


@dataclass(frozen=True)
class Principal:
    """Who makes a request, with the role and the meters and places shared with them.

    ``meters`` holds the meters shared directly and those of shared places; admins see all.
    ``key_id`` is set when the request came with an API key, None for an access token.
    """

    user: str
    role: Role
    key_id: str | None
    meters: frozenset[str]
    places: frozenset[str]

    def can_see_meter(self, meter_id: str) -> bool:
        """Tell whether the caller may see this meter."""
        return self.role is Role.ADMIN or meter_id in self.meters

    def can_see_place(self, place_id: str) -> bool:
        """Tell whether the caller may see this place."""
        return self.role is Role.ADMIN or place_id in self.places

    def require_admin(self) -> None:
        """Raise the 403 problem unless the caller is an admin."""
        if self.role is not Role.ADMIN:
            raise ApiProblem(403, "Forbidden", f"only an admin may do this; {self.user} is a {self.role}")

    def require_writer(self) -> None:
        """Raise the 403 problem if the caller is a viewer, who may only read."""
        if self.role is Role.VIEWER:
            raise ApiProblem(403, "Forbidden", f"{self.user} is a viewer and may only read")


def store_of(request: Request) -> Store:
    """Return the app's store."""
    return cast(Store, request.app.state.store)


async def get_store(request: Request) -> Store:
    """Return the app's store as a dependency (async: a plain function costs a thread hop)."""
    return store_of(request)


def get_authenticator(request: Request) -> Authenticator:
    """Return the app's authenticator."""
    return cast("Authenticator", request.app.state.auth)


def get_web_sessions(request: Request) -> WebSessions:
    """Return the app's browser sessions."""
    return cast("WebSessions", request.app.state.web_sessions)


async def _cookie_principal(request: Request, cookie: str) -> Principal:
    """Authenticate a browser session; a change also needs the session's CSRF token in a header."""
    sessions = get_web_sessions(request)
    session = sessions.cached(cookie) or await anyio.to_thread.run_sync(sessions.check, cookie)
    if session is None:
        raise ApiProblem(401, "Unauthorized", "your session has ended; sign in again", headers=CHALLENGE)
    if request.method not in SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER)
        if given is None or not hmac.compare_digest(given.encode(), session.csrf.encode()):
            raise ApiProblem(
                403, "Forbidden", f"a change from a signed-in browser needs the page's {CSRF_HEADER} header"
            )
    get_authenticator(request).spend(session.bucket)
    return session.principal


_bearer = OAuth2PasswordBearer(
    tokenUrl=TOKEN_URL,
    auto_error=False,
    description="An access token from the token endpoint, or an API key, as a Bearer token.",
)
_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")
_key_query = APIKeyQuery(name="token", auto_error=False, description="An access token or API key.")


async def current_principal(
    request: Request,
    bearer: Annotated[str | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_key_header)],
    query_token: Annotated[str | None, Depends(_key_query)],
) -> Principal:
    """Authenticate the request and spend one request of the caller's rate limit."""
    credential = bearer or header_key or query_token
    if not credential and (cookie := request.cookies.get(COOKIE)):
        return await _cookie_principal(request, cookie)
    if not credential:
        raise ApiProblem(
            401,
            "Unauthorized",
            "sign in: send 'Authorization: Bearer <access token or API key>', 'X-API-Key: <key>' "
            "or '?token=<token>'",
            headers=CHALLENGE,
        )
    auth = get_authenticator(request)
    known = auth.cached(credential)
    if known is None:
        known = await anyio.to_thread.run_sync(auth.authenticate, credential)
    principal, bucket = known
    auth.spend(bucket)
    return principal


StoreDep = Annotated[Store, Depends(get_store)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
