"""The poller against the real vendor simulators over loopback HTTP, on a real SQLite store.

Quotas are asserted from the simulators' own call counts (``/_sim/calls``) and from the fact that
a simulator answers over quota with an error the poller would count as a failure; faults come
from ``POST /_sim/faults``. Time is stepped (:mod:`tests.steppedtime`): the simulator is frozen
and moved with the hub's clock from one thing due to the next, so hours pass in seconds and a
busy machine changes how long a test takes, never what it sees.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from meterhub import metrics
from meterhub.model import Meter, MeterHealth
from meterhub.poller import BackfillJob, Poller, PollerSettings
from meterhub.poller.backfill import backfill_meter
from meterhub.store import Store, open_store
from tests.simservers import Sim, simulator
from tests.steppedtime import SteppedClock, TimeDriver, running, stepped
from tests.waiting import DEADLINE_S, wait_until

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
"""Where the frozen simulators start: in the past, so what they answer passes ingest's checks."""
METERDATA = "/api/v1/site/meterdata2/{sn}"
LOGIN = "/api/v1/user/login"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    yield opened
    opened.close()


def vendor_meter(sim: Sim, monkeypatch: pytest.MonkeyPatch, interval_s: int = 60) -> Meter:
    """Return a meter of the simulator's account, its secrets passed as env references."""
    info: dict[str, Any] = sim.info()
    url = sim.base_url
    if sim.vendor == "iammeter":
        monkeypatch.setenv("T_IAM_PASSWORD", info["password"])
        first = info["meters"][0]
        options = {"base_url": url, "username": info["user_name"], "password": "env:T_IAM_PASSWORD"}
        return Meter("iam", "iammeter", first["phases"], info["tz"], 300, "", {**options, "sn": first["sn"]})
    if sim.vendor == "smartmac":
        monkeypatch.setenv("T_SM_PIN", info["devpass"])
        options = {"base_url": url, "devid": info["devid"], "devpass": "env:T_SM_PIN"}
        return Meter("sm", "smartmac", info["phases"], "Europe/Oslo", 60, "", options)
    if sim.vendor == "intellimeter":
        monkeypatch.setenv("T_IM_PASSWORD", info["login"]["password"])
        options = {"base_url": url, "username": info["login"]["username"], "password": "env:T_IM_PASSWORD"}
        return Meter("im", "intellimeter", 1, info["tz"], 300, "", {**options, "point": info["meters"][0]})
    if sim.vendor == "amsreader":
        return Meter("ams", "amsreader", 3, "Europe/Oslo", max(interval_s, 10), "", {"base_url": url})
    monkeypatch.setenv("T_UM_PASSWORD", info["credentials"]["password"])
    options = {"base_url": url, "username": info["credentials"]["username"], "password": "env:T_UM_PASSWORD"}
    return Meter("um", "umeter", 1, info["zone"], 900, "", {**options, "ean": info["eans"][0]})


def total_times(store: Store, meter_id: str, start: datetime, end: datetime) -> list[datetime]:
    return [r.ts for r in store.iter_readings([meter_id], start, end, phase=0)]


def widest_gap_s(times: list[datetime]) -> float:
    return max((b - a).total_seconds() for a, b in pairwise(times))


