"""End to end over real loopback HTTP: each vendor's simulator, the hub's poller, a SQLite store.

Every simulator is served by uvicorn on a loopback port and frozen; the hub runs on a
:class:`~tests.steppedtime.SteppedClock` and both are stepped together, so two simulated days
pass in seconds and every call happens at the same simulated instant on both sides. What the
hub stores is compared with what the simulator holds true (:mod:`tests.e2e_cases`): its
physics, account or device state, never its HTTP answers.

1. A poll and a three-hour backfill store exactly the vendor's latest data and history, each
   value equal to the truth to the precision the vendor shows.
2. Two simulated days with the device offline for three hours, two bursts of 5xx answers, the
   hub stopped for three hours and started again on the same store, and a register reset end
   with every stored row true, no energy counted twice (rollup energy never negative, and the
   total equal to the physics' energy), nothing missing that the vendor's history could
   serve, and no window of the simulator's call log over a documented (or declared) quota.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from meterhub.model import IntervalEnergy, Meter, Reading
from meterhub.poller import BackfillJob, BackfillLedger, Poller, PollerSettings, backfill_meter
from meterhub.poller.recovery import recovery_key
from meterhub.store import Store, open_store
from tests.e2e_cases import CASES, Outages, VendorCase, mismatches
from tests.simservers import simulator
from tests.steppedtime import Event, SteppedClock, TimeDriver, frozen

pytestmark = pytest.mark.anyio

VENDORS = list(CASES)
POLLED_AT = datetime(2026, 2, 11, 10, 30, tzinfo=UTC)
"""Part one's instant: mid-hour, mid-morning, a Wednesday without daylight-saving changes."""
T0 = datetime(2026, 2, 9, 0, 0, tzinfo=UTC)
END = T0 + timedelta(days=2)
OUTAGES = Outages(
    offline=(T0 + timedelta(hours=9), T0 + timedelta(hours=12)),
    bursts=(
        (T0 + timedelta(hours=5), T0 + timedelta(hours=5, minutes=40), 500, 1),
        (T0 + timedelta(hours=33), T0 + timedelta(hours=34), 503, 2),
    ),
    hub_down=(T0 + timedelta(hours=22), T0 + timedelta(hours=25)),  # over midnight in Europe
    reset=T0 + timedelta(hours=30),
)
SETTINGS = PollerSettings()
"""The defaults a household runs with: 10 % jitter, backoff capped at an hour."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    yield opened
    opened.close()


def stored_rows(
    store: Store, meter_id: str, start: datetime, end: datetime
) -> tuple[list[Reading], list[IntervalEnergy]]:
    """Return every reading (all phases) and interval record of a meter in [start, end)."""
    return list(store.iter_readings([meter_id], start, end)), store.intervals(meter_id, start, end)


def untrue_rows(
    case: VendorCase, app: Any, readings: list[Reading], intervals: list[IntervalEnergy]
) -> list[str]:
    """Return every stored row that differs from the simulator's truth."""
    wrong = [text for row in readings for text in mismatches(row, case.reading_truth(app, row))]
    wrong += [text for row in intervals for text in mismatches(row, case.interval_truth(app, row))]
    return wrong


