"""The poller's schedule, health, backoff, quotas and recovery, on a real SQLite store.

The vendor here is the test double of ``tests/poller_doubles.py`` (the real vendors are in
``test_poller_vendors.py``); time runs on a scaled :class:`Clock`, so minutes pass in seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import anyio
import httpx
import pytest

from meterhub.errors import PayloadError, QuotaExceeded, VendorAuthError, VendorUnavailable
from meterhub.model import Meter
from meterhub.poller import BackfillLedger, Clock, Poller, PollerSettings, retry_delay_s
from meterhub.poller.recovery import recovery_key
from meterhub.store import Store, open_store
from tests.poller_doubles import VENDOR, Device, errors_of, resolver
from tests.store.conftest import BACKENDS, Backend

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'poller.db'}")
    yield opened
    opened.close()


def add_meters(store: Store, devices: dict[str, Device], interval_s: int = 60) -> None:
    for meter_id in devices:
        store.add_meter(Meter(meter_id, VENDOR, 1, "UTC", interval_s, "", {"base_url": "double"}))


def make_poller(
    store: Store, client: httpx.AsyncClient, devices: dict[str, Device], clock: Clock, **settings: float
) -> Poller:
    return Poller(
        store, client, clock=clock, resolve=resolver(devices), settings=PollerSettings(**settings), seed=7
    )


async def run_for(poller: Poller, real_s: float) -> None:
    with anyio.move_on_after(real_s):
        await poller.run()


def gaps_s(calls: list[datetime]) -> list[float]:
    return [(later - earlier).total_seconds() for earlier, later in pairwise(calls)]


def test_retry_delay_doubles_up_to_the_cap() -> None:
    assert [retry_delay_s(60, n, 400) for n in range(1, 6)] == [60, 120, 240, 400, 400]
    assert retry_delay_s(900, 3, 400) == 900  # never faster than the meter's own interval


async def test_each_meter_keeps_its_own_interval(store: Store) -> None:
    devices = {"a": Device(), "b": Device(), "c": Device()}
    for meter_id, interval_s in (("a", 60), ("b", 120), ("c", 300)):
        store.add_meter(Meter(meter_id, VENDOR, 1, "UTC", interval_s, "", {"base_url": "double"}))
    async with httpx.AsyncClient() as client:
        poller = make_poller(store, client, devices, Clock(START, 150.0))
        await run_for(poller, 4.0)  # 10 simulated minutes
    for meter_id, interval_s in (("a", 60), ("b", 120), ("c", 300)):
        calls = devices[meter_id].calls
        gaps = sorted(gaps_s(calls))
        assert calls[0] - START <= timedelta(seconds=20)  # first polls spread over 10 s
        assert len(calls) >= int(600 / (interval_s * 1.1)) - 1
        assert gaps[0] >= interval_s  # never sooner than the meter's interval
        assert gaps[len(gaps) // 2] <= interval_s * 1.1 + 10  # and on time (plus jitter)
    assert store.count_readings("a") == len(devices["a"].calls)
    assert {h.meter: h.online for h in store.health().values()} == {"a": True, "b": True, "c": True}


async def test_errors_become_health_and_never_stop_polling(store: Store) -> None:
    devices = {
        "m": Device(
            errors=[
                VendorUnavailable("timeout"),
                PayloadError("truncated JSON"),
                VendorAuthError("bad token"),
                RuntimeError("a bug in a connector"),
                None,
            ]
        )
    }
    add_meters(store, devices)
    async with httpx.AsyncClient() as client:
        poller = make_poller(store, client, devices, Clock(START, 1.0))
        outcomes = [await poller.poll_once("m") for _ in range(5)]
        health = [store.health(["m"])["m"]]
    assert [o.ok for o in outcomes] == [False, False, False, False, True]
    assert outcomes[0].error == "VendorUnavailable: timeout"
    assert outcomes[1].error == "PayloadError: truncated JSON"
    assert outcomes[2].error == "VendorAuthError: bad token"
    assert outcomes[3].error == "unexpected RuntimeError: a bug in a connector"
    waits = [o.next_in_s for o in outcomes[:4]]
    assert [round(w / base, 1) <= 1.1 for w, base in zip(waits, (60, 120, 240, 480), strict=True)]
    assert all(base <= w for w, base in zip(waits, (60, 120, 240, 480), strict=True))
    assert health[0].online and health[0].consecutive_failures == 0
    assert poller.stats.failures == 4 and poller.stats.successes == 1


async def test_health_counts_consecutive_failures(store: Store) -> None:
    devices = {"m": Device(errors=errors_of(VendorUnavailable, 2))}
    add_meters(store, devices)
    async with httpx.AsyncClient() as client:
        poller = make_poller(store, client, devices, Clock(START, 1.0))
        seen = []
        for _ in range(3):
            await poller.poll_once("m")
            seen.append(store.health(["m"])["m"])
    assert [(h.online, h.consecutive_failures) for h in seen] == [(False, 1), (False, 2), (True, 0)]
    assert seen[1].last_error == "VendorUnavailable: scripted VendorUnavailable 1"
    assert seen[2].last_success is not None and seen[2].last_success >= seen[1].last_error_at


async def test_quota_exceeded_waits_exactly_its_retry_after(store: Store) -> None:
    devices = {"m": Device(errors=[QuotaExceeded("over quota", retry_after_s=30.0)])}
    add_meters(store, devices)
    async with httpx.AsyncClient() as client:
        poller = make_poller(store, client, devices, Clock(START, 20.0))
        outcome = await poller.poll_once("m")
        assert outcome.next_in_s == 30.0
        devices["m"].errors = [QuotaExceeded("over quota", retry_after_s=30.0)]
        devices["m"].calls.clear()
        await run_for(poller, 2.5)
    first, second = devices["m"].calls[:2]
    assert 30.0 <= (second - first).total_seconds() < 32.0


async def test_backoff_in_the_schedule_is_exponential_and_capped(store: Store) -> None:
    devices = {"m": Device(errors=errors_of(VendorUnavailable, 6))}
    add_meters(store, devices)
    async with httpx.AsyncClient() as client:
        poller = make_poller(store, client, devices, Clock(START, 300.0), backoff_cap_s=300.0)
        await run_for(poller, 6.0)  # 30 simulated minutes
    gaps = gaps_s(devices["m"].calls)
    expected = [60, 120, 240, 300, 300, 300, 60]
    assert len(gaps) >= len(expected)
    for gap, base in zip(gaps, expected, strict=False):
        assert base <= gap <= base * 1.1 + 15, (gaps, expected)
    assert store.health(["m"])["m"].online


async def test_one_failing_meter_does_not_hold_up_the_others(store: Store) -> None:
    devices = {"bad": Device(errors=[RuntimeError("boom")] * 100), "good": Device()}
    add_meters(store, devices)
    async with httpx.AsyncClient() as client:
        poller = make_poller(store, client, devices, Clock(START, 300.0))
        await run_for(poller, 2.0)
    assert len(devices["good"].calls) >= 8
    health = store.health()
    assert health["good"].online and not health["bad"].online
    assert health["bad"].consecutive_failures == len(devices["bad"].calls)


async def test_recovery_backfills_the_missed_window(store: Store) -> None:
    offline_from, offline_until = START + timedelta(minutes=5), START + timedelta(minutes=40)
    devices = {"m": Device(offline_from=offline_from, offline_until=offline_until)}
    add_meters(store, devices)
    async with httpx.AsyncClient() as client:
        poller = make_poller(store, client, devices, Clock(START, 600.0), backoff_cap_s=600.0)
        await run_for(poller, 6.0)  # an hour
    device = devices["m"]
    failed = [t for t in device.calls if offline_from <= t < offline_until]
    assert len(failed) >= 3
    assert len(device.history_calls) >= 1
    first, last = device.calls[0], device.calls[-1]
    stored = [r.ts for r in store.iter_readings(["m"], first, last + timedelta(seconds=1))]
    assert stored == sorted(set(stored))
    assert max(gaps_s(stored)) <= 2 * 60  # no hole the vendor could have filled
    assert store.gaps("m", first, last) == []
    assert poller.stats.backfilled_windows >= 1
    assert await BackfillLedger(store).load(recovery_key("m")) is None


async def test_a_paused_recovery_resumes_after_a_restart(store: Store) -> None:
    devices = {"m": Device(history_errors=[QuotaExceeded("history quota", retry_after_s=3600.0)])}
    add_meters(store, devices)
    async with httpx.AsyncClient() as client:
        clock = Clock(START, 1.0)
        first = make_poller(store, client, devices, clock)
        await first.poll_once("m")
        devices["m"].offline_from, devices["m"].offline_until = START, START + timedelta(days=1)
        clock = Clock(START + timedelta(hours=2), 1.0)  # the hub was down for two hours
        devices["m"].offline_until = START
        second = make_poller(store, client, devices, clock)
        outcome = await second.poll_once("m")
        assert outcome.ok and outcome.backfill is not None
        pending = await BackfillLedger(store).load(recovery_key("m"))
        assert pending is not None and not pending.finished
        third = make_poller(store, client, devices, Clock(START + timedelta(hours=2, minutes=5), 1.0))
        await third.poll_once("m")
    assert await BackfillLedger(store).load(recovery_key("m")) is None
    stored = [r.ts for r in store.iter_readings(["m"], START, START + timedelta(hours=3))]
    assert max(gaps_s(stored)) <= 120
    assert len(devices["m"].history_calls) >= 3


async def test_a_restart_never_polls_sooner_than_the_interval(store: Store) -> None:
    devices = {"m": Device()}
    add_meters(store, devices, interval_s=300)
    async with httpx.AsyncClient() as client:
        clock = Clock(START, 300.0)
        await run_for(make_poller(store, client, devices, clock), 0.5)
        await run_for(make_poller(store, client, devices, clock), 2.0)
    assert len(devices["m"].calls) >= 2
    assert min(gaps_s(devices["m"].calls)) >= 300


async def test_thousands_of_meters_on_one_loop(store: Store) -> None:
    count = 2000
    devices = {f"m{n:04d}": Device() for n in range(count)}
    add_meters(store, devices, interval_s=600)
    tasks_seen: list[int] = []

    async def watch_tasks() -> None:
        while True:
            await anyio.sleep(0.05)
            tasks_seen.append(len(asyncio.all_tasks()))

    async with httpx.AsyncClient() as client, anyio.create_task_group() as task_group:
        task_group.start_soon(watch_tasks)
        poller = make_poller(store, client, devices, Clock(START, 300.0))
        await run_for(poller, 5.0)  # 25 simulated minutes: two polls of each meter, or three
        task_group.cancel_scope.cancel()
    assert all(len(device.calls) >= 2 for device in devices.values())
    assert all(min(gaps_s(device.calls)) >= 600 for device in devices.values())
    assert poller.stats.successes <= store.count_readings() <= poller.stats.polls
    assert max(tasks_seen) <= 200 + 20  # no task per meter: only polls in flight have one
    assert min(tasks_seen) <= 20  # and between polls almost none


@pytest.mark.parametrize("backend_name", BACKENDS)
async def test_health_data_and_recovery_on_every_backend(backend_name: str, tmp_path: Path) -> None:
    place = Backend(backend_name, tmp_path)
    try:
        store = place.open()
        devices = {"m": Device(errors=[VendorUnavailable("down")])}
        add_meters(store, devices)
        async with httpx.AsyncClient() as client:
            poller = make_poller(store, client, devices, Clock(START, 1.0))
            outcomes = [await poller.poll_once("m"), await poller.poll_once("m")]
            later = make_poller(store, client, devices, Clock(START + timedelta(hours=2), 1.0))
            outcomes.append(await later.poll_once("m"))  # the hub was away for two hours
        health = store.health(["m"])["m"]
        stored = [r.ts for r in store.iter_readings(["m"], START, START + timedelta(hours=3))]
        pending = await BackfillLedger(store).load(recovery_key("m"))
    finally:
        place.close()
    assert [o.ok for o in outcomes] == [False, True, True]
    assert (
        health.online and health.consecutive_failures == 0 and health.last_error == "VendorUnavailable: down"
    )
    assert len(stored) >= 120 and max(gaps_s(stored)) <= 60
    assert pending is None
