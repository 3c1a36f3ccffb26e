"""The poller's schedule, health, backoff, quotas and recovery, on a real store.

The vendors are the real simulators over loopback HTTP (``tests/simservers.py``), frozen and
stepped with the hub's clock (``tests/steppedtime.py``): hours pass in seconds, and a busy machine
changes how long a test takes, never what it sees. Faults are the simulators' own
(``POST /_sim/faults``). The poller's calls are seen as they leave its HTTP client. Two tests use
the double of ``tests/poller_doubles.py`` and say why.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from meterhub.model import Meter
from meterhub.poller import BackfillLedger, Poller, PollerSettings, retry_delay_s
from meterhub.poller.recovery import recovery_key
from meterhub.store import Store, open_store
from tests.backends import BACKENDS, Backend
from tests.poller_doubles import VENDOR, Device, resolver
from tests.simservers import Sim, simulator
from tests.steppedtime import TimeDriver, running, stepped

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
"""Where the frozen simulators start: in the past, so what they answer passes ingest's checks."""
METERDATA = "/api/v1/site/meterdata2/"
HISTORY = "/api/v1/site/meterdatalist2"
INTERVAL_S = 300
"""IAMMETER's own pace: one meterdata call per 5 minutes per meter."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'poller.db'}")
    yield opened
    opened.close()


@pytest.fixture
def iam() -> Iterator[Sim]:
    with simulator("iammeter", speed=0.0, start=START) as sim:
        yield sim


def iam_meters(sim: Sim, monkeypatch: pytest.MonkeyPatch, intervals: dict[str, int]) -> list[Meter]:
    """Return meters of the simulated account's first meters, each with its own interval."""
    info: dict[str, Any] = sim.info()
    monkeypatch.setenv("T_IAM_PASSWORD", info["password"])
    options = {"base_url": sim.base_url, "username": info["user_name"], "password": "env:T_IAM_PASSWORD"}
    return [
        Meter(meter_id, "iammeter", spec["phases"], info["tz"], interval_s, "", {**options, "sn": spec["sn"]})
        for (meter_id, interval_s), spec in zip(intervals.items(), info["meters"], strict=False)
    ]


def smartmac_meter(sim: Sim, monkeypatch: pytest.MonkeyPatch, meter_id: str = "sm") -> Meter:
    info: dict[str, Any] = sim.info()
    monkeypatch.setenv("T_SM_PIN", info["devpass"])
    options = {"base_url": sim.base_url, "devid": info["devid"], "devpass": "env:T_SM_PIN"}
    return Meter(meter_id, "smartmac", info["phases"], "UTC", 60, "", options)


class Calls:
    """The instants (on the hub's clock) of the requests the poller's client sends, per path."""

    def __init__(self, driver: TimeDriver) -> None:
        self._driver = driver
        self.by_path: dict[str, list[datetime]] = {}

    async def __call__(self, request: httpx.Request) -> None:
        self.by_path.setdefault(request.url.path, []).append(self._driver.clock.now())

    def of(self, prefix: str) -> list[datetime]:
        """Return the instants of calls whose path starts with ``prefix``, in order."""
        return sorted(at for path, ats in self.by_path.items() if path.startswith(prefix) for at in ats)

    def meterdata(self, meter: Meter) -> list[datetime]:
        return self.of(METERDATA + meter.options["sn"])


def watch(client: httpx.AsyncClient, driver: TimeDriver) -> Calls:
    calls = Calls(driver)
    client.event_hooks["request"].append(calls)
    return calls


def add(store: Store, meters: list[Meter]) -> list[Meter]:
    for meter in meters:
        store.add_meter(meter)
    return meters


def gaps_s(calls: list[datetime]) -> list[float]:
    return [(later - earlier).total_seconds() for earlier, later in pairwise(calls)]


def total_times(store: Store, meter_id: str, start: datetime, end: datetime) -> list[datetime]:
    return [r.ts for r in store.iter_readings([meter_id], start, end, phase=0)]


def test_retry_delay_doubles_up_to_the_cap() -> None:
    assert [retry_delay_s(60, n, 400) for n in range(1, 6)] == [60, 120, 240, 400, 400]
    assert retry_delay_s(900, 3, 400) == 900  # never faster than the meter's own interval