async def run_stepped(driver: TimeDriver, work: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``work()`` while the driver moves time on whenever it only waits for the clock."""
    result: list[Any] = []

    async def keep() -> None:
        result.append(await work())

    await driver.run_while(keep())
    return result[0]


# --- part one: a poll and a backfill ----------------------------------------------------------
@pytest.mark.parametrize("vendor", VENDORS)
async def test_a_poll_and_a_backfill_store_the_simulators_truth(
    vendor: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[vendor]
    with simulator(vendor, speed=0.0, **case.sim_options(POLLED_AT, None)) as sim:
        meter = case.meter(sim.info(), sim.base_url, monkeypatch)
        store.add_meter(meter)
        clock = SteppedClock(POLLED_AT)
        async with (
            httpx.AsyncClient(base_url=sim.base_url, timeout=10) as control,
            httpx.AsyncClient(timeout=10) as client,
        ):
            driver = TimeDriver(clock, control)
            await driver.freeze()
            poller = Poller(store, client, clock=clock, meters=[meter])
            outcome = await run_stepped(driver, lambda: poller.poll_once(meter.id))
            assert outcome.ok, outcome.error
            # UMeter's latest is today's quarter hours, so its history is asked of yesterday
            end = POLLED_AT - timedelta(days=1) if vendor == "umeter" else POLLED_AT
            job = BackfillJob.new(meter.id, end - timedelta(hours=3), end)
            done, _ = await run_stepped(
                driver, lambda: backfill_meter(store, client, meter, job, clock=clock)
            )
            backfilled_at = clock.now()
    assert done.finished
    app = sim.app
    since, until = POLLED_AT - timedelta(days=2), POLLED_AT + timedelta(seconds=1)
    readings, intervals = stored_rows(store, meter.id, since, until)
    assert readings or intervals
    assert untrue_rows(case, app, readings, intervals) == []

    newest = max([r.ts for r in readings if vendor != "umeter"] + [i.end for i in intervals])
    assert newest == case.latest_instant(app, POLLED_AT)  # the poll stored the vendor's latest

    in_window = {r.ts for r in readings if job.start <= r.ts < job.end and r.phase == 0}
    in_window.discard(case.latest_instant(app, POLLED_AT))
    assert sorted(in_window) == case.servable_readings(app, job.start, job.end)
    served = case.servable_intervals(app, job.start, job.end, backfilled_at)
    assert set(served) <= {(i.start, i.source) for i in intervals}


# --- part two: two simulated days -------------------------------------------------------------
class Hub:
    """The hub's poller, stopped and started again on the same store like ``meterhub serve``."""

    def __init__(self, store: Store, meter: Meter, driver: TimeDriver, tasks: anyio.abc.TaskGroup) -> None:
        self._store = store
        self._meter = meter
        self._driver = driver
        self._tasks = tasks
        self._stop: Callable[[], Awaitable[None]] | None = None
        self.pollers: list[Poller] = []

    async def start(self) -> None:
        """Start a new poller with a new HTTP client, as a restarted hub does."""
        client = httpx.AsyncClient(timeout=10)
        poller = Poller(
            self._store, client, clock=self._driver.clock, settings=SETTINGS, meters=[self._meter],
            seed=len(self.pollers),
        )  # fmt: skip
        await poller.load_meters()
        scope, stopped = anyio.CancelScope(), anyio.Event()

        async def run() -> None:
            try:
                with scope:
                    await poller.run()
            finally:
                await client.aclose()
                stopped.set()

        async def stop() -> None:
            scope.cancel()
            await stopped.wait()

        self._tasks.start_soon(run)
        self._stop = stop
        self._driver.poller = poller
        self.pollers.append(poller)

    async def stop(self) -> None:
        """Stop the running poller between two writes."""
        if self._stop is not None:
            await self._stop()
        self._stop = None
        self._driver.poller = None


def script(case: VendorCase, hub: Hub, control: httpx.AsyncClient) -> list[Event]:
    """Return the run's scripted events: bursts of 5xx, the hub down, the API unreachable."""

    def faults(**values: Any) -> Callable[[], Awaitable[None]]:
        async def post() -> None:
            (await control.post("/_sim/faults", json=values)).raise_for_status()

        return post

    events: list[Event] = []
    for start, end, status, every in OUTAGES.bursts:
        events += [(start, faults(error_status=status, error_every=every)), (end, faults())]
    down, up = OUTAGES.hub_down
    events += [(down, hub.stop), (up, hub.start)]
    if not case.physics_offline():
        events += [(OUTAGES.offline[0], faults(offline=True)), (OUTAGES.offline[1], faults())]
    return events


def outage_windows() -> list[tuple[datetime, datetime]]:
    """Return every span in which the hub could not have got data."""
    return [OUTAGES.offline, OUTAGES.hub_down, *((start, end) for start, end, _, _ in OUTAGES.bursts)]


def holes(times: list[datetime], interval_s: int) -> list[tuple[datetime, datetime]]:
    """Return the spans between stored instants longer than twice the interval."""
    return [(a, b) for a, b in pairwise(times) if (b - a).total_seconds() > 2 * interval_s]


def missing_data(
    case: VendorCase, app: Any, times: list[datetime], intervals: list[IntervalEnergy]
) -> list[str]:
    """Return what the vendor could have served inside the holes of the stored readings."""
    stored = {(record.start, record.source) for record in intervals}
    missing = []
    for a, b in holes(times, case.interval_s):
        inside = [ts for ts in case.servable_readings(app, a, b) if ts > a]
        missing += [f"reading at {ts} (hole {a} to {b})" for ts in inside]
        lost = [key for key in case.servable_intervals(app, a, b, b) if key not in stored]
        missing += [f"{source} interval from {start} (hole {a} to {b})" for start, source in lost]
    return missing


def late_resumptions(times: list[datetime], interval_s: int) -> list[str]:
    """Return holes not explained by an outage, or that outlast it by more than the backoff cap."""
    late = []
    slack = timedelta(seconds=SETTINGS.backoff_cap_s * (1 + SETTINGS.jitter_ratio) + 2 * interval_s)
    for a, b in holes(times, interval_s):
        causes = [(start, end) for start, end in outage_windows() if start < b and end + slack > a]
        if not any(b <= end + slack for _, end in causes):
            late.append(f"hole {a} to {b}")
    return late


def energy_errors(
    case: VendorCase, app: Any, store: Store, meter_id: str, readings: list[Reading]
) -> list[str]:
    """Return how the rollups' energy differs from the physics (it may lose the reset's interval)."""
    totals = [r for r in readings if r.phase == 0 and r.energy_import_kwh is not None]
    first, last = totals[0].ts, totals[-1].ts
    start = first.replace(minute=0, second=0, microsecond=0)
    buckets = store.rollups(meter_id, 0, start, last + timedelta(hours=1), 3600)
    errors = [f"bucket {b.start}: {b.energy_import_kwh} kWh" for b in buckets if b.energy_import_kwh < 0]
    errors += [f"bucket {b.start}: export {b.energy_export_kwh}" for b in buckets if b.energy_export_kwh < 0]
    household = case.household(app)
    before = max(r.ts for r in totals if r.ts < OUTAGES.reset)
    after = min(r.ts for r in totals if r.ts >= OUTAGES.reset)
    tolerance_kwh = 0.01
    for column, index in (("energy_import_kwh", 0), ("energy_export_kwh", 1)):
        if getattr(totals[0], column) is None:
            continue
        true_kwh = household.energy_between(first, last)[index]
        lost_at_most = household.energy_between(before, after)[index]
        rolled_up = sum(getattr(b, column) for b in buckets)
        if not true_kwh - lost_at_most - tolerance_kwh <= rolled_up <= true_kwh + tolerance_kwh:
            errors.append(
                f"{column}: rollups {rolled_up:.4f} kWh, physics {true_kwh:.4f} "
                f"(at most {lost_at_most:.4f} lost at the reset)"
            )
    return errors


def interval_energy_errors(case: VendorCase, app: Any, intervals: list[IntervalEnergy]) -> list[str]:
    """Return how the quarter hours' energy differs from the physics (UMeter)."""
    quarters = [record for record in intervals if record.end - record.start == timedelta(minutes=15)]
    errors = [
        f"{q.start}: {q.import_kwh} / {q.export_kwh} kWh"
        for q in quarters
        if (q.import_kwh or 0) < 0 or (q.export_kwh or 0) < 0
    ]
    true_import, true_export = case.household(app).energy_between(quarters[0].start, quarters[-1].end)
    stored_import = sum(q.import_kwh or 0.0 for q in quarters)
    stored_export = sum(q.export_kwh or 0.0 for q in quarters)
    for what, stored, true in (
        ("import", stored_import, true_import),
        ("export", stored_export, true_export),
    ):
        if abs(stored - true) > 0.02:  # registers are read to 0.01 kWh at both ends
            errors.append(f"{what}: quarters {stored:.3f} kWh, physics {true:.3f}")
    return errors


def overlapping(intervals: list[IntervalEnergy]) -> list[str]:
    """Return records of one source that overlap the one before (energy counted twice)."""
    found = []
    for source in {record.source for record in intervals}:
        mine = sorted((r for r in intervals if r.source == source), key=lambda r: r.start)
        found += [f"{source}: {b.start} in {a.start}..{a.end}" for a, b in pairwise(mine) if b.start < a.end]
    return found


@pytest.mark.slow
@pytest.mark.parametrize("vendor", VENDORS)
async def test_two_days_with_outages_a_reset_5xx_and_a_restart_lose_and_double_nothing(
    vendor: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[vendor]
    with simulator(vendor, speed=0.0, **case.sim_options(T0, OUTAGES)) as sim:
        meter = case.meter(sim.info(), sim.base_url, monkeypatch)
        store.add_meter(meter)
        async with frozen(sim.base_url, T0) as (driver, control, tasks):
            hub = Hub(store, meter, driver, tasks)
            await hub.start()
            await driver.run_until(END, script(case, hub, control))
            await hub.stop()
        calls = sim.call_times()
    app = sim.app
    readings, intervals = stored_rows(store, meter.id, T0 - timedelta(days=1), END + timedelta(hours=1))
    totals = [r.ts for r in readings if r.phase == 0]

    assert untrue_rows(case, app, readings, intervals) == []
    assert len({(r.ts, r.phase) for r in readings}) == len(readings)
    assert overlapping(intervals) == []
    assert missing_data(case, app, totals, intervals) == []
    breaches = [text for check in case.quota_checks for text in check.breaches(calls)]
    assert breaches == []
    health = store.health([meter.id])[meter.id]
    assert health.online and health.last_success is not None
    assert await BackfillLedger(store).load(recovery_key(meter.id)) is None  # recoveries finished
    assert len(hub.pollers) == 2 and sum(p.stats.failures for p in hub.pollers) > 0
    if vendor == "umeter":
        served = case.servable_intervals(app, T0 - timedelta(hours=1), END, health.last_success)
        assert set(served) - {(i.start, i.source) for i in intervals} == set()
        assert interval_energy_errors(case, app, intervals) == []
    else:
        assert late_resumptions(totals, case.interval_s) == []
        assert energy_errors(case, app, store, meter.id, readings) == []
        imports = [r.energy_import_kwh for r in readings if r.phase == 0 and r.energy_import_kwh is not None]
        assert min(imports) < 1.0 < max(imports)  # the reset is in the data
