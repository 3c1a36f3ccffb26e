"""The IAMMETER cloud API (``/api/v1``) as an ASGI app, driven by the shared household physics.

Routes, quotas and answers follow the vendor's API document: the token comes as ``?token=`` or
a ``token:`` header (a wrong one is HTTP 401 with the failure envelope); a bad parameter is the
failure envelope ``{"data": null, "successful": false, "message": "..."}``; a call over one of
the documented quotas gets an empty body ("the API will return nothing"). Quotas run on the
simulated clock. Paths and parameter names are case-insensitive, as on the vendor's server.

Beside the cloud, one of the account's meters (``device_sn``) also answers its local API,
``GET /monitorjson`` with HTTP Basic auth (admin/admin unless configured), from the same physics
at the simulated now; its layout follows the variants of :data:`devicesim.LAYOUTS`. The variant
``account_new_york`` puts the account in America/New_York, so its local times (``localTime``,
``rtcTime``, energyhistory's hours and days) are those of a zone far from the simulator's.
"""

from __future__ import annotations

import base64
import binascii
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

from meterhub.vendors.iammeter import analysis, devicesim, payloads
from meterhub.vendors.iammeter.account import (
    DEFAULT_METERS,
    DEFAULT_PLACES,
    DEFAULT_SITES,
    Account,
    MeterKind,
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
ACCOUNT_ZONE_VARIANT = "account_new_york"
"""The variant that puts the account in :data:`VARIANT_ZONE`."""
VARIANT_ZONE = "America/New_York"
VARIANTS: dict[str, str] = {
    **devicesim.LAYOUTS,
    ACCOUNT_ZONE_VARIANT: "an account in America/New_York (UTC-5, -4 in summer): its local times follow it",
}
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
    device_sn: str | None = None
    """The meter whose local API ``/monitorjson`` serves; None: the account's first three-phase
    grid meter (3FE34ABE of the default account), else its first meter."""
    device_user: str = "admin"
    device_password: str = "admin"  # noqa: S105 - the meters' factory default


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

    def __init__(self, account: Account, clock: SimClock, kit: SimKit) -> None:
        self.account = account
        self.clock = clock
        self.kit = kit
        self.quotas = Quotas()

    @property
    def zone(self) -> ZoneInfo:
        """Return the account's zone (that of the variant when it is on)."""
        return ZoneInfo(VARIANT_ZONE) if self.kit.variant(ACCOUNT_ZONE_VARIANT) else self.account.zone

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
        return now.astimezone(self.zone).date()

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
        data = payloads.meterdata_payload(state, self.zone, advanced=advanced)
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
            self.zone,
            self._today(now),
            max_days=HISTORY_DAYS,
            inclusive_end=True,
            history_days=HISTORY_DAYS,
        )
        uploads = list(
            islice(meter.uploads(days.start, min(days.end, now), interval_s), MAX_LIST_ROWS)
        )

        def rows() -> list[Any]:
            return [shape(meter.reading_at(at), self.zone) for at in uploads]

        return _answer(payloads.success(await run_in_threadpool(rows)))

    def _analysis_days(self, query: dict[str, str], now: datetime) -> DayRange:
        return optional_day_range(
            query,
            self.zone,
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
            analysis.power_summary, meter, days, now, self.zone
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
            days.first_day, days.last_day, total_min, gaps, self.zone
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
        zone = self.zone
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


class _Device:
    """One meter's local API: ``GET /monitorjson`` behind HTTP Basic auth."""

    def __init__(self, meter: SimMeter, clock: SimClock, kit: SimKit, login: tuple[str, str]) -> None:
        self.meter = meter
        self.clock = clock
        self.kit = kit
        self._login = login

    def routes(self) -> list[Route]:
        """Return the device's route."""
        return [Route("/monitorjson", self.monitorjson, methods=["GET"])]

    def _authorized(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user.encode(), self._login[0].encode()) and hmac.compare_digest(
            password.encode(), self._login[1].encode()
        )

    async def monitorjson(self, request: Request) -> Response:
        """GET /monitorjson: what the meter measures now, in the layout its firmware prints."""
        if not self._authorized(request):
            return Response("401 Unauthorized", 401, {"WWW-Authenticate": 'Basic realm="IAMMETER"'})
        layout = devicesim.MonitorjsonLayout(
            legacy=self.kit.variant("monitorjson_legacy"),
            net_row=self.kit.variant("monitorjson_nem"),
            reactive=self.kit.variant("monitorjson_reactive"),
        )
        state = await run_in_threadpool(self.meter.reading_at, self.clock.now())
        return JSONResponse(devicesim.monitorjson_payload(self.meter.serial, state, layout))


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


def _device_meter(account: Account, device_sn: str | None) -> SimMeter | None:
    """Return the meter that answers ``/monitorjson`` (see IammeterSimConfig.device_sn)."""
    if device_sn is not None:
        meter = account.meters.get(device_sn.upper())
        if meter is None:
            raise ValueError(f"device_sn {device_sn!r} is not a meter of the simulated account")
        return meter
    meters = list(account.meters.values())
    grid_3_phase = [m for m in meters if m.phases == 3 and m.spec.kind is MeterKind.GRID]
    chosen = grid_3_phase or meters
    return chosen[0] if chosen else None


def _info(account: Account, cloud: _Cloud, device_sn: str | None) -> dict[str, Any]:
    return {
        "user_name": account.user_name,
        "password": account.password,
        "token": account.token,
        "tz": cloud.zone.key,
        "device_sn": device_sn,
        "meters": [
            {"sn": m.serial, "phases": m.phases, "kind": str(m.spec.kind)}
            for m in account.meters.values()
        ],
        "places": [
            {
                "place_id": p.spec.place_id,
                "grid": p.grid.serial,
                "solar": p.solar and p.solar.serial,
                "special": p.special and p.special.serial,
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
    device_meter = _device_meter(account, config.device_sn)
    kit = SimKit("iammeter", clock, variants=VARIANTS)
    cloud = _Cloud(account, clock, kit)
    routes = cloud.routes()
    if device_meter is not None:
        device = _Device(device_meter, clock, kit, (config.device_user, config.device_password))
        routes += device.routes()
    kit.set_info(lambda: _info(account, cloud, device_meter.serial if device_meter else None))
    app = kit.app(routes)
    app.add_middleware(_LowercaseRouteWords)
    app.state.account = account
    return app
