"""What every vendor simulator shares: a simulated clock, call counts, faults and quotas.

A vendor simulator builds its Starlette app through :class:`SimKit`::

    def create_app(seed: int = 1, speed: float = 1.0) -> Starlette:
        kit = SimKit("umeter", SimClock(speed=speed), info=lambda: {"ean": ...})
        return kit.app([Route("/api/customer", customer)])

and its handlers read ``kit.clock.now()``. The kit adds the control routes

    GET  /_sim/info     vendor, simulated time and speed, faults, plus the vendor's ``info()``
    POST /_sim/clock    {"now": "<ISO 8601 with offset>"} and/or {"speed": <factor >= 0>}
    GET  /_sim/calls    {"<route path>": count, ...}; DELETE resets the counts;
                        ?times=true: {"<route path>": ["<simulated ISO 8601 instant>", ...]}
                        (the latest CALL_TIMES_KEPT calls of each route)
    POST /_sim/faults   a Faults object as JSON; omitted fields take their defaults
    GET  /_sim/variants {"<variant>": {"on": bool, "about": "<what it reproduces>"}, ...}
    POST /_sim/variants {"<variant>": true|false, ...}: switch real-world variants on or off

A variant reproduces a way real devices or services behave beside the documented happy path
(an unset clock, an old payload layout, data delivered late, a renamed point). A simulator
declares its variants with ``SimKit(..., variants={"name": "what it reproduces"})`` and its
handlers ask ``kit.variant("name")``; ``meterhub simulate --variant NAME`` switches one on.

which are neither counted nor faulted. Every other request is counted under its route's path
template (the raw path when no route matches), then faults apply in this order:

- ``offline`` (or the simulator's ``offline_when(now)``): the server starts a 503 answer and
  drops the connection before any body. Over a real socket the client sees the connection closed
  mid-answer (``httpx.RemoteProtocolError``); in process, with ``httpx.ASGITransport``, the
  :class:`SimulatedOffline` raised is itself an ``httpx.ConnectError``. Either way a client's
  ``except httpx.TransportError`` sees a failure and never a body.
- ``latency_s``: the answer is delayed by that many real seconds.
- ``error_status`` with ``error_every`` = N > 0: every Nth faultable call since the faults were
  set answers ``error_status`` with ``{"error": "simulated fault"}``.
- ``truncate_json``: a JSON answer keeps only the first half of its body (content-length fixed).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meterhub.vendors.physics import SimClock

__all__ = ["CALL_TIMES_KEPT", "SIM_PREFIX", "Faults", "QuotaWindow", "SimKit", "SimulatedOffline"]

CALL_TIMES_KEPT = 100_000
"""How many call instants each route keeps for ``GET /_sim/calls?times=true``."""
SIM_PREFIX = "/_sim/"
"""Paths under this prefix control the simulator; they are never counted or faulted."""

InfoFn = Callable[[], Mapping[str, Any]]


@dataclass
class Faults:
    """Faults a simulator injects into the vendor's own routes."""

    latency_s: float = 0.0
    error_status: int | None = None
    error_every: int = 0
    truncate_json: bool = False
    offline: bool = False

    @classmethod
    def from_json(cls, body: object) -> Faults:
        """Build Faults from a JSON object, raising ValueError on unknown or mistyped fields."""
        if not isinstance(body, dict):
            raise ValueError("faults must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(body) - known)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        faults = cls(**body)
        numbers_ok = _is_number(faults.latency_s) and faults.latency_s >= 0
        status = faults.error_status
        status_ok = status is None or (_is_int(status) and 100 <= status <= 599)
        every_ok = _is_int(faults.error_every) and faults.error_every >= 0
        flags_ok = isinstance(faults.truncate_json, bool) and isinstance(faults.offline, bool)
        if not (numbers_ok and status_ok and every_ok and flags_ok):
            raise ValueError(f"malformed faults {body!r}")
        return faults


class SimulatedOffline(httpx.ConnectError):
    """Raised inside the app when the simulated device is offline (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__("simulated device is offline")


class QuotaWindow:
    """A sliding-window quota per key: at most ``limit`` calls in any ``window_s`` seconds.

    Times come from the simulated clock; if it moves backwards, a key's history is forgotten.
    """

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._calls: dict[str, deque[datetime]] = {}

    def allow(self, key: str, now: datetime) -> bool:
        """Record a call of ``key`` at ``now`` and return True, or return False if over quota."""
        calls = self._prune(key, now)
        if len(calls) >= self.limit:
            return False
        calls.append(now)
        return True

    def retry_after_s(self, key: str, now: datetime) -> float:
        """Return the seconds until ``key`` may call again (0 when it may now)."""
        calls = self._prune(key, now)
        if len(calls) < self.limit:
            return 0.0
        return max(0.0, self.window_s - (now - calls[0]).total_seconds())

    def _prune(self, key: str, now: datetime) -> deque[datetime]:
        calls = self._calls.setdefault(key, deque())
        if calls and calls[-1] > now:
            calls.clear()
        while calls and (now - calls[0]).total_seconds() >= self.window_s:
            calls.popleft()
        return calls


class SimKit:
    """The clock, call counts, faults and control routes of one vendor simulator."""

    def __init__(
        self,
        vendor: str,
        clock: SimClock | None = None,
        info: InfoFn | None = None,
        faults: Faults | None = None,
        offline_when: Callable[[datetime], bool] | None = None,
        variants: Mapping[str, str] | None = None,
    ) -> None:
        self.vendor = vendor
        self.variants_about: dict[str, str] = dict(variants or {})
        """Each variant this simulator can reproduce, with what it reproduces."""
        self.variants_on: set[str] = set()
        self.clock = clock or SimClock()
        self.faults = faults or Faults()
        self.calls: Counter[str] = Counter()
        self.call_times: dict[str, deque[datetime]] = {}
        """The simulated instants of the latest counted calls, per route, oldest first."""
        self._info = info or dict
        self._offline_when = offline_when
        self._routes: list[BaseRoute] = []
        self._faultable_calls = 0

    def app(self, routes: Sequence[BaseRoute], **starlette_kwargs: Any) -> Starlette:
        """Return the simulator's Starlette app: its routes, the control routes, the faults."""
        self._routes = list(routes)
        app = Starlette(
            routes=[*self.control_routes(), *self._routes],
            middleware=[Middleware(_FaultMiddleware, kit=self)],
            **starlette_kwargs,
        )
        app.state.kit = self
        return app

    def control_routes(self) -> list[Route]:
        """Return the ``/_sim/*`` routes."""
        return [
            Route("/_sim/info", self._get_info, methods=["GET"]),
            Route("/_sim/clock", self._set_clock, methods=["POST"]),
            Route("/_sim/calls", self._get_calls, methods=["GET", "DELETE"]),
            Route("/_sim/faults", self._set_faults, methods=["GET", "POST"]),
            Route("/_sim/variants", self._variants, methods=["GET", "POST"]),
        ]

    def variant(self, name: str) -> bool:
        """Return whether the variant ``name`` is switched on."""
        return name in self.variants_on

    def set_variant(self, name: str, on: bool = True) -> None:
        """Switch the variant ``name`` on or off; raise ValueError naming the known ones."""
        if name not in self.variants_about:
            known = ", ".join(sorted(self.variants_about)) or "none"
            raise ValueError(f"{self.vendor} has no variant {name!r} (known: {known})")
        if on:
            self.variants_on.add(name)
        else:
            self.variants_on.discard(name)

    def variants(self) -> dict[str, dict[str, Any]]:
        """Return each declared variant with whether it is on and what it reproduces."""
        return {
            name: {"on": name in self.variants_on, "about": about}
            for name, about in sorted(self.variants_about.items())
        }

    def set_info(self, info: InfoFn) -> None:
        """Set the callable whose mapping ``GET /_sim/info`` adds to the kit's own facts."""
        self._info = info

    def set_faults(self, faults: Faults) -> None:
        """Replace the faults and restart the every-Nth-call count."""
        self.faults = faults
        self._faultable_calls = 0

    def info(self) -> dict[str, Any]:
        """Return what ``GET /_sim/info`` shows."""
        return {
            "vendor": self.vendor,
            "now": self.clock.now().isoformat(),
            "speed": self.clock.speed,
            "faults": asdict(self.faults),
            "variants": sorted(self.variants_on),
            **self._info(),
        }

    def endpoint(self, scope: Scope) -> str:
        """Return the key a request is counted under: its route's path template or its path."""
        for route in self._routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return str(getattr(route, "path", scope["path"]))
        return str(scope["path"])

    def count_call(self, scope: Scope) -> None:
        """Count a vendor call under its route, at the simulated now."""
        endpoint = self.endpoint(scope)
        self.calls[endpoint] += 1
        times = self.call_times.get(endpoint)
        if times is None:
            times = self.call_times[endpoint] = deque(maxlen=CALL_TIMES_KEPT)
        times.append(self.clock.now())

    def is_offline(self) -> bool:
        """Return whether the device answers nothing right now."""
        if self.faults.offline:
            return True
        return self._offline_when is not None and self._offline_when(self.clock.now())

    def next_error_status(self) -> int | None:
        """Count a faultable call; return the status to answer if it is an Nth call."""
        self._faultable_calls += 1
        faults = self.faults
        if faults.error_status is None or faults.error_every <= 0:
            return None
        return faults.error_status if self._faultable_calls % faults.error_every == 0 else None

    async def _get_info(self, request: Request) -> Response:
        return JSONResponse(self.info())

    async def _set_clock(self, request: Request) -> Response:
        try:
            body = await _json_object(request)
            unknown = sorted(set(body) - {"now", "speed"})
            if unknown or not body:
                raise ValueError('give {"now": "<ISO 8601 with offset>"} and/or {"speed": <n>}')
            if "speed" in body and (not _is_number(body["speed"]) or body["speed"] < 0):
                raise ValueError("speed must be a number >= 0")
            now = _parse_instant(body["now"]) if "now" in body else None
        except ValueError as exc:
            return _bad_request(str(exc))
        if "speed" in body:
            self.clock.set_speed(float(body["speed"]))
        if now is not None:
            self.clock.set(now)
        return JSONResponse({"now": self.clock.now().isoformat(), "speed": self.clock.speed})

    async def _get_calls(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.calls.clear()
            self.call_times.clear()
        if request.query_params.get("times", "").lower() in ("1", "true"):
            times = {path: [at.isoformat() for at in ats] for path, ats in self.call_times.items()}
            return JSONResponse(times)
        return JSONResponse(dict(self.calls))

    async def _set_faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                self.set_faults(Faults.from_json(await _json_object(request)))
            except (ValueError, TypeError) as exc:
                return _bad_request(str(exc))
        return JSONResponse(asdict(self.faults))

    async def _variants(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                body = await _json_object(request)
                if not body or not all(isinstance(v, bool) for v in body.values()):
                    raise ValueError('give {"<variant>": true|false, ...}')
                unknown = sorted(set(body) - set(self.variants_about))
                if unknown:  # check every name before switching any
                    known = ", ".join(sorted(self.variants_about)) or "none"
                    raise ValueError(f"{self.vendor} has no variant {unknown[0]!r} (known: {known})")
                for name, on in body.items():
                    self.set_variant(name, on)
            except ValueError as exc:
                return _bad_request(str(exc))
        return JSONResponse(self.variants())


class _FaultMiddleware:
    """Count every vendor call and apply the kit's faults to it."""

    def __init__(self, app: ASGIApp, kit: SimKit) -> None:
        self.app = app
        self.kit = kit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(SIM_PREFIX):
            await self.app(scope, receive, send)
            return
        kit = self.kit
        kit.count_call(scope)
        status = kit.next_error_status()
        if kit.is_offline():
            await send({"type": "http.response.start", "status": 503, "headers": []})
            raise SimulatedOffline()
        if kit.faults.latency_s > 0:
            await asyncio.sleep(kit.faults.latency_s)
        try:
            if status is not None:
                await JSONResponse({"error": "simulated fault"}, status_code=status)(scope, receive, send)
            elif kit.faults.truncate_json:
                await self.app(scope, receive, _Truncator(send))
            else:
                await self.app(scope, receive, send)
        except ClientDisconnect:
            return  # the caller hung up (a hub stopping) before its request was read: nobody to answer


class _Truncator:
    """An ASGI ``send`` that cuts a JSON body in half and fixes its content-length."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._start: Message | None = None
        self._body = bytearray()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._start = dict(message)
            return
        if message["type"] != "http.response.body" or self._start is None:
            await self._send(message)
            return
        self._body += message.get("body", b"")
        if message.get("more_body", False):
            return
        headers = [(k, v) for k, v in self._start.get("headers", []) if k != b"content-length"]
        content_type = dict(headers).get(b"content-type", b"")
        body = bytes(self._body)
        if b"json" in content_type:
            body = body[: len(body) // 2]
        headers.append((b"content-length", str(len(body)).encode()))
        await self._send({**self._start, "headers": headers})
        await self._send({"type": "http.response.body", "body": body})


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise ValueError(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


def _parse_instant(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("now must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"cannot read now={value!r} as ISO 8601") from exc
    if parsed.utcoffset() is None:
        raise ValueError(f"now={value!r} has no UTC offset; add Z or +01:00")
    return parsed


def _bad_request(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=400)


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
