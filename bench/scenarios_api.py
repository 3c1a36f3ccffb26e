"""HTTP requests per second on /api/v1/latest and on a readings route, against a bare ASGI app
serving the same JSON.

Both apps run under uvicorn (same settings, one worker, loopback) in processes of their own,
so the load generator here never shares a core's GIL with a server. The hub answers as it
would in production: API key checked, the caller's visibility applied, the latest table read,
JSON encoded, request metrics recorded; only the per-key rate limit is off. The bare app sends
the very bytes the hub answered, from memory, and every answer of either is checked to be
those bytes. The load is a small asyncio HTTP/1.1 client on keep-alive connections, cheap
enough that the servers, not it, set the pace.

``/api/v1/latest`` runs twice: as served (its answer shared until the store changes) and with
that sharing off, so every request reads the store. The readings route asks for 23 days of one
meter's minutes (1000 points, hourly buckets from the rollups) with 50 clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from bench.fixtures import Context
from bench.harness import AnswerMismatch, Goal, Result, interleaved

__all__ = [
    "Load",
    "api_rates",
    "drive",
    "seed_hub",
    "served",
    "served_all",
]

METERS = 50
"""Meters the hub answers for: a small building."""
CONNECTIONS = 16
REQUESTS = {True: 500, False: 6000}
"""Requests per timed round, quick run and full run."""
UNCACHED_REQUESTS = {True: 200, False: 3000}
PATH = "/api/v1/latest"
HISTORY_METER = "h0001"
READINGS_DAYS = 23
READINGS_CLIENTS = 50
READINGS_REQUESTS = {True: 300, False: 3000}
UNCACHED_READINGS_REQUESTS = {True: 100, False: 1000}
READINGS_START = datetime(2026, 1, 5, tzinfo=UTC)
_READ_LIMIT = 1 << 22


@dataclass(slots=True)
class Load:
    """What a load run saw: request latencies in seconds, errors, and the wall-clock time."""

    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def error(self, kind: str) -> None:
        """Count one failed request of a kind (a status, a timeout, a dropped connection)."""
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


def seed_hub(path: Path, meters: int = METERS) -> str:
    """Create a hub database with ``meters`` meters, two readings each and an admin; return a key."""
    from meterhub.api import security
    from meterhub.model import Meter, Reading, UserRole
    from meterhub.store.sqlite import SQLiteStore

    store = SQLiteStore(path)
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        readings = []
        for n in range(meters):
            meter_id = f"m{n:04d}"
            store.add_meter(Meter(meter_id, "file", phases=1, interval_s=60))
            for k, ts in enumerate((now - timedelta(minutes=1), now)):
                readings.append(
                    Reading(meter_id, ts, 0, 230.1 + n / 10, 4.2, 950.5 + n, 10.0, 0.98, 50.01,
                            1000.0 + n + k / 60, 20.0 + n, 3.0, 1.0)
                )  # fmt: skip
        store.write_readings(readings)
        store.add_user("bench", UserRole.ADMIN, security.hash_password("bench-password-1"))
        return security.issue_api_key(store, "bench", "bench")[1]
    finally:
        store.close()


def _bare_app(bodies: dict[str, bytes]) -> Callable[..., Any]:
    """An ASGI app answering each known path (query included) with its body, from memory."""
    answers = {
        path: ([(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())], body)
        for path, body in bodies.items()
    }

    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        query = scope["query_string"].decode()
        missing: tuple[list[tuple[bytes, bytes]], bytes] = ([(b"content-length", b"0")], b"")
        headers, body = answers.get(scope["path"] + ("?" + query if query else ""), missing)
        await send({"type": "http.response.start", "status": 200 if body else 404, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def _serve(kind: str, argument: str | dict[str, bytes], pipe: Connection) -> None:
    """Run one app under uvicorn on a free loopback port and send the port back (child process)."""
    import uvicorn

    from meterhub.poller.hub import bind_socket

    if kind in ("hub", "hub-uncached"):
        from meterhub.api.app import create_app
        from meterhub.api.routes.latest import CACHE_SWITCH
        from meterhub.config import Settings

        url = str(argument)
        app: Any = create_app(url, Settings(database_url=url, api_rate_per_s=0))
        if kind == "hub-uncached":
            setattr(app.state, CACHE_SWITCH, False)
    else:
        app = _bare_app(argument if isinstance(argument, dict) else {})
    sock = bind_socket("127.0.0.1", 0)
    pipe.send(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    asyncio.run(server.serve(sockets=[sock]))


@contextmanager
def served(kind: str, argument: str | dict[str, bytes]) -> Iterator[int]:
    """Serve the hub (``argument`` its database URL; ``hub-uncached``: without shared answers)
    or the bare app (``argument`` its body by path, query included); yield the port."""
    with served_all({kind: argument}) as ports:
        yield ports[kind]


@contextmanager
def served_all(apps: dict[str, str | dict[str, bytes]]) -> Iterator[dict[str, int]]:
    """Start every app of ``apps`` (kind -> argument, as for :func:`served`) at once; yield their ports."""
    context = multiprocessing.get_context("spawn")
    started = []
    try:
        for kind, argument in apps.items():
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(kind, argument, child), daemon=True)
            process.start()
            started.append((kind, parent, process))
        ports: dict[str, int] = {}
        for kind, parent, _ in started:
            if not parent.poll(60):
                raise RuntimeError(f"the {kind} server did not start")
            ports[kind] = int(parent.recv())
        for port in ports.values():
            _wait_ready(port)
        yield ports
    finally:
        for _, _, process in started:
            process.terminate()
        for _, _, process in started:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            load = asyncio.run(drive(port, "/healthz", {}, connections=1, requests=1))
        except OSError:
            time.sleep(0.05)
            continue
        if load.latencies_s:
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing answers on port {port}")


def _request(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one response with a Content-Length; return its status and body."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split(b" ", 2)[1])
    length = -1
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length < 0:
        raise ConnectionError("an answer without Content-Length")
    return status, await reader.readexactly(length)


async def _connection(
    port: int, request: bytes, load: Load, take: Callable[[], bool], check: Callable[[bytes], bool] | None
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=_READ_LIMIT)
    try:
        while take():
            started = time.perf_counter()
            writer.write(request)
            try:
                status, body = await asyncio.wait_for(_answer(reader), 30)
            except (TimeoutError, ConnectionError, asyncio.IncompleteReadError) as exc:
                load.error(type(exc).__name__)
                return
            load.latencies_s.append(time.perf_counter() - started)
            if status != 200:
                load.error(str(status))
            elif check is not None and not check(body):
                load.error("bad body")
    finally:
        writer.close()


async def drive(
    port: int,
    path: str,
    headers: dict[str, str],
    *,
    connections: int,
    requests: int | None = None,
    duration_s: float | None = None,
    check: Callable[[bytes], bool] | None = None,
) -> Load:
    """Send GET ``path`` over keep-alive connections until ``requests`` are done or time is up."""
    load = Load()
    request = _request(path, headers)
    left = [requests if requests is not None else -1]
    deadline = time.perf_counter() + (duration_s if duration_s is not None else 1e9)

    def take() -> bool:
        if time.perf_counter() >= deadline or left[0] == 0:
            return False
        left[0] -= 1
        return True

    started = time.perf_counter()
    results = await asyncio.gather(
        *(_connection(port, request, load, take, check) for _ in range(connections)), return_exceptions=True
    )
    load.elapsed_s = time.perf_counter() - started
    for result in results:
        if isinstance(result, BaseException):
            load.error(type(result).__name__)
    return load


def _round(port: int, path: str, headers: dict[str, str], requests: int, body: bytes,
           connections: int = CONNECTIONS) -> Callable[[], float]:
    """Return a measure sending ``requests`` GETs of ``path``; it fails unless every answer is ``body``."""

    def same(answer: bytes) -> bool:
        return answer == body

    def measure() -> float:
        load = asyncio.run(drive(port, path, headers, connections=connections, requests=requests, check=same))
        if load.errors:
            raise AnswerMismatch(f"{load.errors} failed or different answers of {path} on port {port}: "
                                 f"{load.error_kinds}")
        return load.elapsed_s

    return measure


def _rate_result(
    name: str, requests: int, ours_s: list[float], reference_s: list[float], reference_is: str, goal: Goal,
    check: str,
) -> Result:
    ratios = [ref / ours for ours, ref in zip(ours_s, reference_s, strict=True)]
    ratio = statistics.median(ratios)
    return Result(
        name, "req/s", requests / statistics.median(ours_s), requests / statistics.median(reference_s),
        reference_is, ratio, goal.text(), goal.met(ratio), min(ratios), max(ratios), check,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Case:
    name: str
    kind: str
    path: str
    requests: int
    connections: int
    goal: Goal


def _cases(quick: bool, route: str) -> list[_Case]:
    return [
        _Case("api_latest_rps", "hub", PATH, REQUESTS[quick], CONNECTIONS, Goal(">=", 0.5)),
        _Case("api_latest_rps_uncached", "hub-uncached", PATH, UNCACHED_REQUESTS[quick], CONNECTIONS,
              Goal(">=", 0.1)),
        _Case("api_readings_rps", "hub", route, READINGS_REQUESTS[quick], READINGS_CLIENTS, Goal(">=", 0.3)),
        _Case("api_readings_rps_uncached", "hub-uncached", route, UNCACHED_READINGS_REQUESTS[quick],
              READINGS_CLIENTS, Goal(">=", 0.1)),
    ]  # fmt: skip


def _readings_route() -> str:
    end = READINGS_START + timedelta(days=READINGS_DAYS)
    return (f"/api/v1/meters/{HISTORY_METER}/readings?start={READINGS_START:%Y-%m-%dT%H:%M:%SZ}"
            f"&end={end:%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip


def _all_meters(body: bytes) -> bool:
    return len(orjson.loads(body)) == METERS + 1


def _every_hour(body: bytes) -> bool:
    data = orjson.loads(body)["data"]
    return len(data) == READINGS_DAYS * 24 and all(row["count"] == 60 for row in data)


def api_rates(ctx: Context) -> list[Result]:
    """Time /api/v1/latest and a 23-day readings route, shared answers and not, against a bare app.

    Three servers: the hub, the hub with shared answers off, and one bare app sending the hub's
    answers by path; only the cases asked for (``ctx.wanted``) are timed.
    """
    path = ctx.fresh_path("api")
    key = seed_hub(path)
    seed_history(path)
    headers = {"X-API-Key": key}
    url = f"sqlite:///{path}"
    route = _readings_route()
    cases = [case for case in _cases(ctx.quick, route) if ctx.wanted is None or case.name in ctx.wanted]
    kinds = sorted({case.kind for case in cases})
    expect = {PATH: _all_meters, route: _every_hour}
    results: list[Result] = []
    with contextlib.ExitStack() as stack:
        ports = stack.enter_context(served_all(dict.fromkeys(kinds, url)))
        bodies = {
            case.path: _first_body(ports[case.kind], case.path, headers, expect[case.path]) for case in cases
        }
        for case in cases:  # the hub answers the same bytes with sharing on and off
            if _first_body(ports[case.kind], case.path, headers, expect[case.path]) != bodies[case.path]:
                raise AnswerMismatch(f"{case.name}: the {case.kind} server answers {case.path} differently")
        bare = stack.enter_context(served("bare", bodies))
        for case in cases:
            body = bodies[case.path]
            warm = max(case.requests // 10, case.connections)
            for port in (ports[case.kind], bare):  # warm both: caches, the first connections
                _round(port, case.path, headers, warm, body, case.connections)()
            ours_s, reference_s = interleaved(
                _round(ports[case.kind], case.path, headers, case.requests, body, case.connections),
                _round(bare, case.path, headers, case.requests, body, case.connections),
                ctx.rounds,
            )
            shared = "answers shared until the store changes (nothing is written while timing)"
            how = shared if case.kind == "hub" else "every request reads the store"
            what = (f"{METERS + 1} meters in each answer" if case.path == PATH else
                    f"GET {route}: {READINGS_DAYS * 24} hourly buckets of 60 readings each")
            results.append(_rate_result(
                case.name, case.requests, ours_s, reference_s,
                f"a bare ASGI app sending the same {len(body):,}-byte JSON from memory, uvicorn on "
                f"loopback, {case.connections} keep-alive connections",
                case.goal,
                f"{what}, X-API-Key auth, {how}; every answer of both equal to the hub's first, "
                f"byte for byte",
            ))  # fmt: skip
    return results


def seed_history(path: Path, days: int = READINGS_DAYS) -> None:
    """Add a meter with ``days`` days of minute readings from READINGS_START to a hub database."""
    import numpy as np

    from bench.data import Household, household_channels
    from meterhub.model import Meter
    from meterhub.store.sqlite import SQLiteStore
    from meterhub.timeutil import to_ms

    ts_ms = to_ms(READINGS_START) + np.arange(days * 1440, dtype=np.int64) * 60_000
    house = Household(np.array(350.0), np.array(4000.0), np.array(12_000.0), np.array(800.0))
    series = household_channels(ts_ms, "Europe/Oslo", house, seed=9)
    store = SQLiteStore(path)
    try:
        store.add_meter(Meter(HISTORY_METER, "file", phases=1, tz="Europe/Oslo", interval_s=60))
        readings = list(series.readings(HISTORY_METER))
        for k in range(0, len(readings), 5000):
            store.write_readings(readings[k : k + 5000])
    finally:
        store.close()


def _first_body(port: int, path: str, headers: dict[str, str], expect: Callable[[bytes], bool]) -> bytes:
    bodies: list[bytes] = []

    def keep(body: bytes) -> bool:
        bodies.append(body)
        return True

    load = asyncio.run(drive(port, path, headers, connections=1, requests=1, check=keep))
    if load.errors or not bodies or not expect(bodies[0]):
        raise AnswerMismatch(f"the hub did not answer {path} as expected: {load.error_kinds} "
                             f"{bodies[0][:200] if bodies else b''!r}")
    return bodies[0]
