"""The UMeter API as an ASGI app, driven by the shared household physics.

Routes, as the seed and the captured client use them (the three real hosts are one app here):

    POST /token                                  OAuth2 password or refresh_token grant, form body
    GET  /api/customer                           the user with addresses[] and tariff facts
    GET  /api/v2/measurements/year/YYYY          per month  } ?meteringPointIds=EAN[,EAN]
    GET  /api/v2/measurements/month/YYYYMM       per day    }  &measKeys=import|export
    GET  /api/v2/measurements/date/YYYYMMDD      per 15 min }  (&explain=false)
    GET  /api/P4/{ean}/{YYYYMMDD}/{YYYYMMDD}     the captured client's range call (?explain=)

Errors keep the vendor's shapes: the token endpoint answers OAuth2 errors
(``{"error": "invalid_grant", "error_description": ...}``, HTTP 400); the API answers ASP.NET
Web API messages (``{"Message": ...}``, with ``MessageDetail`` for a bad request) with 400, 401
(bad or expired token, ``WWW-Authenticate: Bearer``), 404 (unknown metering point or route) or
405. Several metering point ids give a JSON list with one answer each, in order. Tokens expire
against the simulated clock.

Variant ``late_data`` (``POST /_sim/variants {"late_data": true}``) delivers grid-operator data
late, as real P4 data comes: nothing of a local day before 06:00 the next day, its quarter hours
up to noon from then, the whole day from 18:00 the next day. ``info()`` counts the measurement
periods asked (``periods_asked``: ``{"date/20260302": 2, ...}``) so tests see which days are read
again. A day in ``UMeterSimConfig.recorded_days`` is answered with its captured answer as it is.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from meterhub.vendors.physics import SimClock
from meterhub.vendors.simkit import SimKit

from .measurements import Period, measurements, parse_meas_keys, parse_period
from .payloads import ZONE, UMeterAccount, UMeterSimConfig, local_midnight

__all__ = ["LATE_COMPLETE_AFTER", "LATE_PARTIAL_AFTER", "UMeterSimConfig", "create_app", "published_until"]

LATE_DATA = "late_data"
LATE_PARTIAL_AFTER = timedelta(hours=6)
"""With ``late_data``: a day's quarter hours up to noon appear this long after the day ends."""
LATE_COMPLETE_AFTER = timedelta(hours=18)
"""With ``late_data``: the whole day appears this long after it ends."""


def published_until(now: datetime) -> datetime:
    """Return up to when grid-operator data is out at ``now`` when it comes late."""
    today = now.astimezone(ZONE).date()
    yesterday = today - timedelta(days=1)
    midnight = local_midnight(today)
    if now >= midnight + LATE_COMPLETE_AFTER:
        return midnight
    if now >= midnight + LATE_PARTIAL_AFTER:
        return datetime.combine(yesterday, time(12), tzinfo=ZONE).astimezone(midnight.tzinfo)
    return local_midnight(yesterday)

_DENIED = "Authorization has been denied for this request."
_INVALID = "The request is invalid."


@dataclass
class _Token:
    username: str
    expires_at: datetime


