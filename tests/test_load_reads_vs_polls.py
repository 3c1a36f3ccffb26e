"""Heavy API reads never delay a poll: the hub as ``meterhub serve`` composes it, under load.

The hub (poller and API in one process, on one event loop) runs on a
:class:`~tests.steppedtime.SteppedClock` against the AMS reader simulator over loopback, frozen
at the same instant, with two hours of two-second readings already stored. Three times more
clients than the worker threads an event loop lends by default, in a process of their own, each
read the whole history at its finest buckets. While they do, the test moves both clocks on by one
poll interval at a time and waits until the poll due then is stored or until
:data:`READS_PER_STEP` more reads have finished, whichever comes first. A poll whose store calls
queue behind reads needs far more reads to finish first (each of its worker-thread hops waits
behind every read queued before it: over 40 were measured); one with threads of its own needs
none, only its share of the processor (4 to 10 reads finish meanwhile). Everything is counted:
polls stored per step, gap events, reads answered. Nothing is timed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from meterhub.api import security
from meterhub.model import Meter, Reading, UserRole
from meterhub.poller import PollerSettings
from meterhub.poller.config import HubConfig
from meterhub.poller.hub import Hub, bind_socket
from meterhub.store import Store
from meterhub.threads import ingest_limiter, run_ingest
from meterhub.vendors.amsreader.connector import firmware_key, firmware_record
from meterhub.vendors.base import TokenCache
from tests.backends import Backend, database_url
from tests.simservers import simulator
from tests.steppedtime import SteppedClock

T0 = datetime(2026, 2, 11, 12, 0, tzinfo=UTC)
INTERVAL_S = 2
FIRMWARE = (2, 3, 0)
HISTORY = timedelta(hours=2)
CLIENTS = 120
"""Three times the 40 worker threads anyio lends an event loop by default."""
READS_PER_CLIENT = 1
STEPS = 8
READS_PER_STEP = 40
"""Reads that may finish while one poll is due; a poll queued behind reads needs more."""
DEADLINE_S = 120.0
_POLL_EVERY_S = 0.02


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Return once ``condition()`` holds; fail after a generous deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(_POLL_EVERY_S)


def seed_history(store: Store, meter: Meter) -> None:
    """Store six hours of two-second readings before T0, the whole meter and three phases."""
    start = T0 - HISTORY
    count = int(HISTORY.total_seconds()) // INTERVAL_S
    batch: list[Reading] = []
    for index in range(count):
        ts = start + timedelta(seconds=index * INTERVAL_S)
        energy_kwh = 1000.0 + index * 0.001
        batch.append(Reading(meter.id, ts, 0, power_w=1500.0 + index % 300, energy_import_kwh=energy_kwh))
        batch += [Reading(meter.id, ts, phase, voltage_v=230.0, power_w=500.0) for phase in (1, 2, 3)]
        if len(batch) >= 20_000:
            store.write_readings(batch)
            batch = []
    store.write_readings(batch)


class Readers:
    """``CLIENTS`` API clients in a process of their own, each reading the whole history."""

    def __init__(self, base_url: str, key: str, meter_id: str) -> None:
        self.finished = 0
        self.failures: list[str] = []
        params = {
            "start": (T0 - HISTORY).isoformat(),
            "end": T0.isoformat(),
            "points": str(int(HISTORY.total_seconds()) // INTERVAL_S),
        }
        self._command = [
            sys.executable, "-m", "tests.loadclients", base_url, key,
            f"/api/v1/meters/{meter_id}/readings", json.dumps(params), str(CLIENTS), str(READS_PER_CLIENT),
        ]  # fmt: skip
        self._process: subprocess.Popen[str] | None = None
        self._counter: threading.Thread | None = None

    def start(self) -> None:
        """Start every client at once."""
        root = Path(__file__).resolve().parent.parent
        self._process = subprocess.Popen(self._command, cwd=root, stdout=subprocess.PIPE, text=True)
        self._counter = threading.Thread(target=self._count, args=(self._process,), daemon=True)
        self._counter.start()

    def _count(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                if not line.startswith("ok "):
                    self.failures.append(line.strip())
                self.finished += 1

    def join(self) -> None:
        """Wait for every client to have its answers."""
        assert self._process is not None and self._counter is not None
        self._process.wait(DEADLINE_S)
        self._counter.join(DEADLINE_S)


class SimClock:
    """Moves the frozen simulator and the hub's stepped clock together."""

    def __init__(self, portal: BlockingPortal, hub: Hub, clock: SteppedClock, sim_url: str) -> None:
        self._portal = portal
        self._hub = hub
        self._clock = clock
        self._sim_url = sim_url

    def step_to(self, now: datetime) -> None:
        """Set both clocks to ``now`` and let the poller look at its schedule."""
        answer = httpx.post(f"{self._sim_url}/_sim/clock", json={"now": now.isoformat(), "speed": 0})
        answer.raise_for_status()
        poller = self._hub.poller
        assert poller is not None

        def move() -> None:
            self._clock.set(now)
            poller.wake()

        self._portal.call(move)


