"""Recovery after a hub outage, for every vendor whose API keeps history, on SQLite and PostgreSQL.

Each vendor's simulator is served over loopback and frozen; the hub's poller runs on a
:class:`~tests.steppedtime.SteppedClock`, is stopped, simulated time passes with no hub at all,
and a new poller starts on the same store, as ``meterhub serve`` restarted would. Afterwards
every reading and interval record the vendor's history serves inside the outage must be stored,
each equal to the simulator's truth. Outages of 9 minutes (a restart) and of over two hours
(hourly and quarter-hour records close inside it) are both run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest

from meterhub.poller import Poller
from meterhub.store import Store
from meterhub.vendors.intellimeter.mapping import SOURCE_INTERVAL
from meterhub.vendors.intellimeter.payloads import INTERVAL as INTELLIMETER_INTERVAL
from meterhub.vendors.intellimeter.payloads import interval_floor
from tests.backends import Backend
from tests.e2e_cases import CASES, VendorCase, mismatches
from tests.simservers import simulator
from tests.steppedtime import TimeDriver, frozen

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 2, 11, 9, 2, tzinfo=UTC)
"""A winter weekday morning; two minutes past the hour, so no outage starts on a boundary."""
WARM_UP = timedelta(hours=1)
OUTAGES = (timedelta(minutes=9), timedelta(hours=2, minutes=10))
"""A quick restart, and an outage inside which hours and quarter hours close."""


def _keeps_history(case: VendorCase) -> bool:
    """Return whether the vendor's history serves readings or interval records at all."""
    kind = type(case)
    return (
        kind.servable_readings is not VendorCase.servable_readings
        or kind.servable_intervals is not VendorCase.servable_intervals
    )


HISTORY_VENDORS = [vendor for vendor, case in CASES.items() if _keeps_history(case)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def intellimeter_intervals(app: Any, start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """Return the 5-minute energies ending in (start, end) the point recorded (both ends read)."""
    readings = app.state.site.readings
    point_id = app.state.site.point_named(CASES["intellimeter"].point).id  # type: ignore[attr-defined]
    ends = []
    ts = interval_floor(start) + INTELLIMETER_INTERVAL
    while ts < end:
        if readings.recorded(point_id, ts) and readings.recorded(point_id, ts - INTELLIMETER_INTERVAL):
            ends.append(ts)
        ts += INTELLIMETER_INTERVAL
    return [(ts - INTELLIMETER_INTERVAL, SOURCE_INTERVAL) for ts in ends]


def servable(case: VendorCase, app: Any, after: datetime, until: datetime) -> tuple[set[datetime], set[Any]]:
    """Return the reading instants and (start, source) of records the vendor serves in (after, until)."""
    readings = {ts for ts in case.servable_readings(app, after, until) if ts > after}
    intervals = set(case.servable_intervals(app, after, until, until))
    if case.vendor == "intellimeter":
        intervals |= set(intellimeter_intervals(app, after, until))
    return readings, intervals


def newest_instant(store: Store, meter_id: str) -> datetime:
    """Return the newest instant the store covers for a meter: a reading, else an interval's end."""
    latest = store.latest([meter_id], phase=0)
    if latest:
        return latest[0].ts
    records = store.intervals(meter_id, T0 - timedelta(days=2), T0 + timedelta(days=2))
    return max(record.end for record in records)


@dataclass
class RunningHub:
    """One poller on the shared store and stepped clock; stopped like a hub between writes."""

    poller: Poller
    scope: anyio.CancelScope
    stopped: anyio.Event


async def start_hub(
    store: Store, case: VendorCase, meter: Any, driver: TimeDriver, tasks: anyio.abc.TaskGroup, seed: int
) -> RunningHub:
    """Start a poller with its own HTTP client, as a restarted hub does."""
    client = httpx.AsyncClient(timeout=10)
    poller = Poller(store, client, clock=driver.clock, meters=[meter], seed=seed)
    await poller.load_meters()
    hub = RunningHub(poller, anyio.CancelScope(), anyio.Event())

    async def run() -> None:
        try:
            with hub.scope:
                await poller.run()
        finally:
            await client.aclose()
            hub.stopped.set()

    tasks.start_soon(run)
    driver.poller = poller
    return hub


async def stop_hub(hub: RunningHub, driver: TimeDriver) -> None:
    """Stop the poller and wait until it has."""
    await driver.settle()
    hub.scope.cancel()
    await hub.stopped.wait()
    driver.poller = None


@pytest.mark.parametrize("vendor", HISTORY_VENDORS)
async def test_recovery_stores_what_the_vendor_served_while_the_hub_was_down(
    vendor: str, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[vendor]
    store = backend.open()
    missing: list[str] = []
    checked = 0
    with simulator(vendor, speed=0.0, **case.sim_options(T0 - timedelta(days=1), None)) as sim:
        meter = case.meter(sim.info(), sim.base_url, monkeypatch)
        store.add_meter(meter)
        async with frozen(sim.base_url, T0) as (driver, _control, tasks):
            clock = driver.clock
            hub = await start_hub(store, case, meter, driver, tasks, seed=0)
            await driver.run_until(T0 + WARM_UP)
            for number, outage in enumerate(OUTAGES, start=1):
                await stop_hub(hub, driver)
                after = newest_instant(store, meter.id)
                up = clock.now() + outage
                await driver.step_to(up)  # no hub runs meanwhile
                hub = await start_hub(store, case, meter, driver, tasks, seed=number)
                await driver.run_until(up + timedelta(seconds=3 * case.interval_s))
                readings, intervals = servable(case, sim.app, after, up)
                stored_readings = {
                    r.ts for r in store.iter_readings([meter.id], after, up) if r.phase == 0
                }
                stored_intervals = {(r.start, r.source) for r in store.intervals(meter.id, after, up)}
                missing += [f"outage {outage}: reading at {ts}" for ts in sorted(readings - stored_readings)]
                missing += [
                    f"outage {outage}: {source} record from {start}"
                    for start, source in sorted(intervals - stored_intervals)
                ]
                checked += len(readings) + len(intervals)
            await stop_hub(hub, driver)
    assert missing == []
    assert checked > 0  # each vendor served something inside its outages
    since, until = T0 - timedelta(days=1), T0 + timedelta(days=1)
    stored = list(store.iter_readings([meter.id], since, until))
    wrong = [text for row in stored for text in mismatches(row, case.reading_truth(sim.app, row))]
    records = store.intervals(meter.id, since, until)
    wrong += [text for row in records for text in mismatches(row, case.interval_truth(sim.app, row))]
    assert wrong == []
