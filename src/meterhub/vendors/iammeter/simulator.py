"""The IAMMETER cloud API (``/api/v1``) as an ASGI app, driven by the shared household physics.

Routes, quotas and answers follow the vendor's API document: the token comes as ``?token=`` or
a ``token:`` header (a wrong one is HTTP 401 with the failure envelope); a bad parameter is the
failure envelope ``{"data": null, "successful": false, "message": "..."}``; a call over one of
the documented quotas gets an empty body ("the API will return nothing"). Quotas run on the
simulated clock. Paths and parameter names are case-insensitive, as on the vendor's server.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import islice
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from meterhub.vendors.iammeter import analysis, payloads
from meterhub.vendors.iammeter.account import (
    DEFAULT_METERS,
    DEFAULT_PLACES,
    DEFAULT_SITES,
    Account,
    MeterSpec,
    PlaceSpec,
    SimMeter,
    SiteSpec,
    build_account,
)
from meterhub.vendors.iammeter.limits import (
    ANALYSIS_MAX_DAYS,
    ENERGYHISTORY_MAX_DAYS,
    HISTORY_DAYS,
    MAX_LIST_ROWS,
    Quotas,
)
from meterhub.vendors.iammeter.params import (
    BadRequest,
    DayRange,
    day_range,
    lowered_query,
    optional_day_range,
    positive_int,
    token_of,
)
from meterhub.vendors.physics import MeterState, SimClock
from meterhub.vendors.simkit import SimKit

__all__ = ["API_PREFIX", "IammeterSimConfig", "create_app"]

API_PREFIX = "/api/v1"
_PATH_WORDS = 4  # /api/v1/<group>/<name>: the words matched case-insensitively


@dataclass(frozen=True)
class IammeterSimConfig:
    """Options of the simulated IAMMETER cloud; all have defaults."""

    start: datetime | None = None
    """Where the simulated clock starts (aware); the real current time when None."""
    tz: str = "Europe/Oslo"
    sites: tuple[SiteSpec, ...] = DEFAULT_SITES
    meters: tuple[MeterSpec, ...] = DEFAULT_METERS
    places: tuple[PlaceSpec, ...] = DEFAULT_PLACES
    user_name: str = "test"
    password: str = "123456"  # noqa: S105 - the seed document's example account


class _LowercaseRouteWords:
    """Match ``/api/v1/Site/MeterDataList/...`` like ``/api/v1/site/meterdatalist/...``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            words = scope["path"].split("/")
            lowered = [w.lower() for w in words[: _PATH_WORDS + 1]] + words[_PATH_WORDS + 1 :]
            scope = {**scope, "path": "/".join(lowered)}
        await self.app(scope, receive, send)


def _answer(body: dict[str, Any], status_code: int = 200) -> Response:
    return JSONResponse(body, status_code=status_code)


_NOTHING = b""
"""What the vendor answers over a quota."""

Handler = Callable[[Request, dict[str, str], datetime], Awaitable[Response]]