def test_heavy_history_reads_never_delay_a_poll(backend: Backend) -> None:
    store = backend.open()
    with simulator("amsreader", speed=0.0, start=T0) as sim:
        meter = Meter("ams", "amsreader", 3, "Europe/Oslo", INTERVAL_S, "", {"base_url": sim.base_url})
        # The hub knows the reader's firmware already (as after 'meterhub meters discover'), so
        # each poll is the one data.json call the reader's 2 s slot allows.
        known = TokenCache(store, "amsreader")
        anyio.run(known.put, firmware_key(sim.base_url), firmware_record(FIRMWARE, None), None)
        store.add_meter(meter)
        seed_history(store, meter)
        store.add_user("admin", UserRole.ADMIN, security.hash_password("admin-password-1"))
        key = security.issue_api_key(store, "admin", "load")[1]
        settings = PollerSettings(
            jitter_ratio=0.0, startup_spread_s=0.0, refresh_meters_s=86_400.0, quota_margin_s=0.0
        )  # one process on a stepped clock: polls exactly one 2 s window apart
        clock = SteppedClock(T0)
        hub = Hub(database_url(backend), HubConfig(meters=(meter,), poller=settings), clock=clock)
        sock = bind_socket("127.0.0.1", 0)
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with start_blocking_portal() as portal:
            running = portal.start_task_soon(hub.run, sock)
            wait_for(lambda: hub.started.is_set() and hub.poller is not None, "the hub to start")
            poller = hub.poller
            assert poller is not None
            clocks = SimClock(portal, hub, clock, sim.base_url)
            clocks.step_to(T0)
            wait_for(lambda: poller.stats.successes == 1, "the first poll")

            readers = Readers(base_url, key, meter.id)
            readers.start()
            wait_for(lambda: readers.finished >= 1, "the first read to finish")  # the load is on
            late: list[str] = []
            now = T0
            for step in range(1, STEPS + 1):
                polls, reads = poller.stats.successes, readers.finished
                now += timedelta(seconds=INTERVAL_S)
                clocks.step_to(now)
                wait_for(
                    lambda: poller.stats.successes > polls or readers.finished >= reads + READS_PER_STEP,  # noqa: B023
                    f"step {step}'s poll or {READS_PER_STEP} reads",
                )
                if poller.stats.successes == polls:
                    late.append(f"step {step}: {readers.finished - reads} reads finished, the poll had not")
                    wait_for(lambda: poller.stats.successes > polls, f"step {step}'s poll")  # noqa: B023
            readers.join()
            reads_done = readers.finished
            hub.stop()
            running.result(DEADLINE_S)
    gaps = store.gaps(meter.id, T0 - timedelta(minutes=1), now + timedelta(minutes=1))
    assert late == []
    assert gaps == []
    assert poller.stats.successes == STEPS + 1 and poller.stats.failures == 0
    assert readers.failures == [] and reads_done == CLIENTS * READS_PER_CLIENT


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_ingest_finds_a_thread_while_reads_hold_every_default_one() -> None:
    """A store call of ingest runs while every default worker thread is held by a blocked read."""
    default = anyio.to_thread.current_default_thread_limiter()
    default.total_tokens = 2
    release = threading.Event()
    started = threading.Semaphore(0)

    def blocked_read() -> None:
        started.release()
        release.wait(DEADLINE_S)

    def held() -> int:
        return default.borrowed_tokens

    async with anyio.create_task_group() as tasks:
        for _ in range(5):  # two hold the default threads, three wait for one
            tasks.start_soon(anyio.to_thread.run_sync, blocked_read)
        for _ in range(2):
            await anyio.to_thread.run_sync(started.acquire, limiter=anyio.CapacityLimiter(1))
        await anyio.wait_all_tasks_blocked()
        assert default.borrowed_tokens == 2 and default.statistics().tasks_waiting == 3
        assert await run_ingest(held) == 2  # ran on ingest's own thread, nothing was freed
        release.set()
    assert ingest_limiter().borrowed_tokens == 0