class UMeterServer:
    """The state behind the routes: the account, issued tokens and the simulated clock."""

    def __init__(self, config: UMeterSimConfig, kit: SimKit) -> None:
        self.config = config
        self.kit = kit
        self.account = UMeterAccount(config)
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, str] = {}
        self.periods_asked: Counter[str] = Counter()

    def info(self) -> dict[str, Any]:
        """Return the facts a tester needs: credentials and identifiers."""
        return {
            "credentials": {"username": self.config.username, "password": self.config.password},
            "customer_id": self.account.customer_id,
            "address_ids": [self.account.address_id],
            "eans": [self.account.ean],
            "device_ids": [self.account.ean],
            "zone": str(ZONE),
            "periods_asked": dict(sorted(self.periods_asked.items())),
        }

    async def token(self, request: Request) -> Response:
        """Issue a token pair for a password or refresh_token grant."""
        fields = _form_fields(await request.body())
        grant = fields.get("grant_type", "")
        if grant == "password":
            if "username" not in fields or "password" not in fields:
                return _oauth_error("invalid_request", "username and password are required.")
            known = secrets.compare_digest(fields["username"], self.config.username)
            if not (known and secrets.compare_digest(fields["password"], self.config.password)):
                return _oauth_error("invalid_grant", "The user name or password is incorrect.")
            return self._issue(self.config.username)
        if grant == "refresh_token":
            username = self._refresh.pop(fields.get("refresh_token", ""), None)
            if username is None:
                return _oauth_error("invalid_grant", "The refresh token is invalid or expired.")
            return self._issue(username)
        if not grant:
            return _oauth_error("invalid_request", "grant_type is required.")
        return _oauth_error("unsupported_grant_type", f"grant_type {grant!r} is not supported.")

    async def customer(self, request: Request) -> Response:
        """Answer ``GET /api/customer``."""
        if self._user(request) is None:
            return _denied()
        return JSONResponse(self.account.customer())

    async def measurements(self, request: Request) -> Response:
        """Answer ``GET /api/v2/measurements/{kind}/{value}``."""
        if self._user(request) is None:
            return _denied()
        params = request.query_params
        try:
            period = parse_period(request.path_params["kind"], request.path_params["value"])
            keys = parse_meas_keys(params.getlist("measKeys"))
            explain = _flag(params.get("explain"), default=True)
        except ValueError as exc:
            return _bad_request(str(exc))
        ids = [part.strip() for part in params.get("meteringPointIds", "").split(",")]
        ids = [part for part in ids if part]
        if not ids:
            return _bad_request("meteringPointIds is required.")
        self.periods_asked[f"{request.path_params['kind']}/{request.path_params['value']}"] += 1
        recorded = self.config.recorded_days.get(request.path_params["value"])
        if request.path_params["kind"] == "date" and recorded is not None and ids == [self.account.ean]:
            return JSONResponse(recorded)
        return self._answer(ids, period, keys, explain)

    async def p4(self, request: Request) -> Response:
        """Answer ``GET /api/P4/{ean}/{from}/{to}`` (local days, ``to`` exclusive)."""
        if self._user(request) is None:
            return _denied()
        try:
            first = parse_period("date", request.path_params["start"]).start
            last = parse_period("date", request.path_params["end"]).start
            explain = _flag(request.query_params.get("explain"), default=False)
        except ValueError as exc:
            return _bad_request(str(exc))
        if not timedelta(days=1) <= last - first <= timedelta(days=366):
            return _bad_request("the range must cover 1 to 366 days, end exclusive.")
        resolution = "quarter" if (last - first).days == 1 else "day"
        period = Period(first, last, resolution)
        return self._answer([request.path_params["ean"]], period, parse_meas_keys([]), explain)

    def _answer(self, ids: list[str], period: Period, keys: tuple[str, ...], explain: bool) -> Response:
        unknown = [ean for ean in ids if ean != self.account.ean]
        if unknown:
            return _message(404, f"Metering point '{unknown[0]}' was not found.")
        now = self.kit.clock.now()
        if self.kit.variant(LATE_DATA):
            now = min(now, published_until(now))
        answers = [measurements(self.account, period, keys, now, explain) for _ in ids]
        return JSONResponse(answers[0] if len(answers) == 1 else answers)

    def _issue(self, username: str) -> Response:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        lifetime_s = self.config.token_lifetime_s
        expires_at = self.kit.clock.now() + timedelta(seconds=lifetime_s)
        self._access[access] = _Token(username, expires_at)
        self._refresh[refresh] = username
        body = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": lifetime_s,
            "refresh_token": refresh,
            "userName": username,
        }
        return JSONResponse(body, headers={"Cache-Control": "no-cache", "Pragma": "no-cache"})

    def _user(self, request: Request) -> str | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = self._access.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None or token.expires_at <= self.kit.clock.now():
            return None
        return token.username


def create_app(
    config: UMeterSimConfig | None = None,
    *,
    seed: int | None = None,
    speed: float | None = None,
    **options: Any,
) -> Starlette:
    """Return the UMeter API app; ``seed``, ``speed`` and ``options`` (config fields) override ``config``."""
    config = config or UMeterSimConfig()
    if seed is not None:
        config = replace(config, seed=seed)
    if speed is not None:
        config = replace(config, speed=speed)
    if options:
        config = replace(config, **options)
    variants = {
        LATE_DATA: "grid-operator data comes the next day: a day's morning from 06:00, all of it from 18:00"
    }
    kit = SimKit("umeter", SimClock(config.start, config.speed), variants=variants)
    server = UMeterServer(config, kit)
    kit.set_info(server.info)
    routes = [
        Route("/token", server.token, methods=["POST"]),
        Route("/api/customer", server.customer, methods=["GET"]),
        Route("/api/v2/measurements/{kind}/{value}", server.measurements, methods=["GET"]),
        Route("/api/P4/{ean}/{start}/{end}", server.p4, methods=["GET"]),
    ]
    app = kit.app(routes, exception_handlers={HTTPException: _http_error, Exception: _crash})
    app.state.server = server
    return app


def _form_fields(body: bytes) -> dict[str, str]:
    """Read the token request: a form body (whatever its Content-Type says) or a JSON object."""
    text = body.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {key: values[-1] for key, values in parse_qs(text).items()}


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise ValueError(f"explain={value!r} is not true or false")


def _message(status: int, message: str, detail: str | None = None) -> Response:
    body = {"Message": message} if detail is None else {"Message": message, "MessageDetail": detail}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _bad_request(detail: str) -> Response:
    return _message(400, _INVALID, detail)


def _denied() -> Response:
    return _message(401, _DENIED)


def _oauth_error(error: str, description: str) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=400)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return _message(404, f"No HTTP resource was found that matches the request URI '{request.url}'.")
    if status == 405:
        return _message(405, f"The requested resource does not support http method '{request.method}'.")
    return _message(status, "An error has occurred.")


async def _crash(request: Request, exc: Exception) -> Response:
    return _message(500, "An error has occurred.")
