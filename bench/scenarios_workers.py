"""Poll workers sharing meters through PostgreSQL leases: CPU per poll with three workers against one.

The vendor is the IAMMETER cloud simulator (600 meters in one account, 120 in a quick run), served
by uvicorn on loopback in a process of its own. Two hubs are set up, each in a schema of its own
on the bench PostgreSQL server with the same meters: one with a single poller worker, one with
three, every worker a process of its own running the real poller with its
:class:`~meterhub.poller.work.Tenure`. Each worker first renews its leases until
it holds its share, then keeps one poller running, as ``meterhub serve --role poller`` does.
Before each round the simulator's clock moves on an hour (every meter has a fresh upload and a
free quota) and the workers' clocks jump with it; each worker renews its leases once and polls
all it holds (booking each call in the quota ledger, storing through the sink). A round of one
hub is timed from the start of its first worker to the end of its last; CPU time is
``time.process_time`` of every worker until its last poll is stored, summed, divided by the
polls. The first round of each hub (starting the poller, building connectors) is a warm-up.
Recovery backfills are switched off (``recovery_max_s``), so each round is polls only. The goal:
CPU per poll with three workers at most 1.2 times that with one, so sharing costs little.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx
import psycopg

from bench.fixtures import Context
from bench.harness import Goal, Result
from bench.scenarios_poll import PASSWORD_ENV, START, _Hours, _meters, _simulator
from meterhub.model import Meter
from meterhub.poller import Clock, Poller, PollerSettings
from meterhub.poller.connectors import HTTP_LIMITS, HTTP_TIMEOUT

__all__ = ["poll_workers"]

METERS = 600
QUICK_METERS = 120
WORKERS = 3
QUICK_ROUNDS = 1
GOAL = Goal("<=", 1.2)
POSTGRES_URL = os.environ.get("METERHUB_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
LEASE_S = 300.0
"""Long enough that no lease lapses between rounds."""
SETTINGS = PollerSettings(startup_spread_s=0.0, recovery_max_s=1.0, lease_s=LEASE_S)
"""Every meter due at once; no recovery backfill (a round an hour later would start one)."""


def _url(schema: str) -> str:
    return f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}schema={schema}"


@dataclass(slots=True)
class _Round:
    """One worker's part of a round."""

    cpu_s: float
    started_s: float
    ended_s: float
    polls: int
    failures: int


class _JumpClock(Clock):
    """A real-time clock that jumps to where the simulator's clock was moved before a round."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start, 1.0)
        self._base, self._base_s = start, time.monotonic()

    def now(self) -> datetime:
        """Return the time since the last jump."""
        return self._base + timedelta(seconds=time.monotonic() - self._base_s)

    def jump(self, to: datetime) -> None:
        """Continue from ``to``."""
        self._base, self._base_s = to, time.monotonic()


def _work(pipe: Connection, url: str, worker_id: str, meters: list[dict[str, Any]], password: str) -> None:
    """A worker process: settle its share on "settle", poll it on "round", end on "stop"."""
    from meterhub.poller.work import Tenure
    from meterhub.store.postgres import PostgresStore

    os.environ[PASSWORD_ENV] = password
    fleet = [Meter(**fields) for fields in meters]
    store = PostgresStore(url)
    try:
        anyio.run(_serve, pipe, store, Tenure(store, worker_id, "poller", LEASE_S), fleet)
    finally:
        store.close()


async def _serve(pipe: Connection, store: Any, tenure: Any, fleet: list[Meter]) -> None:
    """Run one poller for the worker's life; each round, jump its clock and poll what it holds."""
    clock = _JumpClock(START)
    ids = [meter.id for meter in fleet]
    async with (
        httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=HTTP_LIMITS) as client,
        anyio.create_task_group() as tasks,
    ):
        poller = Poller(store, client, clock=clock, settings=SETTINGS, meters=fleet, tenure=tenure)
        running = False
        while True:
            command, argument = await anyio.to_thread.run_sync(pipe.recv)
            if command == "stop":
                tasks.cancel_scope.cancel()
                return
            if command == "settle":
                pipe.send(len(tenure.held) if running else await _settle(tenure, ids, int(argument)))
                continue
            clock.jump(datetime.fromisoformat(argument))
            before = poller.stats.successes + poller.stats.failures
            cpu_before, started = time.process_time(), time.perf_counter()
            await poller.load_meters()  # one lease renewal per round, as a running worker makes
            if running:
                poller.wake()
            else:
                tasks.start_soon(poller.run)
                running = True
            stats = poller.stats
            await anyio.lowlevel.checkpoint()
            while (  # noqa: ASYNC110 - the poller runs until cancelled; its counts say when all are in
                stats.successes + stats.failures - before < len(poller.meter_ids) or poller.in_flight
            ):
                await anyio.sleep(0.002)
            ended, cpu_s = time.perf_counter(), time.process_time() - cpu_before
            polls = stats.successes + stats.failures - before
            pipe.send(_Round(cpu_s, started, ended, polls, stats.failures))