async def test_each_meter_keeps_its_own_interval(
    store: Store, iam: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    meters = add(store, iam_meters(iam, monkeypatch, {"a": 300, "b": 600, "c": 900}))
    async with stepped(START, iam.base_url) as (driver, client):
        calls = watch(client, driver)
        poller = Poller(store, client, clock=driver.clock, meters=meters, seed=7)
        async with running(poller, driver):
            await driver.run_until(START + timedelta(hours=2))
    for meter in meters:
        polled = calls.meterdata(meter)
        gaps = sorted(gaps_s(polled))
        assert polled[0] - START <= timedelta(seconds=20)  # first polls spread over 10 s
        assert len(polled) >= int(7200 / (meter.interval_s * 1.1)) - 1
        assert gaps[0] >= meter.interval_s  # never sooner than the meter's interval
        assert gaps[len(gaps) // 2] <= meter.interval_s * 1.1 + 10  # and on time (plus jitter)
        uploads = total_times(store, meter.id, START - timedelta(hours=1), driver.clock.now())
        assert len(uploads) == len(polled)  # each poll finds a new upload
    assert {h.meter: h.online for h in store.health().values()} == {"a": True, "b": True, "c": True}


async def test_errors_become_health_and_never_stop_polling(
    store: Store, iam: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    (meter,) = add(store, iam_meters(iam, monkeypatch, {"m": INTERVAL_S}))
    outcomes = []
    async with stepped(START, iam.base_url) as (driver, client):
        poller = Poller(store, client, clock=driver.clock, seed=7)
        for faults in ({"error_status": 503, "error_every": 1}, {"truncate_json": True},
                       {"error_status": 401, "error_every": 1}, {}):  # fmt: skip
            iam.faults(**faults)
            outcomes.append(await poller.poll_once(meter.id))
            await driver.step_to(driver.clock.now() + timedelta(minutes=10))  # within the quota
        health = store.health([meter.id])[meter.id]
    assert [o.ok for o in outcomes] == [False, False, False, True]
    errors = [o.error or "" for o in outcomes[:3]]
    assert errors[0].startswith("VendorUnavailable: ") and "HTTP 503" in errors[0]
    assert errors[1].startswith("VendorUnavailable: ") and "truncated" in errors[1]
    assert errors[2].startswith("VendorAuthError: ") and "HTTP 401" in errors[2]
    waits = [o.next_in_s for o in outcomes[:3]]
    assert all(base <= w <= base * 1.1 for w, base in zip(waits, (300, 600, 1200), strict=True))
    assert health.online and health.consecutive_failures == 0
    assert poller.stats.failures == 3 and poller.stats.successes == 1


async def test_a_bug_in_a_connector_is_a_failure_like_any_other(store: Store) -> None:
    """A double: no simulator can make our own connector raise an unexpected exception."""
    devices = {"m": Device(errors=[RuntimeError("a bug in a connector"), None])}
    store.add_meter(Meter("m", VENDOR, 1, "UTC", 60, "", {"base_url": "double"}))
    async with stepped(START) as (driver, client):
        poller = Poller(store, client, clock=driver.clock, resolve=resolver(devices), seed=7)
        failed = await poller.poll_once("m")
        health = store.health(["m"])["m"]
        await driver.step_to(START + timedelta(seconds=failed.next_in_s))
        recovered = await poller.poll_once("m")
    assert not failed.ok and failed.error == "unexpected RuntimeError: a bug in a connector"
    assert 60 <= failed.next_in_s <= 66
    assert not health.online and health.consecutive_failures == 1
    assert recovered.ok and store.health(["m"])["m"].online


async def test_health_counts_consecutive_failures(
    store: Store, iam: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    (meter,) = add(store, iam_meters(iam, monkeypatch, {"m": INTERVAL_S}))
    seen = []
    async with stepped(START, iam.base_url) as (driver, client):
        poller = Poller(store, client, clock=driver.clock, seed=7)
        await poller.poll_once(meter.id)  # logged in and polled
        iam.faults(error_status=503, error_every=1)
        for poll in range(3):
            if poll == 2:
                iam.faults()
            await driver.step_to(driver.clock.now() + timedelta(minutes=10))
            await poller.poll_once(meter.id)
            seen.append(store.health([meter.id])[meter.id])
    assert [(h.online, h.consecutive_failures) for h in seen] == [(False, 1), (False, 2), (True, 0)]
    assert (seen[1].last_error or "").startswith("VendorUnavailable: ")
    assert "HTTP 503" in (seen[1].last_error or "")
    assert seen[2].last_success is not None and seen[1].last_error_at is not None
    assert seen[2].last_success >= seen[1].last_error_at


async def test_quota_exceeded_waits_exactly_its_retry_after(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulator("smartmac", speed=0.0, start=START) as sim:
        meter = add(store, [smartmac_meter(sim, monkeypatch)])[0]
        login = {key: sim.info()[key] for key in ("devid", "devpass")}
        async with stepped(START, sim.base_url) as (driver, client):

            async def another_app_asks() -> None:  # the device answers it, then 429 for 60 s
                answer = await client.get(sim.base_url, params={"page": "getdata", **login})
                assert answer.status_code == 200

            await another_app_asks()
            await driver.step_to(START + timedelta(seconds=30))
            poller = Poller(store, client, clock=driver.clock, meters=[meter], seed=7)
            outcome = await poller.poll_once(meter.id)
            await driver.step_to(START + timedelta(minutes=5))
            await another_app_asks()
            async with running(poller, driver):
                await driver.run_until(START + timedelta(minutes=8))
        device_calls = sim.call_times()["/"]
    assert outcome.error is not None and outcome.error.startswith("QuotaExceeded") and "429" in outcome.error
    assert outcome.next_in_s == 30.0
    asked, refused, answered = device_calls[2:5]  # the other app, the refused poll, the next one
    retry_after_s = math.ceil(60 - (refused - asked).total_seconds())
    assert refused >= asked and retry_after_s > 0
    assert retry_after_s <= (answered - refused).total_seconds() < retry_after_s + 2
    assert store.health([meter.id])[meter.id].online


async def test_backoff_in_the_schedule_is_exponential_and_capped(
    store: Store, iam: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    meters = add(store, iam_meters(iam, monkeypatch, {"m": INTERVAL_S}))
    settings = PollerSettings(backoff_cap_s=1500.0)
    async with stepped(START, iam.base_url) as (driver, client):
        calls = watch(client, driver)
        poller = Poller(store, client, clock=driver.clock, settings=settings, meters=meters, seed=7)
        async with running(poller, driver):
            await driver.run_until_true(lambda: len(calls.meterdata(meters[0])) == 1, "a first poll")
            iam.faults(error_status=503, error_every=1)
            await driver.run_until_true(lambda: poller.stats.failures == 6, "six failed polls")
            iam.faults()
            await driver.run_until_true(lambda: poller.stats.successes == 3, "two good polls after them")
    gaps = gaps_s(calls.meterdata(meters[0]))
    expected = [300, 300, 600, 1200, 1500, 1500, 1500, 300]
    assert len(gaps) == len(expected)
    for gap, base in zip(gaps, expected, strict=True):
        assert base <= gap <= base * 1.1 + 15, (gaps, expected)
    assert store.health(["m"])["m"].online


async def test_one_failing_meter_does_not_hold_up_the_others(
    store: Store, iam: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulator("smartmac", speed=0.0, start=START) as broken:
        broken.faults(offline=True)  # its connections drop: every poll fails
        meters = add(store, [*iam_meters(iam, monkeypatch, {"good": INTERVAL_S}),
                             smartmac_meter(broken, monkeypatch, "bad")])  # fmt: skip
        async with stepped(START, iam.base_url, broken.base_url) as (driver, client):
            poller = Poller(store, client, clock=driver.clock, meters=meters, seed=7)
            async with running(poller, driver):
                await driver.run_until(START + timedelta(hours=1))
        bad_calls = broken.calls()["/"]
    health = store.health()
    assert health["good"].online and not health["bad"].online
    assert store.count_readings("good") > 0 and poller.stats.successes >= 10
    assert health["bad"].consecutive_failures == bad_calls >= 3


async def test_recovery_backfills_the_missed_window(
    store: Store, iam: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    offline_from, offline_until = START + timedelta(minutes=25), START + timedelta(minutes=200)

    async def go_offline() -> None:
        iam.faults(offline=True)

    async def come_back() -> None:
        iam.faults()

    (meter,) = add(store, iam_meters(iam, monkeypatch, {"m": INTERVAL_S}))
    settings = PollerSettings(backoff_cap_s=3000.0)
    async with stepped(START, iam.base_url) as (driver, client):
        calls = watch(client, driver)
        poller = Poller(store, client, clock=driver.clock, settings=settings, meters=[meter], seed=7)
        async with running(poller, driver):
            await driver.run_until(START + timedelta(hours=5), [(offline_from, go_offline),
                                                                (offline_until, come_back)])  # fmt: skip
    polled = calls.meterdata(meter)
    failed = [t for t in polled if offline_from <= t < offline_until]
    assert len(failed) >= 3
    assert len(calls.of(HISTORY)) >= 1
    first, last = polled[0], polled[-1]
    stored = total_times(store, meter.id, first, last + timedelta(seconds=1))
    assert stored == sorted(set(stored))
    assert max(gaps_s(stored)) <= 2 * INTERVAL_S  # no hole the vendor could have filled
    assert store.gaps(meter.id, first, last) == []
    assert poller.stats.backfilled_windows >= 1
    assert await BackfillLedger(store).load(recovery_key(meter.id)) is None


async def test_a_paused_recovery_resumes_after_a_restart(
    store: Store, iam: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    (meter,) = add(store, iam_meters(iam, monkeypatch, {"m": INTERVAL_S}))
    async with stepped(START, iam.base_url) as (driver, client):
        calls = watch(client, driver)
        await Poller(store, client, clock=driver.clock, seed=7).poll_once(meter.id)
        await driver.step_to(START + timedelta(hours=2))  # the hub was down for two hours
        iam.faults(error_status=429, error_every=2)  # the latest answers, the history is refused
        outcome = await Poller(store, client, clock=driver.clock, seed=7).poll_once(meter.id)
        pending = await BackfillLedger(store).load(recovery_key(meter.id))
        iam.faults()
        await driver.step_to(START + timedelta(hours=2, minutes=10))
        await Poller(store, client, clock=driver.clock, seed=7).poll_once(meter.id)
    assert outcome.ok and outcome.backfill is not None
    assert pending is not None and not pending.finished
    assert await BackfillLedger(store).load(recovery_key(meter.id)) is None
    stored = total_times(store, meter.id, START, START + timedelta(hours=3))
    assert max(gaps_s(stored)) <= 2 * INTERVAL_S
    assert len(calls.of(HISTORY)) >= 2


async def test_a_restart_never_polls_sooner_than_the_interval(
    store: Store, iam: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    meters = add(store, iam_meters(iam, monkeypatch, {"m": INTERVAL_S}))
    async with stepped(START, iam.base_url) as (driver, client):
        calls = watch(client, driver)
        for until in (START + timedelta(seconds=150), START + timedelta(seconds=750)):
            poller = Poller(store, client, clock=driver.clock, meters=meters, seed=7)
            async with running(poller, driver):
                await driver.run_until(until)
    polled = calls.meterdata(meters[0])
    assert len(polled) >= 2
    assert min(gaps_s(polled)) >= INTERVAL_S


async def test_thousands_of_meters_on_one_loop(store: Store) -> None:
    """A double: this counts the poller's own tasks, which 2,000 HTTP servers would drown."""
    count = 2000
    devices = {f"m{n:04d}": Device() for n in range(count)}
    meters = [Meter(meter_id, VENDOR, 1, "UTC", 600, "", {"base_url": "double"}) for meter_id in devices]
    for meter in meters:
        store.add_meter(meter)
    tasks_seen: list[int] = []
    end = START + timedelta(minutes=25)  # two polls of each meter, or three
    async with stepped(START) as (driver, client):
        poller = Poller(store, client, clock=driver.clock, resolve=resolver(devices), meters=meters, seed=7)
        async with running(poller, driver):
            while driver.clock.now() < end:
                await driver.step(until=end)
                for _ in range(20):  # the polls just due start running
                    await anyio.lowlevel.checkpoint()
                    tasks_seen.append(len(asyncio.all_tasks()))
                await driver.settle()
                tasks_seen.append(len(asyncio.all_tasks()))
    assert all(len(device.calls) >= 2 for device in devices.values())
    assert all(min(gaps_s(device.calls)) >= 600 for device in devices.values())
    assert poller.stats.successes <= store.count_readings() <= poller.stats.polls
    assert max(tasks_seen) <= 200 + 20  # no task per meter: only polls in flight have one
    assert min(tasks_seen) <= 20  # and between polls almost none


@pytest.mark.parametrize("backend_name", BACKENDS)
async def test_health_data_and_recovery_on_every_backend(
    backend_name: str, tmp_path: Path, iam: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    place = Backend(backend_name, tmp_path)
    try:
        store = place.open()
        (meter,) = add(store, iam_meters(iam, monkeypatch, {"m": INTERVAL_S}))
        async with stepped(START, iam.base_url) as (driver, client):
            poller = Poller(store, client, clock=driver.clock, seed=7)
            iam.faults(error_status=503, error_every=1)
            outcomes = [await poller.poll_once(meter.id)]
            iam.faults()
            await driver.step_to(START + timedelta(minutes=10))
            outcomes.append(await poller.poll_once(meter.id))
            await driver.step_to(START + timedelta(hours=2, minutes=10))  # the hub was away for two hours
            later = Poller(store, client, clock=driver.clock, seed=7)
            outcomes.append(await later.poll_once(meter.id))
        health = store.health([meter.id])[meter.id]
        stored = total_times(store, meter.id, START, START + timedelta(hours=3))
        pending = await BackfillLedger(store).load(recovery_key(meter.id))
    finally:
        place.close()
    assert [o.ok for o in outcomes] == [False, True, True]
    assert health.online and health.consecutive_failures == 0
    assert health.last_error is None and health.last_error_at is None  # a success clears the error
    assert len(stored) >= 24 and max(gaps_s(stored)) <= 2 * INTERVAL_S
    assert pending is None
