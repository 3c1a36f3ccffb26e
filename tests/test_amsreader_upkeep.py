"""An AMS reader's prices and capacity peaks reach the hub without any import, end to end.

The simulated reader (firmware v2.5.7, so it serves ``/importprice.json``) is discovered with
``meterhub meters discover amsreader --add``, polled by the poller on stepped time (the
simulator frozen and moved with the hub's clock), and read back through the HTTP API: the price
series, the place's hourly cost under it, and the capacity figures with the reader's own peaks
standing in for days the hub has no hourly data of.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import httpx
import pytest
from click.testing import CliRunner

from meterhub.cli import main
from meterhub.config import Settings
from meterhub.poller import BackfillJob, Poller, PollerSettings
from meterhub.poller.backfill import backfill_meter
from meterhub.store import Store, open_store
from tests.api.conftest import ApiServer
from tests.simservers import Sim, simulator
from tests.steppedtime import running, stepped

OSLO = ZoneInfo("Europe/Oslo")
START = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)
"""11:30 in Oslo on 4 March: today's prices are known, tomorrow's not yet (they come at 13:00)."""
METER = "amsreader-ams-sim"
SERIES = "amsreader-ams-sim-import"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.close()


@pytest.fixture
def sim() -> Iterator[Sim]:
    with simulator("amsreader", speed=0.0, start=START, firmware_version="v2.5.7") as served:
        yield served


@pytest.fixture
def api(db_url: str) -> Iterator[ApiServer]:
    server = ApiServer(db_url, Settings(database_url=db_url, api_rate_per_s=0)).start()
    yield server
    server.stop()


def discover(db_url: str, sim: Sim) -> list[dict[str, Any]]:
    args = ["--database-url", db_url, "meters", "discover", "amsreader", "--base-url", sim.base_url]
    result = CliRunner().invoke(main, [*args, "--add", "--format", "json"])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    found: list[dict[str, Any]] = json.loads(result.stdout)
    sim._control("DELETE", "/_sim/calls")  # count only what polling asks from here on
    # The command took the reader's 2 s slots on the real clock, months after the stepped
    # March days the poller then runs on; those slots would hold that past for months.
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        db.execute("DELETE FROM quota_ledger")
    return found


def served(sim: Sim, route: str) -> Any:
    with httpx.Client(base_url=sim.base_url, timeout=10) as client:
        answer = client.get(route)
    answer.raise_for_status()
    return answer.json()


async def poll_for(store: Store, sim: Sim, span: timedelta, start: datetime = START) -> None:
    """Run the poller on stepped time for ``span``, the discovered meter polled every 10 minutes."""
    meter = replace(store.get_meter(METER), interval_s=600)
    async with stepped(start, sim.base_url) as (driver, client):
        settings = PollerSettings(jitter_ratio=0.0, startup_spread_s=0.0)
        poller = Poller(store, client, clock=driver.clock, settings=settings, meters=[meter])
        async with running(poller, driver):
            await driver.run_until(start + span)
        assert poller.stats.failures == 0
        job = BackfillJob.new(METER, start - timedelta(days=1), driver.clock.now())
        await driver.run_while(backfill_meter(store, client, meter, job, clock=driver.clock))


def test_discovery_places_the_reader_with_its_series_and_capacity_steps(db_url: str, sim: Sim) -> None:
    [found] = discover(db_url, sim)
    store = open_store(db_url)
    try:
        place = store.get_place(METER)
        meter = store.get_meter(METER)
    finally:
        store.close()
    assert found["id"] == METER
    assert dict(place.meters) == {METER: "grid"} and place.tz == "Europe/Oslo"
    assert place.tariff == {
        "import_series": SERIES,
        "currency": "NOK",
        "capacity_thresholds_kwh": [5, 10, 15, 20, 25, 50, 75, 100, 150],
        "capacity_peak_days": 3,
    }
    assert meter.options["price_series"] == SERIES and meter.options["capacity_peaks"] == "true"


@pytest.mark.anyio
async def test_polled_prices_price_the_place_and_are_not_read_again_after_a_restart(
    db_url: str, store: Store, sim: Sim, api: ApiServer
) -> None:
    await anyio.to_thread.run_sync(discover, db_url, sim)
    await poll_for(store, sim, timedelta(minutes=95))
    first_run = sim.calls()
    await poll_for(store, sim, timedelta(minutes=5), START + timedelta(minutes=96))
    after_restart = sim.calls()
    prices = served(sim, "/importprice.json")  # the frozen reader still answers as at 12:11 UTC
    admin = api.client(api.admin_key)
    listed = admin.get("/api/v1/prices").json()
    slots = admin.get(
        f"/api/v1/prices/{SERIES}",
        params={"start": "2026-03-04T00:00+01:00", "end": "2026-03-05T00:00+01:00"},
    ).json()
    cost = admin.get(
        f"/api/v1/places/{METER}/cost",
        params={"start": "2026-03-04T00:00+01:00", "end": "2026-03-04T11:00+01:00", "groupby": "hour"},
    ).json()
    # Prices at the first poll (10:30) and an hour later (11:30), not at each 10-minute poll;
    # the poller restarted at 12:06 knows they were read at 11:30 and does not read them again
    # at its poll at 12:10, while the peaks, last read at 11:10, are due again.
    assert first_run["/importprice.json"] == 2 and first_run["/data.json"] == 10
    assert after_restart["/importprice.json"] == 2 and after_restart["/data.json"] == 11
    assert (first_run["/tariff.json"], after_restart["/tariff.json"]) == (2, 3)
    # The reader's day starts at midnight in Oslo (23:00 UTC). It learnt tomorrow's prices at
    # 13:00 local (12:00 UTC), after the hub's last read at 12:30 local: the hub has today's 24.
    assert prices["resolution"] == 60 and len(prices["prices"]) == 48
    assert all(p is not None for p in prices["prices"])
    assert [(s["series"], s["currency"], s["slots"]) for s in listed] == [(SERIES, "NOK", 24)]
    assert [s["price_per_kwh"] for s in slots] == prices["prices"][:24]
    assert (
        slots[0]["start"] == "2026-03-03T23:00:00+00:00" and slots[-1]["end"] == "2026-03-04T23:00:00+00:00"
    )
    # The place's hours from midnight to 11:00 (dayplot hours) are priced by the reader's series.
    rows = cost["data"]
    assert len(rows) == 11 and cost["currency"] == "NOK"
    for hour, row in enumerate(rows):
        assert row["energy_import_kwh"] > 0 and row["unpriced_import_kwh"] == 0
        price = prices["prices"][hour]  # money keeps 5 decimals, energy the Wh
        allowed = 6e-4 * abs(price) + 1e-5
        assert row["import_cost"] == pytest.approx(row["energy_import_kwh"] * price, abs=allowed)


@pytest.mark.anyio
async def test_the_readers_peaks_fill_the_days_the_hub_has_no_hours_of(
    db_url: str, store: Store, sim: Sim, api: ApiServer
) -> None:
    await anyio.to_thread.run_sync(discover, db_url, sim)
    await poll_for(store, sim, timedelta(minutes=95))
    tariff = served(sim, "/tariff.json")
    capacity = api.client(api.admin_key).get(f"/api/v1/places/{METER}/capacity", params={"month": "2026-03"})
    assert capacity.status_code == 200, capacity.text
    body = capacity.json()
    # The hub holds exact hours from 3 March 12:00 local on (the reader's 24-hour day plot):
    # the 3rd and the 4th are its own; the 1st and 2nd have only the reader's peaks.
    reader = {peak["d"]: peak for peak in tariff["p"] if peak["d"] in (1, 2)}
    by_day = {peak["day"]: peak for peak in body["day_peaks"]}
    assert reader, "the reader's top peaks should include the 1st or the 2nd"
    for day, peak in reader.items():
        kept = by_day[f"2026-03-{day:02d}"]
        assert kept["energy_kwh"] == peak["v"]
        assert kept["hour_start"].startswith(f"2026-03-{day:02d}T{peak['h']:02d}:00")
    assert {f"2026-03-{day:02d}" for day in reader}.isdisjoint(body["missing_days"])
    assert "2026-03-03" in by_day and "2026-03-04" in by_day
