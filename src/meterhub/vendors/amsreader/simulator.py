"""The AMS reader's local HTTP API as an ASGI app, driven by the shared household physics.

Every route of the vendor document is a GET of a fixed JSON file name. With a password set,
every route wants HTTP Basic auth and answers 401 without it, as the reader does.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from meterhub.vendors.simkit import SimKit

from . import payloads
from .configuration import configuration_json
from .device import VARIANTS, AmsReaderConfig, ReaderDevice

__all__ = ["ENDPOINTS", "FIRMWARE_ENDPOINTS", "create_app"]

Json = dict[str, Any]
Builder = Callable[[ReaderDevice, datetime], Json | None]

ENDPOINTS: tuple[tuple[str, Builder], ...] = (
    ("/data.json", lambda device, now: payloads.data_json(device, device.snapshot(now))),
    ("/dayplot.json", payloads.dayplot_json),
    ("/monthplot.json", payloads.monthplot_json),
    ("/energyprice.json", payloads.energyprice_json),
    ("/sysinfo.json", payloads.sysinfo_json),
    ("/tariff.json", payloads.tariff_json),
    ("/priceconfig.json", lambda device, _now: payloads.priceconfig_json(device)),
    ("/configuration.json", lambda device, _now: configuration_json(device)),
    (
        "/temperature.json",
        lambda device, now: payloads.temperature_json(device, device.snapshot(now)),
    ),
)
"""Each documented path and the function that shapes its answer."""
FIRMWARE_ENDPOINTS: tuple[tuple[str, Builder], ...] = (("/importprice.json", payloads.importprice_json),)
"""Paths newer firmware serves beyond the document; an answer of None is a 404 (older firmware)."""

_REALM = 'Basic realm="AMS reader"'


def _authorized(request: Request, config: AmsReaderConfig) -> bool:
    if not config.password:
        return True
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(username.encode(), config.username.encode()) and (
        hmac.compare_digest(password.encode(), config.password.encode())
    )


def _endpoint(device: ReaderDevice, build: Builder) -> Callable[[Request], Any]:
    async def answer(request: Request) -> Response:
        if not _authorized(request, device.config):
            return PlainTextResponse("Unauthorized", status_code=401, headers={"WWW-Authenticate": _REALM})
        now = device.clock.now()
        body = await run_in_threadpool(build, device, now)
        if body is None:
            return PlainTextResponse("Not found", status_code=404)
        return JSONResponse(body, headers={"Cache-Control": "no-cache, no-store"})

    return answer


def _info(device: ReaderDevice) -> dict[str, Any]:
    config = device.config
    return {
        "hostname": config.hostname,
        "mac": device.mac,
        "meter_id": config.meter_id,
        "list_type": config.list_type,
        "basic_auth": bool(config.password),
        "mqtt_topic": config.mqtt_topic,
    }


def create_app(seed: int = 1, speed: float = 1.0, **options: Any) -> Starlette:
    """Return the reader's HTTP API; ``options`` are :class:`AmsReaderConfig` fields.

    The reader answers nothing (see :mod:`meterhub.vendors.simkit`) while its site is offline.
    Its real-world variants (:data:`~.device.VARIANTS`) switch on through ``POST /_sim/variants``.
    """
    device = ReaderDevice(AmsReaderConfig(**options), seed, speed)
    kit = SimKit(
        "amsreader",
        device.clock,
        info=lambda: _info(device),
        offline_when=device.is_offline,
        variants=VARIANTS,
    )
    device.variant = kit.variant
    served = (*ENDPOINTS, *FIRMWARE_ENDPOINTS)
    routes = [Route(path, _endpoint(device, build), methods=["GET"]) for path, build in served]
    app = kit.app(routes)
    app.state.device = device
    return app
