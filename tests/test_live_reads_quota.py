"""A viewer asking for a smart-MAC's live relay state shares the poller's quota and never starves it.

The real smart-MAC simulator (standard rate class: one request a minute) is served on loopback
and frozen; the poller and the API run on one SQLite file, on one stepped clock (see
:mod:`tests.steppedtime`), so minutes pass in seconds and every call happens at the same instant
for hub and device. A viewer asks ``relay?live=true`` every 3 simulated seconds, a bounded
number of times, and an admin switches the relay now and then. Both ways a hub can run are
covered: the API in the poller's process (``meterhub serve``: live reads take the meter's turn
in the schedule) and the API alone beside a poller elsewhere (through the quota ledger in the
store). Everything is asserted by counts: the device never saw a request sooner than its rate
class allows, the poller counted no failure and the meter stayed online, and every reading a
live read or a switch fetched is in the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn

from meterhub.api import security
from meterhub.api.app import create_app
from meterhub.api.routes.relay import use_poller
from meterhub.config import Settings
from meterhub.model import Meter, UserRole
from meterhub.poller import Poller, PollerSettings
from meterhub.poller.connectors import SLOT_MARGIN_S
from meterhub.poller.hub import QuietServer, bind_socket
from meterhub.poller.live import LedgerLive
from meterhub.store import Store, open_store
from tests.api.conftest import password_hash
from tests.simservers import Sim, simulator
from tests.steppedtime import SteppedClock, TimeDriver
from tests.waiting import wait_until_async

pytestmark = pytest.mark.anyio

START = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
VIEWER_REQUESTS = 60
"""Live reads the viewer makes, one every VIEWER_PAUSE_S: three simulated minutes."""
VIEWER_PAUSE_S = 3
SWITCH_EVERY = 20
"""The admin switches the relay at every 20th request, when the device's turn is near."""
DEVICE_INTERVAL_S = 60
"""A standard smart-MAC answers one request a minute."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def device(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    """Serve one standard-rate smart-MAC device on loopback, starting at START."""
    with simulator("smartmac", start=START) as sim:
        monkeypatch.setenv("T_LIVE_PIN", sim.info()["devpass"])
        yield sim


@dataclass
class Run:
    """What happened during one run: the answers the viewer and the admin got."""

    live: list[dict[str, Any]] = field(default_factory=list)
    switches: list[httpx.Response] = field(default_factory=list)
    poller_failures: int = 0


async def run_hub(database_url: str, store: Store, device: Sim, *, same_process: bool) -> Run:
    """Run the poller and the API on one stepped clock while the viewer and the admin ask."""
    clock = SteppedClock(START)
    async with (
        httpx.AsyncClient(base_url=device.base_url, timeout=30) as control,
        httpx.AsyncClient(timeout=30) as vendor_http,
    ):
        driver = TimeDriver(clock, control)
        await driver.freeze()
        settings = PollerSettings(startup_spread_s=1)
        poller = Poller(
            store, vendor_http, clock=clock, meters=[store.get_meter("sm")], settings=settings, seed=7
        )
        driver.poller = poller
        app = create_app(database_url, Settings(database_url=database_url, api_rate_per_s=0))
        if same_process:
            use_poller(app, poller)  # as ``meterhub serve`` does
        else:
            app.state.live_reads = LedgerLive(clock)  # an API alone, on the shared clock
        sock = bind_socket("127.0.0.1", 0)
        server = QuietServer(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        keys = {name: security.issue_api_key(store, name, "tests")[1] for name in ("vic", "ada")}
        poller_scope = anyio.CancelScope()

        async def run_poller() -> None:
            with poller_scope:
                await poller.run()

        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(run_poller)
                tasks.start_soon(lambda: server.serve(sockets=[sock]))
                try:
                    await wait_until_async(lambda: server.started, "the API to serve")
                    async with (
                        httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": keys["vic"]}) as viewer,
                        httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": keys["ada"]}) as admin,
                    ):
                        run = await viewer_and_admin(viewer, admin, driver)
                finally:
                    server.should_exit = True
                    poller_scope.cancel()
        finally:
            sock.close()
    run.poller_failures = poller.stats.failures
    return run


async def viewer_and_admin(viewer: httpx.AsyncClient, admin: httpx.AsyncClient, driver: TimeDriver) -> Run:
    """Let the viewer ask live VIEWER_REQUESTS times, the admin switch now and then; return the answers."""
    run = Run()
    await driver.run_until(START + timedelta(seconds=5))  # the first poll is in
    wanted = True

    async def switch() -> None:
        body = {"state": "on" if wanted else "off"}
        run.switches.append(await admin.put("/api/v1/meters/sm/relay", json=body, timeout=60))

    for number in range(1, VIEWER_REQUESTS + 1):
        answer = await viewer.get("/api/v1/meters/sm/relay", params={"live": "true"}, timeout=60)
        assert answer.status_code == 200, answer.text
        run.live.append(answer.json())
        if number % SWITCH_EVERY == 0:  # shortly before the device's next turn
            near_turn_s = max(0.0, answer.json()["next_live_in_s"] - 5)
            await driver.run_until(driver.clock.now() + timedelta(seconds=near_turn_s))
            await driver.run_while(switch())
            wanted = not wanted
        await driver.run_until(driver.clock.now() + timedelta(seconds=VIEWER_PAUSE_S))
    return run


def add_meter_and_users(store: Store, device: Sim, interval_s: int) -> None:
    info = device.info()
    options = {"base_url": device.base_url, "devid": info["devid"], "devpass": "env:T_LIVE_PIN"}
    store.add_meter(Meter("sm", "smartmac", 3, "Europe/Oslo", interval_s, "", options))
    store.add_user("vic", UserRole.VIEWER, password_hash("viewer-password-1"))
    store.share("vic", "meter", "sm")
    store.add_user("ada", UserRole.ADMIN, password_hash("admin-password-1"))


@pytest.mark.parametrize("interval_s", [DEVICE_INTERVAL_S, 2 * DEVICE_INTERVAL_S])
@pytest.mark.parametrize("same_process", [True, False], ids=["api-in-the-poller-process", "api-alone"])
async def test_live_reads_and_switches_share_the_pollers_quota(
    same_process: bool, interval_s: int, tmp_path: Path, device: Sim
) -> None:
    database_url = f"sqlite:///{tmp_path / 'hub.db'}"
    store = open_store(database_url)
    try:
        add_meter_and_users(store, device, interval_s)
        run = await run_hub(database_url, store, device, same_process=same_process)
        end = START + timedelta(hours=1)
        readings = [r.ts for r in store.iter_readings(["sm"], START - timedelta(minutes=1), end, phase=0)]
        relay_states = {
            e.ts: e.value for e in store.extras("sm", "relay_on", START - timedelta(minutes=1), end)
        }
        health = store.health(["sm"])["sm"]
    finally:
        store.close()
    calls = device.call_times()["/"]

    # the device never saw a request sooner than its rate class allows (it would have refused it)
    assert all((later - earlier).total_seconds() >= DEVICE_INTERVAL_S for earlier, later in pairwise(calls))
    # ...and collection went on at the device's pace: one answer a minute over three minutes
    assert len(calls) >= (VIEWER_REQUESTS * VIEWER_PAUSE_S) // (DEVICE_INTERVAL_S + 6)
    # the poller counted no failure, and the meter is online
    assert run.poller_failures == 0
    assert health.online and health.consecutive_failures == 0
    # every answer the device gave is stored: one whole-meter reading per call
    assert len(readings) == len(set(readings)) == len(calls)
    fresh = [answer for answer in run.live if answer["source"] == "device"]
    recorded = [answer for answer in run.live if answer["source"] == "recorded"]
    assert recorded and len(fresh) + len(recorded) == VIEWER_REQUESTS
    if interval_s > DEVICE_INTERVAL_S:  # the device's free turns between polls are the viewer's
        assert fresh
    for answer in fresh:
        assert datetime.fromisoformat(answer["ts"]) in readings and answer["age_s"] == 0
    for answer in recorded:  # the last stored state, never older than the device's pace allows
        assert answer["on"] is not None and 0 <= answer["age_s"] <= DEVICE_INTERVAL_S + VIEWER_PAUSE_S + 6
        assert 0 < answer["next_live_in_s"] <= DEVICE_INTERVAL_S + SLOT_MARGIN_S
        assert relay_states[datetime.fromisoformat(answer["ts"])] == (1.0 if answer["on"] else 0.0)
    # a switch takes the meter's turn and its reading is stored like a poll's
    assert len(run.switches) == VIEWER_REQUESTS // SWITCH_EVERY
    switched = [s for s in run.switches if s.status_code == 200]
    for refused in (s for s in run.switches if s.status_code != 200):  # only another process's turn
        assert not same_process and refused.status_code == 429 and refused.headers["retry-after"]
    assert switched or not same_process
    for answer in (s.json() for s in switched):
        assert answer["source"] == "device" and datetime.fromisoformat(answer["ts"]) in readings
        assert relay_states[datetime.fromisoformat(answer["ts"])] == (1.0 if answer["on"] else 0.0)
