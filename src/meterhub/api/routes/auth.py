"""``/api/v1/auth``: the OAuth2 token endpoint (password and refresh_token grants) and revocation.

The token endpoint reads the form fields UMeter and FastAPI clients send, whatever Content-Type
they claim (UMeter's own example posts a form body labelled application/json), or a JSON object.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from meterhub.api.auth import AuthDep, TokenPair
from meterhub.api.deps import PrincipalDep
from meterhub.api.problems import PROBLEM_RESPONSES, ApiProblem, problem_responses

__all__ = ["TokenAnswer", "router"]

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

MAX_FORM_BYTES = 16_384
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenAnswer(BaseModel):
    """A token pair (RFC 6749 section 5.1)."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the token type, not a secret)
    expires_in: int = Field(description="Seconds the access token stays valid.")
    refresh_token: str


def _form_schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": required}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": schema},
                "application/json": {"schema": schema},
            },
        }
    }


_TEXT = {"type": "string"}
_TOKEN_FIELDS = ("grant_type", "username", "password", "refresh_token", "scope", "client_id", "client_secret")
_REVOKE_FIELDS = ("token", "token_type_hint")
_TOKEN_BODY = _form_schema(
    {
        "grant_type": {"type": "string", "enum": ["password", "refresh_token"]},
        "username": _TEXT,
        "password": _TEXT,
        "refresh_token": _TEXT,
        "scope": _TEXT,
        "client_id": _TEXT,
        "client_secret": _TEXT,
    },
    ["grant_type"],
)
_REVOKE_BODY = _form_schema(
    {"token": {"type": "string", "minLength": 1}, "token_type_hint": _TEXT}, ["token"]
)


async def read_fields(request: Request, known: tuple[str, ...]) -> dict[str, str]:
    """Return the ``known`` fields of a form (urlencoded or multipart) or JSON object body."""
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        raise ApiProblem(413, "Content Too Large", f"the body may have at most {MAX_FORM_BYTES} bytes")
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        form = await request.form()
        return {key: value for key, value in form.items() if key in known and isinstance(value, str)}
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ApiProblem(413, "Content Too Large", f"the body may have at most {MAX_FORM_BYTES} bytes")
    text = body.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise _oauth_error("invalid_request", "the body is not a JSON object")
        wrong = [name for name in known if name in data and not isinstance(data[name], str)]
        if wrong:
            raise _oauth_error("invalid_request", f"these fields must be strings: {', '.join(wrong)}")
        return {name: data[name] for name in known if name in data}
    return {key: value for key, value in parse_qsl(text) if key in known}


def _oauth_error(error: str, detail: str) -> ApiProblem:
    return ApiProblem(400, "Bad Request", detail, error=error, error_description=detail)


def _address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _answer(pair: TokenPair) -> JSONResponse:
    body = TokenAnswer(
        access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token
    )
    return JSONResponse(body.model_dump(), headers=_NO_STORE)


@router.post(
    "/token",
    response_model=TokenAnswer,
    summary="Get an access token (OAuth2 password or refresh_token grant)",
    responses=problem_responses(
        400,
        413,
        429,
        _400="invalid_request, invalid_grant or unsupported_grant_type (in the member 'error')",
        _429="Too many failed sign-ins; see Retry-After",
    ),
    openapi_extra=_TOKEN_BODY,
)
async def token(request: Request, auth: AuthDep) -> Response:
    """Sign in with a user name and password, or trade a refresh token for a new pair."""
    fields = await read_fields(request, _TOKEN_FIELDS)
    grant = fields.get("grant_type", "")
    if grant == "password":
        username, password = fields.get("username"), fields.get("password")
        if not username or password is None:
            raise _oauth_error("invalid_request", "the password grant needs username and password")
        pair = await anyio.to_thread.run_sync(auth.password_grant, username, password, _address(request))
    elif grant == "refresh_token":
        refresh = fields.get("refresh_token")
        if not refresh:
            raise _oauth_error("invalid_request", "the refresh_token grant needs refresh_token")
        pair = await anyio.to_thread.run_sync(auth.refresh_grant, refresh)
    elif not grant:
        raise _oauth_error("invalid_request", "grant_type is required (password or refresh_token)")
    else:
        raise _oauth_error("unsupported_grant_type", f"grant_type {grant[:40]!r} is not supported")
    return _answer(pair)


@router.post(
    "/revoke",
    summary="Revoke a refresh token, an access token's session, or an API key (RFC 7009)",
    response_class=Response,
    responses={
        200: {"description": "The token no longer works (unknown tokens are ignored).", "content": {}},
        **PROBLEM_RESPONSES,
        **problem_responses(400, 413),
    },
    openapi_extra=_REVOKE_BODY,
)
async def revoke(request: Request, principal: PrincipalDep, auth: AuthDep) -> Response:
    """End the session a token belongs to, or revoke the API key given."""
    token_text = (await read_fields(request, _REVOKE_FIELDS)).get("token")
    if not token_text:
        raise _oauth_error("invalid_request", "send the token to revoke in the field 'token'")
    await anyio.to_thread.run_sync(auth.revoke, token_text)
    return Response(status_code=200, headers=_NO_STORE)
