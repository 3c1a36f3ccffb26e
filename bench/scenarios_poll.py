"""Polling thousands of meters from one process: the poller against bare httpx requests.

The vendor is the IAMMETER cloud simulator with 2000 meters in one account (400 in a quick
run), served by uvicorn on loopback in a process of its own, so the server never shares this
process's GIL or its CPU time. Ours is the real poller: every meter due at once, each poll
taking its slot in the persisted quota ledger, reading the stored token, calling
``meterdata2``, mapping the answer and storing it through the sink and the ingest pipeline
into a fresh SQLite file. The reference sends the same ``meterdata2`` requests with the same
token through an ``httpx.AsyncClient`` of the same limits, as many at once as the poller runs,
and only checks each answer's status. Before every timed round the simulator's clock moves on
an hour, so each round finds fresh uploads and a free quota. CPU time is
``time.process_time`` of this process (threads included).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import anyio
import httpx

from bench.fixtures import Context
from bench.harness import Goal, Measure, Result, interleaved
from meterhub.model import Meter
from meterhub.poller import Clock, Poller, PollerSettings
from meterhub.poller.connectors import HTTP_LIMITS, HTTP_TIMEOUT
from meterhub.store.sqlite import SQLiteStore

__all__ = ["poll_many"]

METERS = 2000
"""Meters polled in a full run: one IAMMETER account of a fleet's size."""
QUICK_METERS = 400
"""Meters polled in a quick run: enough for the 200 polls in flight to stay full most of a round."""
SITES = 8
"""Households the meters share: the simulator computes each one's physics once."""
SETTINGS = PollerSettings(startup_spread_s=0.0)
"""The poller's defaults (200 polls in flight), every meter due at once."""
QUICK_ROUNDS = 2
GOAL = Goal(">=", 0.5)
START = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)
PASSWORD_ENV = "METERHUB_BENCH_IAMMETER_PASSWORD"
_METERDATA = "/api/v1/site/meterdata2/{sn}"


def _serials(count: int) -> list[str]:
    return [f"B{n:07X}" for n in range(count)]


def _serve(pipe: Connection, count: int) -> None:
    """Serve the IAMMETER simulator with ``count`` meters on a free loopback port (child process)."""
    import uvicorn

    from meterhub.poller.hub import bind_socket
    from meterhub.vendors.iammeter.account import MeterSpec, SiteSpec
    from meterhub.vendors.iammeter.payloads import METERSDATA_FLAT
    from meterhub.vendors.iammeter.simulator import create_app

    sites = tuple(SiteSpec(f"site{k}", phases=1, base_load_w=300.0 + 50 * k) for k in range(SITES))
    meters = tuple(MeterSpec(sn, f"site{n % SITES}", METERSDATA_FLAT) for n, sn in enumerate(_serials(count)))
    app = create_app(seed=1, speed=1.0, start=START, sites=sites, meters=meters, places=())
    sock = bind_socket("127.0.0.1", 0)
    pipe.send(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    asyncio.run(server.serve(sockets=[sock]))


@contextmanager
def _simulator(count: int) -> Iterator[str]:
    """Run the simulator with ``count`` meters in a child process; yield its base URL."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(child, count), daemon=True)
    process.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("the IAMMETER simulator did not start")
        base_url = f"http://127.0.0.1:{parent.recv()}"
        _wait_ready(base_url)
        yield base_url
    finally:
        process.terminate()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()


def _wait_ready(base_url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base_url}/_sim/calls", timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"the simulator at {base_url} does not answer")


class _Hours:
    """The simulator's clock, moved on an hour before every round: fresh uploads, a free quota."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._hours = 0

    def next(self) -> datetime:
        """Move the simulator's clock to the next hour after START; return its now."""
        self._hours += 1
        later = START + timedelta(hours=self._hours)
        answer = httpx.post(f"{self.base_url}/_sim/clock", json={"now": later.isoformat()}, timeout=10)
        answer.raise_for_status()
        return datetime.fromisoformat(answer.json()["now"])


@dataclass(slots=True)
class _Round:
    """What one timed round measured."""

    wall_s: float
    cpu_s: float
    calls: int
    failures: int = 0


@dataclass(slots=True)
class _Measured:
    """A harness measure and the rounds it has run."""

    measure: Measure
    rounds: list[_Round]


def _meters(base_url: str, info: dict[str, Any], count: int) -> list[Meter]:
    """Return the polled meters: every SN of the simulated account."""
    os.environ[PASSWORD_ENV] = str(info["password"])
    options = {"base_url": base_url, "username": str(info["user_name"]), "password": f"env:{PASSWORD_ENV}"}
    return [
        Meter(f"iam-{sn.lower()}", "iammeter", 1, str(info["tz"]), 300, "", {**options, "sn": sn})
        for sn in _serials(count)
    ]


def _template(ctx: Context, meters: list[Meter]) -> Path:
    """Create the hub database the rounds copy: the meters, and the token a restart reuses.

    The token comes from one poll of an extra meter that the rounds leave alone, so no polled
    meter has data yet (which would start a recovery backfill).
    """
    path = ctx.fresh_path("poll-template")
    store = SQLiteStore(path)
    login = replace(meters[0], id="iam-login")
    for meter in [*meters, login]:
        store.add_meter(meter)
    try:

        async def log_in() -> None:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=HTTP_LIMITS) as client:
                poller = Poller(store, client, clock=Clock(START, 1.0), meters=[login])
                outcome = await poller.poll_once(login.id)
            if not outcome.ok:
                raise RuntimeError(f"the template's login poll failed: {outcome.error}")

        anyio.run(log_in)
    finally:
        store.close()
    return path


