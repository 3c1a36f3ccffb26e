"""Errors as RFC 9457 problem details: JSON, or XML when the request asked for XML.

Every failure a client can cause becomes a problem with a status and a message a person can act
on; an unexpected exception becomes a 500 with a generic detail and is logged, never shown.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

try:  # FastAPI 0.120+ keeps included routers as branches; this walks their routes
    from fastapi.routing import iter_route_contexts
except ImportError:  # pragma: no cover - older FastAPI lists every route flat
    iter_route_contexts = None  # type: ignore[assignment]

from meterhub.api.encoding import accepted_formats, dumps_json, query_format, xml_document
from meterhub.errors import (
    ConflictError,
    InputError,
    MeterhubError,
    NotFoundError,
    QuotaExceeded,
    StoreError,
    VendorError,
)
from meterhub.redact import redact_text

__all__ = [
    "PROBLEM_RESPONSES",
    "STORE_UNAVAILABLE",
    "ApiProblem",
    "Problem",
    "install_problem_handlers",
    "problem_response",
    "problem_responses",
]

logger = logging.getLogger("meterhub.api")

PROBLEM_JSON = "application/problem+json"
PROBLEM_XML = "application/problem+xml"
PROBLEM_NAMESPACE = "urn:ietf:rfc:7807"

_TITLES: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class Problem(BaseModel):
    """An RFC 9457 problem: what went wrong, for people and programs."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None


_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}, PROBLEM_XML: {}}


def problem_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """Return OpenAPI ``responses`` for problems with these statuses (descriptions by ``_400=...``)."""
    return {
        status: {
            "model": Problem,
            "description": descriptions.get(f"_{status}", _TITLES.get(status, "Error")),
            "content": _PROBLEM_CONTENT,
        }
        for status in statuses
    }


PROBLEM_RESPONSES = problem_responses(400, 401, 403, 404, 406, 409, 422, 429)
"""OpenAPI ``responses`` for routers: the problems any authenticated route may answer."""


class ApiProblem(Exception):
    """A failure the API answers as a problem; ``extra`` members are added to the body."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    """Render one problem in the format the request asked for."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    body.update(extra)
    asked = query_format(request)
    if asked == "xml" or (asked is None and (accepted_formats(request) or ["json"])[0] == "xml"):
        content, media_type = (
            xml_document(body, "problem", namespace=PROBLEM_NAMESPACE, item="i"),
            PROBLEM_XML,
        )
    else:
        content, media_type = dumps_json(body), PROBLEM_JSON
    return Response(content, status_code=status, media_type=media_type, headers=dict(headers or {}))


def _meterhub_status(exc: MeterhubError) -> tuple[int, dict[str, str]]:
    if isinstance(exc, NotFoundError):
        return 404, {}
    if isinstance(exc, ConflictError):
        return 409, {}
    if isinstance(exc, InputError):
        return 422, {}
    if isinstance(exc, QuotaExceeded):
        return 429, _retry_after(exc.retry_after_s if exc.retry_after_s is not None else 60)
    if isinstance(exc, VendorError):
        return 502, {}
    if isinstance(exc, StoreError):
        return 503, {}
    return 422, {}


def _location(loc: Sequence[Any]) -> tuple[str, str]:
    where = str(loc[0]) if loc else "request"
    name = ".".join(str(part) for part in loc[1:]) or where
    return where, name


def validation_errors(errors: Sequence[Any]) -> tuple[str, list[dict[str, str]]]:
    """Name each offending parameter with its message; return a summary and the list."""
    listed: list[dict[str, str]] = []
    for error in errors:
        where, name = _location(error.get("loc", ()))
        listed.append({"in": where, "parameter": name, "message": str(error.get("msg", "invalid"))})
    summary = "; ".join(f"{e['parameter']} ({e['in']}): {e['message']}" for e in listed[:10])
    return f"invalid request: {summary}" if summary else "invalid request", listed


async def _on_api_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    return problem_response(
        request, exc.status, exc.detail, title=exc.title, headers=exc.headers, **exc.extra
    )


STORE_UNAVAILABLE = "the database is unavailable; try again shortly (the cause is in the hub's log)"


async def _on_meterhub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MeterhubError)
    status, headers = _meterhub_status(exc)
    if status == 503:
        # A database failure names hosts, tables and driver messages: those are for the log.
        logger.warning(
            "database failure answering %s %s: %s", request.method, request.url.path, redact_text(str(exc))
        )
        return problem_response(request, status, STORE_UNAVAILABLE, headers=headers)
    return problem_response(request, status, str(exc), headers=headers)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    detail, errors = validation_errors(exc.errors())
    return problem_response(request, 422, detail, errors=errors)


def _allowed_methods(request: Request) -> str:
    """Return every method some route serves at the request's path (Starlette names only one route's)."""
    routes: Iterable[Any] = request.app.routes
    if iter_route_contexts is not None:
        routes = iter_route_contexts(request.app.routes)
    methods: set[str] = set()
    for route in routes:
        with contextlib.suppress(Exception):  # a route of a kind that cannot match plain HTTP
            if route.matches(request.scope)[0] is not Match.NONE:
                methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods - {"HEAD", "OPTIONS"}))


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return problem_response(request, exc.status_code, detail, headers=headers)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    logger.error("unexpected error answering %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(request, 500, "the hub failed unexpectedly; the error is logged on the server")


def install_problem_handlers(app: FastAPI) -> None:
    """Make ``app`` answer every error as a problem."""
    app.add_exception_handler(ApiProblem, _on_api_problem)
    app.add_exception_handler(MeterhubError, _on_meterhub_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