@pytest.mark.parametrize("vendor", ["iammeter", "smartmac", "intellimeter", "amsreader", "umeter"])
async def test_every_vendor_polls_and_backfills(
    vendor: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulator(vendor) as sim:
        meter = vendor_meter(sim, monkeypatch)
        store.add_meter(meter)
        async with httpx.AsyncClient(timeout=10) as client:
            outcome = await Poller(store, client).poll_once(meter.id)
            assert outcome.ok, outcome.error
            now = sim.now()
            # UMeter's latest is today's quarter hours, so its history is asked of yesterday
            end = now - timedelta(days=1) if vendor == "umeter" else now
            job = BackfillJob.new(meter.id, end - timedelta(hours=3), end)
            done, stored = await backfill_meter(store, client, meter, job)
    assert done.finished
    exposed = metrics.exposition().decode()
    assert f'meterhub_polls_total{{outcome="ok",vendor="{vendor}"}}' in exposed
    assert 'meterhub_quota_limit{quota=' in exposed and f'vendor="{vendor}"' in exposed
    health = store.health([meter.id])[meter.id]
    assert health.online and health.consecutive_failures == 0
    latest = store.latest([meter.id])
    intervals = store.intervals(meter.id, now - timedelta(days=2), now + timedelta(hours=1))
    assert latest or intervals
    if vendor == "smartmac":
        assert stored.readings == stored.intervals == 0  # the device keeps no history
    else:
        assert stored.readings + stored.intervals > 0


@pytest.mark.slow
async def test_iammeter_quota_holds_and_data_stays_complete_across_restarts(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulator("iammeter", speed=0.0, start=START) as sim:
        meter = vendor_meter(sim, monkeypatch)
        store.add_meter(meter)
        failures = 0
        async with stepped(START, sim.base_url) as (driver, client):
            clock = driver.clock
            # the hub runs 25 minutes, is down for 30, runs 25, is down for 2.5, runs 25
            for down_s in (0.0, 1800.0, 150.0):
                await driver.step_to(clock.now() + timedelta(seconds=down_s))
                settings = PollerSettings(startup_spread_s=5)
                poller = Poller(store, client, clock=clock, settings=settings, meters=[meter])
                async with running(poller, driver):
                    await driver.run_until(clock.now() + timedelta(minutes=25))
                failures += poller.stats.failures
            ended = clock.now()
        calls = sim.calls()
    hours = (ended - START).total_seconds() / 3600
    assert failures == 0  # over quota the simulator answers nothing, which would be a failure
    assert calls[LOGIN] == 1  # the token survives restarts
    assert 8 <= calls[METERDATA] <= 12 * hours + 1
    times = total_times(store, meter.id, START, ended)
    assert times == sorted(set(times))
    assert widest_gap_s(times) <= 2 * meter.interval_s  # the outage was backfilled
    assert store.gaps(meter.id, times[0], times[-1]) == []


def health_now(store: Store, meter_id: str) -> MeterHealth | None:
    return store.health([meter_id]).get(meter_id)


@pytest.mark.slow
async def test_faults_give_health_errors_backoff_and_recovery_backfills(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[MeterHealth] = []

    def online() -> bool:
        health = health_now(store, meter.id)
        return health is not None and health.online

    def new_error(known: set[str | None]) -> bool:
        health = health_now(store, meter.id)
        if health is not None:
            seen.append(health)
        return health is not None and not health.online and health.last_error not in known

    with simulator("iammeter", speed=0.0, start=START) as sim:
        meter = vendor_meter(sim, monkeypatch)
        store.add_meter(meter)
        settings = PollerSettings(startup_spread_s=1, backoff_cap_s=1200)
        async with stepped(START, sim.base_url) as (driver, client):
            poller = Poller(store, client, clock=driver.clock, settings=settings, meters=[meter])
            async with running(poller, driver):
                await driver.run_until_true(online, "a first good poll")
                before_faults = driver.clock.now()
                calls_before = sim.calls()[METERDATA]
                for faults in (
                    {"error_status": 500, "error_every": 1},
                    {"truncate_json": True},
                    {"offline": True},
                ):
                    sim.faults(**faults)  # each until the poller has met it, while its waits grow
                    known = {h.last_error for h in seen}
                    await driver.run_until_true(partial(new_error, known), f"a poll meeting {faults}")
                calls_during = sim.calls()[METERDATA] - calls_before
                sim.faults()
                await driver.run_until_true(online, "a good poll after the faults")
                await driver.run_until_true(lambda: poller.stats.backfilled_windows > 0, "a backfill")
            ended = driver.clock.now()
    errors = {h.last_error for h in seen if not h.online}
    assert errors and all(e is not None and e.startswith("VendorUnavailable") for e in errors)
    assert len(errors) >= 3  # a 5xx, a truncated body and a dropped connection read differently
    assert max(h.consecutive_failures for h in seen) >= 3
    failed_at = sorted({h.last_error_at for h in seen if not h.online and h.last_error_at is not None})
    waits_s = [(later - earlier).total_seconds() for earlier, later in pairwise(failed_at)]
    assert len(waits_s) >= 2
    for retry, wait_s in enumerate(waits_s):  # 5, 10, 20 minutes... between the failing polls
        assert wait_s >= meter.interval_s * 2**retry * 0.99, waits_s
    assert calls_during == len(failed_at)  # no call beyond those the backoff allowed
    times = total_times(store, meter.id, before_faults - timedelta(minutes=10), ended)
    assert widest_gap_s(times) <= 2 * meter.interval_s  # the faulty hour was backfilled


async def test_each_fault_is_a_typed_error_with_a_doubling_wait(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulator("iammeter", speed=0.0, start=START) as sim:
        meter = vendor_meter(sim, monkeypatch)
        store.add_meter(meter)
        outcomes = []
        async with stepped(START, sim.base_url) as (driver, client):
            poller = Poller(store, client, clock=driver.clock)
            outcomes.append(await poller.poll_once(meter.id))
            for faults in (
                {"error_status": 503, "error_every": 1},
                {"truncate_json": True},
                {"offline": True},
                {"latency_s": 2 * DEADLINE_S},  # an answer far later than the client waits
                {},
            ):
                sim.faults(**faults)
                client.timeout = httpx.Timeout(1.0 if "latency_s" in faults else DEADLINE_S)
                await driver.step_to(driver.clock.now() + timedelta(minutes=12))  # within the quota
                outcomes.append(await poller.poll_once(meter.id))
    assert [o.ok for o in outcomes] == [True, False, False, False, False, True]
    for outcome in outcomes[1:5]:
        assert outcome.error is not None and outcome.error.startswith("VendorUnavailable: ")
    assert len({o.error for o in outcomes[1:5]}) == 4
    waits = [o.next_in_s / meter.interval_s for o in outcomes[1:5]]
    assert [round(w) for w in waits] == [1, 2, 4, 8] or all(
        lo <= w <= lo * 1.1 for w, lo in zip(waits, (1, 2, 4, 8), strict=True)
    )
    health = store.health([meter.id])[meter.id]
    assert health.online and health.consecutive_failures == 0


async def test_a_restarted_hub_reuses_the_quota_ledger(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    with simulator("smartmac", speed=0.0, start=START) as sim:
        meter = vendor_meter(sim, monkeypatch)
        store.add_meter(meter)
        async with stepped(START, sim.base_url) as (driver, client):
            first = await Poller(store, client, clock=driver.clock).poll_once(meter.id)
            await driver.step_to(START + timedelta(seconds=1))
            second = await Poller(store, client, clock=driver.clock).poll_once(meter.id)  # a restart
        calls = sim.calls()
    assert first.ok and not second.ok
    assert second.error is not None and second.error.startswith("QuotaHeld")  # our ledger said no
    assert second.next_in_s == 59 + PollerSettings().quota_margin_s  # the ledger's wait, with its margin
    assert calls == {"/": 1}  # the refused call never reached the device


async def test_clock_follows_a_simulator() -> None:
    speed = 120.0
    with simulator("umeter", speed=speed) as sim:
        clock, round_trip_s = sim.clock_and_round_trip()
        started = clock.now()
        wait_until(lambda: clock.now() - started >= timedelta(minutes=1), "a simulated minute to pass")
        before = clock.now()
        simulated, asked_s = timed(sim.now)
        after = clock.now()
    # the clock is off by at most half the round trip it was set with; the ask took asked_s
    slack = timedelta(seconds=(round_trip_s / 2 + asked_s) * speed + 1)
    assert before - slack <= simulated <= after + slack


def timed(ask: Callable[[], datetime]) -> tuple[datetime, float]:
    """Return what ``ask()`` answers and the real seconds it took."""
    before_s = time.monotonic()
    answer = ask()
    return answer, time.monotonic() - before_s


@pytest.mark.parametrize(("rate_class", "interval_s"), [("extended", 6), ("standard", 60)])
async def test_a_smartmac_is_polled_as_often_as_its_rate_class_allows(
    rate_class: str, interval_s: int, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)
    extended = rate_class == "extended"
    with simulator("smartmac", speed=0.0, start=start, extended=extended) as sim:
        meter = vendor_meter(sim, monkeypatch)
        meter = replace(meter, interval_s=1, options={**meter.options, "rate_class": rate_class})
        store.add_meter(meter)
        clock = SteppedClock(start)
        async with (
            httpx.AsyncClient(base_url=sim.base_url, timeout=10) as control,
            httpx.AsyncClient(timeout=10) as client,
            anyio.create_task_group() as tasks,
        ):
            driver = TimeDriver(clock, control)
            await driver.freeze()
            poller = Poller(store, client, clock=clock, meters=[meter], seed=3)
            await poller.load_meters()
            tasks.start_soon(poller.run)
            driver.poller = poller
            await driver.run_until(start + timedelta(minutes=10))
            tasks.cancel_scope.cancel()
        polled = sim.call_times()["/"]
    gaps_s = [(b - a).total_seconds() for a, b in pairwise(polled)]
    assert poller.stats.failures == 0  # the device never answered 429
    assert min(gaps_s) >= interval_s
    assert sorted(gaps_s)[len(gaps_s) // 2] <= interval_s * 1.1 + 1  # and on time, plus jitter
    assert len(polled) >= 600 / (interval_s * 1.1 + 1) - 1