async def _run_poller(store: SQLiteStore, meters: list[Meter], now: datetime) -> _Round:
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=HTTP_LIMITS) as client:
        poller = Poller(store, client, clock=Clock(now, 1.0), settings=SETTINGS, meters=meters, seed=1)
        await poller.load_meters()
        cpu_before, started = time.process_time(), time.perf_counter()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(poller.run)
            done = poller.stats  # the poller runs until cancelled; its counts say when all are in
            while done.successes + done.failures < len(meters) or poller.in_flight:  # noqa: ASYNC110
                await anyio.sleep(0.002)
            tasks.cancel_scope.cancel()
        wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_before
    return _Round(wall_s, cpu_s, poller.stats.polls, poller.stats.failures)


def _ours(ctx: Context, hours: _Hours, meters: list[Meter], stored: list[int]) -> _Measured:
    template = _template(ctx, meters)
    rounds: list[_Round] = []

    def measure() -> float:
        now = hours.next()
        path = ctx.fresh_path("poll-round")
        shutil.copyfile(template, path)
        store = SQLiteStore(path)
        try:
            before = store.count_readings()
            result = anyio.run(_run_poller, store, meters, now)
            stored.append(store.count_readings() - before)
        finally:
            store.close()
            ctx.discard(path)
        if result.failures:
            raise RuntimeError(f"{result.failures} of {result.calls} polls failed")
        rounds.append(result)
        return result.wall_s

    return _Measured(measure, rounds)


async def _bare_requests(base_url: str, token: str, count: int) -> _Round:
    serials = iter(_serials(count))
    failures = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal failures
        for sn in serials:
            answer = await client.get(f"{base_url}/api/v1/site/meterdata2/{sn}", headers={"token": token})
            if answer.status_code != 200 or not answer.content:
                failures += 1

    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=HTTP_LIMITS) as client:
        cpu_before, started = time.process_time(), time.perf_counter()
        async with anyio.create_task_group() as tasks:
            for _ in range(SETTINGS.max_concurrent_polls):
                tasks.start_soon(worker, client)
        wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_before
    return _Round(wall_s, cpu_s, count, failures)


def _reference(hours: _Hours, token: str, count: int) -> _Measured:
    rounds: list[_Round] = []

    def measure() -> float:
        hours.next()
        result = anyio.run(_bare_requests, hours.base_url, token, count)
        if result.failures:
            raise RuntimeError(f"{result.failures} of {result.calls} bare requests failed")
        rounds.append(result)
        return result.wall_s

    return _Measured(measure, rounds)


def poll_many(ctx: Context) -> list[Result]:
    """Time polling 2000 IAMMETER meters (400 in a quick run) through the poller against bare httpx."""
    rounds = min(ctx.rounds, QUICK_ROUNDS) if ctx.quick else ctx.rounds
    count = QUICK_METERS if ctx.quick else METERS
    stored: list[int] = []
    with _simulator(count) as base_url:
        info = httpx.get(f"{base_url}/_sim/info", timeout=30).json()
        hours = _Hours(base_url)
        ours = _ours(ctx, hours, _meters(base_url, info, count), stored)
        reference = _reference(hours, str(info["token"]), count)
        ours.measure()  # warm both: connections, caches, the simulator's physics
        reference.measure()
        ours_s, reference_s = interleaved(ours.measure, reference.measure, rounds)
        calls = httpx.get(f"{base_url}/_sim/calls", timeout=10).json()
    timed_ours, timed_reference = ours.rounds[-rounds:], reference.rounds[-rounds:]
    ratios = [ref / mine for mine, ref in zip(ours_s, reference_s, strict=True)]
    ratio = statistics.median(ratios)
    cpu_ours_ms = statistics.median(r.cpu_s for r in timed_ours) / count * 1e3
    cpu_reference_ms = statistics.median(r.cpu_s for r in timed_reference) / count * 1e3
    expected_calls = (rounds + 1) * count * 2 + 1  # warm-up and timed rounds, and the login poll
    if calls.get(_METERDATA) != expected_calls or min(stored) != count:
        raise RuntimeError(f"{calls} meterdata2 calls and {stored} stored rows; expected otherwise")
    return [
        Result(
            "poll_many",
            "polls/s",
            count / statistics.median(ours_s),
            count / statistics.median(reference_s),
            f"bare httpx GET meterdata2 of the same {count} meters on the same simulator, "
            f"{SETTINGS.max_concurrent_polls} at a time, same client limits",
            ratio,
            GOAL.text(),
            GOAL.met(ratio),
            min(ratios),
            max(ratios),
            f"every round stored one reading per meter ({count}) and the simulator counted exactly "
            f"one meterdata2 call per meter and round on each side ({expected_calls} with the login poll)",
            f"throughput ratio ours/reference {ratio:.3g}; CPU per poll ours {cpu_ours_ms:.3f} ms, "
            f"reference {cpu_reference_ms:.3f} ms (x{cpu_ours_ms / cpu_reference_ms:.2g})",
        )
    ]