async def _settle(tenure: Any, ids: list[str], workers: int) -> int:
    """Renew until this worker holds its even share with every worker seen; return the share."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        held, give = await tenure.renew(ids, [])
        await tenure.give_back(give)
        state = tenure.state
        if state.workers == workers and len(held) == state.share == len(ids) // workers:
            return len(held)
        await anyio.sleep(0.02)
    raise RuntimeError(f"worker {tenure.worker_id} holds {len(tenure.held)} meters, not its share")


class _Hub:
    """One hub: a schema with the meters and its worker processes."""

    def __init__(self, workers: int, base_url: str, info: dict[str, Any], meters: list[Meter]) -> None:
        self.workers = workers
        self.schema = f"bench_{uuid.uuid4().hex[:12]}"
        self.url = _url(self.schema)
        self.meters = meters
        self._prepare(base_url, info)
        context = multiprocessing.get_context("spawn")
        fields = [
            {"id": m.id, "vendor": m.vendor, "phases": m.phases, "tz": m.tz, "interval_s": m.interval_s,
             "name": m.name, "options": dict(m.options)}
            for m in meters
        ]  # fmt: skip
        self.pipes: list[Connection] = []
        self.processes = []
        for number in range(workers):
            parent, child = context.Pipe()
            process = context.Process(
                target=_work,
                args=(child, self.url, f"bench-{workers}-{number}", fields, str(info["password"])),
                daemon=True,
            )
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)
        self.rounds: list[tuple[float, float, int]] = []
        """(wall seconds, CPU seconds summed, polls) per round."""

    def _prepare(self, base_url: str, info: dict[str, Any]) -> None:
        """Create the schema with the meters, and store a login token the workers reuse."""
        from meterhub.store.postgres import PostgresStore

        store = PostgresStore(self.url)
        try:
            login = Meter("iam-login", "iammeter", 1, str(info["tz"]), 300, "", dict(self.meters[0].options))
            for meter in [*self.meters, login]:
                store.add_meter(meter)

            async def log_in() -> None:
                async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=HTTP_LIMITS) as client:
                    outcome = await Poller(store, client, clock=Clock(START, 1.0), meters=[login]).poll_once(
                        login.id
                    )
                if not outcome.ok:
                    raise RuntimeError(f"the login poll failed: {outcome.error}")

            anyio.run(log_in)
        finally:
            store.close()

    def round(self, now: datetime) -> tuple[float, float, int]:
        """Settle the shares, then poll every meter once with every worker; return the figures."""
        for pipe in self.pipes:
            pipe.send(("settle", str(self.workers)))
        shares = [pipe.recv() for pipe in self.pipes]
        if sum(shares) != len(self.meters):
            raise RuntimeError(f"the workers hold {shares} of {len(self.meters)} meters")
        for pipe in self.pipes:
            pipe.send(("round", now.isoformat()))
        parts: list[_Round] = [pipe.recv() for pipe in self.pipes]
        failures = sum(part.failures for part in parts)
        polls = sum(part.polls for part in parts)
        if failures or polls != len(self.meters):
            raise RuntimeError(f"{polls} polls, {failures} failed, for {len(self.meters)} meters")
        wall_s = max(p.ended_s for p in parts) - min(p.started_s for p in parts)
        figures = (wall_s, sum(part.cpu_s for part in parts), polls)
        self.rounds.append(figures)
        return figures

    def close(self) -> None:
        """Stop the workers and drop the schema."""
        for pipe in self.pipes:
            with suppress(BrokenPipeError, OSError):
                pipe.send(("stop", ""))
        for process in self.processes:
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


@contextmanager
def _hubs(base_url: str, info: dict[str, Any], meters: list[Meter]) -> Iterator[tuple[_Hub, _Hub]]:
    made: list[_Hub] = []
    try:
        made.append(_Hub(1, base_url, info, meters))
        made.append(_Hub(WORKERS, base_url, info, meters))
        yield made[0], made[1]
    finally:
        for hub in made:
            hub.close()


def _stored(url: str) -> int:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        schema = url.rsplit("schema=", 1)[1]
        row = conn.execute(f'SELECT count(*) FROM "{schema}".latest').fetchone()
    return int(row[0]) if row is not None else 0


def poll_workers(ctx: Context) -> list[Result]:
    """Time one round of polls with one worker and with three, on the same meters and simulator."""
    rounds = min(ctx.rounds, QUICK_ROUNDS) if ctx.quick else ctx.rounds
    count = QUICK_METERS if ctx.quick else METERS
    with _simulator(count) as base_url:
        info = httpx.get(f"{base_url}/_sim/info", timeout=30).json()
        hours = _Hours(base_url)
        meters = _meters(base_url, info, count)
        with _hubs(base_url, info, meters) as (one, three):
            one.round(hours.next())  # warm both: connections, token reads, the simulator's physics
            three.round(hours.next())
            for _ in range(rounds):
                one.round(hours.next())
                three.round(hours.next())
            timed_one, timed_three = one.rounds[-rounds:], three.rounds[-rounds:]
            stored = [_stored(one.url), _stored(three.url)]
        calls = httpx.get(f"{base_url}/_sim/calls", timeout=10).json()
    cpu_one_ms = statistics.median(cpu / polls for _, cpu, polls in timed_one) * 1e3
    cpu_three_ms = statistics.median(cpu / polls for _, cpu, polls in timed_three) * 1e3
    ratios = [(c3 / p3) / (c1 / p1) for (_, c1, p1), (_, c3, p3) in zip(timed_one, timed_three, strict=True)]
    rate_one = statistics.median(polls / wall for wall, _, polls in timed_one)
    rate_three = statistics.median(polls / wall for wall, _, polls in timed_three)
    expected_calls = 2 * (rounds + 1) * count + 2  # every round of both hubs, and their login polls
    if calls.get("/api/v1/site/meterdata2/{sn}") != expected_calls or min(stored) < count:
        raise RuntimeError(f"{calls} calls, {stored} meters with data; expected otherwise")
    ratio = statistics.median(ratios)
    return [
        Result(
            "poll_workers",
            "ms CPU/poll",
            cpu_three_ms,
            cpu_one_ms,
            f"one worker polling the same {count} meters on the same simulator (CPU of every worker "
            "process summed, per poll)",
            ratio,
            GOAL.text(),
            GOAL.met(ratio),
            min(ratios),
            max(ratios),
            f"every worker held its even share ({count // WORKERS} of {count} with three), no poll "
            f"failed, and the simulator counted exactly one meterdata2 call per meter and round "
            f"({expected_calls} with both hubs' login polls)",
            f"polls/s: three workers {rate_three:.0f}, one worker {rate_one:.0f}; "
            f"CPU per poll: three {cpu_three_ms:.3f} ms, one {cpu_one_ms:.3f} ms",
        )
    ]