class _Cloud:
    """The vendor's routes over one simulated account."""

    def __init__(self, account: Account, clock: SimClock) -> None:
        self.account = account
        self.clock = clock
        self.quotas = Quotas()

    def routes(self) -> list[Route]:
        """Return the vendor's routes under ``/api/v1``."""
        site = f"{API_PREFIX}/site"
        protected: tuple[tuple[str, Handler], ...] = (
            ("/meterdata/{sn}", self.meterdata),
            ("/meterdata2/{sn}", self.meterdata2),
            ("/meterdatalist/{sn}", self.meterdatalist),
            ("/meterdatalist", self.meterdatalist),
            ("/meterdatalist2/{sn}", self.meterdatalist2),
            ("/meterdatalist2", self.meterdatalist2),
            ("/poweranalysis", self.power_analysis),
            ("/offlineanalysis", self.offline_analysis),
            ("/metersdata", self.metersdata),
            ("/energyhistory/{place_id}", self.energyhistory),
            ("/energyhistory", self.energyhistory),
        )
        routes = [Route(f"{API_PREFIX}/user/login", self.login, methods=["POST"])]
        for path, handler in protected:
            routes.append(Route(f"{site}{path}", self._protected(handler), methods=["GET"]))
            if not path.endswith("}"):
                routes.append(Route(f"{site}{path}/", self._protected(handler), methods=["GET"]))
        return routes

    def _protected(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            query = lowered_query(request)
            if not hmac.compare_digest(
                token_of(request, query).encode(), self.account.token.encode()
            ):
                return _answer(payloads.failure("token is invalid or expired"), 401)
            try:
                return await handler(request, query, self.clock.now())
            except BadRequest as exc:
                return _answer(payloads.failure(str(exc)))

        return endpoint

    def _meter(self, request: Request, query: dict[str, str]) -> SimMeter:
        serial = str(request.path_params.get("sn") or query.get("sn", "")).strip().upper()
        if not serial:
            raise BadRequest("sn is required")
        meter = self.account.meters.get(serial)
        if meter is None:
            raise BadRequest(f"the meter {serial} is not in this account")
        return meter

    def _today(self, now: datetime) -> date:
        return now.astimezone(self.account.zone).date()

    async def login(self, request: Request) -> Response:
        """POST /user/login: the account's token, 5 calls an hour and 30 a day per IP."""
        host = request.client.host if request.client else "unknown"
        if not self.quotas.allow("login", host, self.clock.now()):
            return Response(_NOTHING)
        fields = await _login_fields(request)
        user_name = fields.get("username") or fields.get("user name") or fields.get("user", "")
        password = fields.get("password", "")
        account = self.account
        if not (
            hmac.compare_digest(user_name.encode(), account.user_name.encode())
            and hmac.compare_digest(password.encode(), account.password.encode())
        ):
            return _answer(payloads.failure("user name or password is incorrect"))
        data = {
            "id": account.user_id,
            "token": account.token,
            "refreshToken": account.refresh_token,
        }
        return _answer(payloads.success(data))

    async def meterdata(self, request: Request, query: dict[str, str], now: datetime) -> Response:
        """GET /site/meterdata/{sn}: the latest upload without the power factor."""
        return await self._latest(request, query, now, advanced=False)

    async def meterdata2(self, request: Request, query: dict[str, str], now: datetime) -> Response:
        """GET /site/meterdata2/{sn}: the latest upload with the power factor."""
        return await self._latest(request, query, now, advanced=True)

    async def _latest(
        self, request: Request, query: dict[str, str], now: datetime, *, advanced: bool
    ) -> Response:
        meter = self._meter(request, query)
        if not self.quotas.allow("meterdata", meter.serial, now):
            return Response(_NOTHING)
        at = meter.latest_upload(now)
        if at is None:
            raise BadRequest(f"the meter {meter.serial} has not uploaded any data")
        state = await run_in_threadpool(meter.reading_at, at)
        data = payloads.meterdata_payload(state, self.account.zone, advanced=advanced)
        return _answer(payloads.success(data))

    async def meterdatalist(
        self, request: Request, query: dict[str, str], now: datetime
    ) -> Response:
        """GET /site/meterdatalist/{sn}: flat history rows, at most 2000, latest month."""
        return await self._history(request, query, now, payloads.meterdatalist_row)

    async def meterdatalist2(
        self, request: Request, query: dict[str, str], now: datetime
    ) -> Response:
        """GET /site/meterdatalist2/{sn}: history items with the power factor."""
        return await self._history(request, query, now, payloads.meterdatalist2_item)

    async def _history(
        self,
        request: Request,
        query: dict[str, str],
        now: datetime,
        shape: Callable[[MeterState, ZoneInfo], Any],
    ) -> Response:
        meter = self._meter(request, query)
        interval_s = positive_int(query, "interval")
        days = day_range(
            query,
            self.account.zone,
            self._today(now),
            max_days=HISTORY_DAYS,
            inclusive_end=True,
            history_days=HISTORY_DAYS,
        )
        uploads = list(
            islice(meter.uploads(days.start, min(days.end, now), interval_s), MAX_LIST_ROWS)
        )

        def rows() -> list[Any]:
            return [shape(meter.reading_at(at), self.account.zone) for at in uploads]

        return _answer(payloads.success(await run_in_threadpool(rows)))

    def _analysis_days(self, query: dict[str, str], now: datetime) -> DayRange:
        return optional_day_range(
            query,
            self.account.zone,
            self._today(now),
            max_days=ANALYSIS_MAX_DAYS,
            history_days=HISTORY_DAYS,
        )

    async def power_analysis(
        self, request: Request, query: dict[str, str], now: datetime
    ) -> Response:
        """GET /site/powerAnalysis?sn=: average, daytime average, min and max power."""
        meter = self._meter(request, query)
        days = self._analysis_days(query, now)
        if not self.quotas.allow("powerAnalysis", meter.serial, now):
            return Response(_NOTHING)
        summary = await run_in_threadpool(
            analysis.power_summary, meter, days, now, self.account.zone
        )
        return _answer(payloads.success(payloads.power_analysis_payload(summary)))

    async def offline_analysis(
        self, request: Request, query: dict[str, str], now: datetime
    ) -> Response:
        """GET /site/offlineAnalysis?sn=: the gaps longer than ``interval`` minutes."""
        meter = self._meter(request, query)
        interval_min = positive_int(query, "interval", default=5)
        days = self._analysis_days(query, now)
        if not self.quotas.allow("offlineAnalysis", meter.serial, now):
            return Response(_NOTHING)
        end = max(days.start, min(days.end, now))
        gaps = [g for g in meter.offline_gaps(days.start, end) if g.duration_min > interval_min]
        total_min = int((end - days.start).total_seconds() // 60)
        data = payloads.offline_analysis_payload(
            days.first_day, days.last_day, total_min, gaps, self.account.zone
        )
        return _answer(payloads.success(data))

    async def metersdata(self, request: Request, query: dict[str, str], now: datetime) -> Response:
        """GET /site/metersdata: the latest upload of every meter, once per 5 minutes."""
        if not self.quotas.allow("metersdata", self.account.token, now):
            return Response(_NOTHING)

        def items() -> list[Any]:
            latest = [(m, m.latest_upload(now)) for m in self.account.meters.values()]
            return [
                payloads.metersdata_item(
                    m.serial, m.reading_at(at), m.spec.shape, m.spec.wired_phases
                )
                for m, at in latest
                if at is not None
            ]

        return _answer(payloads.success(await run_in_threadpool(items)))

    async def energyhistory(
        self, request: Request, query: dict[str, str], now: datetime
    ) -> Response:
        """GET /site/energyhistory/{place_id}: a place's kWh by hour (7 days) or day (90)."""
        place_text = str(request.path_params.get("place_id") or query.get("place_id", ""))
        place = (
            self.account.places.get(int(place_text))
            if place_text.isascii() and place_text.isdigit()
            else None
        )
        if place is None:
            raise BadRequest(f"the place {place_text or '(none)'} is not in this account")
        group_by = (query.get("groupby") or query.get("grouphy", "")).lower()
        if group_by not in ENERGYHISTORY_MAX_DAYS:
            raise BadRequest("groupby must be day or hour")
        zone = self.account.zone
        days = day_range(
            query,
            zone,
            self._today(now),
            max_days=ENERGYHISTORY_MAX_DAYS[group_by],
            inclusive_end=False,
        )
        edges = analysis.bucket_edges(days, group_by)
        buckets = await run_in_threadpool(place.energy_buckets, edges, now)
        data = [payloads.energyhistory_item(bucket, zone) for bucket in buckets]
        return _answer(payloads.success(data))


async def _login_fields(request: Request) -> dict[str, str]:
    """Return the login body's fields keyed by lower-case name, from JSON or a urlencoded form."""
    body = await request.body()
    if "json" in request.headers.get("content-type", ""):
        try:
            parsed = json.loads(body)
        except ValueError:
            return {}
        fields: dict[Any, Any] = parsed if isinstance(parsed, dict) else {}
    else:
        fields = dict(parse_qsl(body.decode("utf-8", errors="replace")))
    return {str(key).lower(): str(value) for key, value in fields.items()}


def _info(account: Account) -> dict[str, Any]:
    return {
        "user_name": account.user_name,
        "password": account.password,
        "token": account.token,
        "tz": account.zone.key,
        "meters": [
            {"sn": m.serial, "phases": m.phases, "kind": str(m.spec.kind)}
            for m in account.meters.values()
        ],
        "places": [
            {
                "place_id": p.spec.place_id,
                "grid": p.grid.serial,
                "solar": p.solar and p.solar.serial,
            }
            for p in account.places.values()
        ],
    }


def create_app(seed: int = 1, speed: float = 1.0, **options: Any) -> Starlette:
    """Return the simulated IAMMETER cloud; ``options`` are :class:`IammeterSimConfig` fields."""
    config = IammeterSimConfig(**options)
    clock = SimClock(config.start, speed)
    start = clock.now()
    account = build_account(
        seed,
        start - timedelta(microseconds=start.microsecond),
        config.tz,
        config.sites,
        config.meters,
        config.places,
        (config.user_name, config.password),
    )
    cloud = _Cloud(account, clock)
    kit = SimKit("iammeter", clock, info=lambda: _info(account))
    app = kit.app(cloud.routes())
    app.add_middleware(_LowercaseRouteWords)
    app.state.account = account
    return app
