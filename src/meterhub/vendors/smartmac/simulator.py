"""A smart-MAC meter's local HTTP API (``GET /?page=getdata``) as an ASGI app.

One app is one device. It answers ``getdata`` with ``devid`` and ``devpass`` (the PIN), switches
its external-load relay on ``&pout=``, and refuses a request that comes sooner than its rate
class allows on the simulated clock: standard devices once a minute, extended ones every 6 s
(HTTP 429). Errors are the device's own small JSON ``{"devid", "time", "error"}``. While the
site's physics says the device is offline it answers nothing (see :mod:`..simkit`).
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meterhub.vendors.physics import Household, SimClock, SiteConfig
from meterhub.vendors.simkit import QuotaWindow, SimKit
from meterhub.vendors.smartmac.payloads import (
    REQUEST_POUT_OFF,
    REQUEST_POUT_ON,
    error_payload,
    getdata_payload,
    render_json,
)

__all__ = [
    "EXTENDED_INTERVAL_S",
    "STANDARD_INTERVAL_S",
    "SmartMacSimConfig",
    "create_app",
]

STANDARD_INTERVAL_S = 60.0
"""Standard devices answer at most one request per minute."""
EXTENDED_INTERVAL_S = 6.0
"""Extended devices answer one request every 6 seconds."""

_HEADERS = {"Server": "smart-MAC", "Connection": "close"}
_MEDIA_TYPE = "application/json; charset=utf-8"
_RATE_KEY = "device"  # the device serves one client at a time, so the limit is device-wide


@dataclass(frozen=True)
class SmartMacSimConfig:
    """Options of one simulated smart-MAC device; all have defaults."""

    start: datetime | None = None
    """Where the simulated clock starts (aware); the real current time when None."""
    devid: str = "1728053249"
    devpass: str = "012345"
    phases: int = 3
    extended: bool = False
    """Extended rate class (every 6 s) instead of standard (once a minute)."""
    newer_firmware: bool = False
    """Add ``Fr1..3``, ``A``, ``W``, ``TWh`` and the top-level ``powset``."""
    relay_on: bool = False
    power_limit_w: int = 0
    """What newer firmware reports as ``powset`` (0: no limit)."""
    raw_line_breaks: bool = True
    """Write the ``br*`` names as a raw line break, as the device does (not valid strict JSON)."""
    tz: str = "Europe/Oslo"
    base_load_w: float = 900.0
    pv_peak_w: float = 0.0
    initial_import_kwh: float = 45091.722
    offline: tuple[tuple[datetime, datetime], ...] = ()
    resets: tuple[datetime, ...] = ()
    """Instants (aware) at which the device's registers are reset to zero."""


class _Device:
    """The device's state: physics, clock, relay and rate limiter."""

    def __init__(self, config: SmartMacSimConfig, seed: int, speed: float) -> None:
        self.config = config
        self.clock = SimClock(config.start, speed)
        self.household = Household(
            SiteConfig(
                seed=seed,
                phases=config.phases,
                tz=config.tz,
                base_load_w=config.base_load_w,
                pv_peak_w=config.pv_peak_w,
                offline=config.offline,
                resets=config.resets,
                initial_import_kwh=config.initial_import_kwh,
            )
        )
        self.relay_on = config.relay_on
        interval_s = EXTENDED_INTERVAL_S if config.extended else STANDARD_INTERVAL_S
        self.rate = QuotaWindow(1, interval_s)

    def authorized(self, devid: str, devpass: str) -> bool:
        """Return whether ``devid`` and ``devpass`` are this device's."""
        return hmac.compare_digest(devid.encode(), self.config.devid.encode()) and (
            hmac.compare_digest(devpass.encode(), self.config.devpass.encode())
        )

    def answer(self, now: datetime) -> dict[str, Any]:
        """Return the ``getdata`` answer at ``now``."""
        return getdata_payload(
            self.config.devid,
            self.household.state_at(now),
            now,
            self.relay_on,
            newer_firmware=self.config.newer_firmware,
            power_limit_w=self.config.power_limit_w,
        )


def _reply(device: _Device, body: dict[str, Any], status_code: int = 200) -> Response:
    content = render_json(body, raw_line_breaks=device.config.raw_line_breaks)
    return Response(content, status_code=status_code, headers=_HEADERS, media_type=_MEDIA_TYPE)


def _error(device: _Device, devid: str, now: datetime, status_code: int, message: str) -> Response:
    return _reply(device, error_payload(devid, now, message), status_code)


def _endpoint(device: _Device) -> Callable[[Request], Awaitable[Response]]:
    async def getdata(request: Request) -> Response:
        query = request.query_params
        now = device.clock.now()
        devid = query.get("devid", "")
        if query.get("page") != "getdata":
            return _error(device, devid, now, 404, "unknown page; use ?page=getdata")
        if not device.rate.allow(_RATE_KEY, now):
            retry_s = math.ceil(device.rate.retry_after_s(_RATE_KEY, now))
            response = _error(
                device, devid, now, 429, f"too many requests; try again in {retry_s} s"
            )
            response.headers["Retry-After"] = str(retry_s)
            return response
        if not device.authorized(devid, query.get("devpass", "")):
            return _error(device, devid, now, 401, "access denied: wrong devid or devpass")
        pout = query.get("pout")
        if pout is not None:
            if pout not in (REQUEST_POUT_ON, REQUEST_POUT_OFF):
                message = f"pout must be {REQUEST_POUT_ON} (turn on) or {REQUEST_POUT_OFF} (off)"
                return _error(device, devid, now, 400, message)
            device.relay_on = pout == REQUEST_POUT_ON
        return _reply(device, await run_in_threadpool(device.answer, now))

    return getdata


def _info(device: _Device) -> dict[str, Any]:
    config = device.config
    return {
        "devid": config.devid,
        "devpass": config.devpass,
        "phases": config.phases,
        "rate_class": "extended" if config.extended else "standard",
        "min_interval_s": device.rate.window_s,
        "newer_firmware": config.newer_firmware,
        "relay_on": device.relay_on,
    }


def create_app(seed: int = 1, speed: float = 1.0, **options: Any) -> Starlette:
    """Return one simulated device; ``options`` are :class:`SmartMacSimConfig` fields."""
    device = _Device(SmartMacSimConfig(**options), seed, speed)
    kit = SimKit(
        "smartmac",
        device.clock,
        info=lambda: _info(device),
        offline_when=device.household.is_offline,
    )
    app = kit.app([Route("/", _endpoint(device), methods=["GET"])])
    app.state.device = device
    return app
