"""How the simulated Intellimeter API reads requests and renders answers and errors.

Parameters are read from the query string, a form body or a JSON body alike. Answers are JSON
unless XML is asked for: by ``xml=true`` on the request, by an ``Accept`` header that names XML
and not JSON, or by the account's own ``xml`` setting (set with ``xml=true`` at login or on
``POST /user``). Errors keep the vendor's status codes (401 bad or missing login, 409 taken
name) and carry ``{"error": message}`` in the chosen format.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from meterhub.errors import (
    ConflictError,
    InputError,
    MeterhubError,
    NotFoundError,
    VendorAuthError,
)

from .accounts import Account
from .render import JSON_MEDIA_TYPE, XML_MEDIA_TYPE, Value, to_json, to_xml
from .site import IntellimeterSite

__all__ = [
    "SESSION_COOKIE",
    "Call",
    "Handler",
    "error_status",
    "is_true",
    "read_params",
    "respond",
    "wants_xml",
]

SESSION_COOKIE = "session"
_TRUE = frozenset({"1", "true", "yes", "on"})
_STATUS_BY_ERROR: tuple[tuple[type[MeterhubError], int], ...] = (
    (VendorAuthError, 401),
    (ConflictError, 409),
    (NotFoundError, 404),
    (InputError, 400),
)


async def read_params(request: Request) -> dict[str, str]:
    """Return the request's parameters: query string, then form or JSON body on top."""
    params = dict(request.query_params)
    body = await request.body()
    if not body:
        return params
    if "json" in request.headers.get("content-type", ""):
        try:
            decoded = json.loads(body)
        except ValueError:
            raise InputError("the body is not valid JSON") from None
        if not isinstance(decoded, dict):
            raise InputError("the JSON body must be an object")
        params.update({key: _param_text(value) for key, value in decoded.items()})
    else:
        try:
            text = body.decode()
        except UnicodeDecodeError:
            raise InputError("the body is not UTF-8 text") from None
        params.update(parse_qsl(text, keep_blank_values=True))
    return params


def _param_text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def is_true(text: str | None) -> bool:
    """Read a yes/no parameter."""
    return text is not None and text.strip().lower() in _TRUE


def wants_xml(request: Request, params: Mapping[str, str], account: Account | None) -> bool:
    """Decide between XML and JSON as the module docstring says."""
    if "xml" in params:
        return is_true(params["xml"])
    accept = request.headers.get("accept", "").lower()
    if "xml" in accept and "json" not in accept:
        return True
    return account is not None and account.xml


def respond(value: Value, *, xml: bool, status_code: int = 200) -> Response:
    """Render ``value`` in the chosen format."""
    if xml:
        return Response(to_xml(value), status_code, media_type=XML_MEDIA_TYPE)
    return Response(to_json(value), status_code, media_type=JSON_MEDIA_TYPE)


@dataclass
class Call:
    """One request as a handler sees it."""

    request: Request
    site: IntellimeterSite
    params: dict[str, str]
    account: Account | None
    xml: bool

    def login(self) -> Account:
        """Return the logged-in account or raise VendorAuthError (401)."""
        if self.account is None:
            raise VendorAuthError("not logged in; PUT /session first")
        return self.account


Handler = Callable[[Call], Awaitable[Response]]


def error_status(error: MeterhubError) -> int:
    """Return the HTTP status the vendor gives ``error``."""
    return next((code for kind, code in _STATUS_BY_ERROR if isinstance(error, kind)), 400)
