"""IAMMETER places end to end: the simulated cloud (an account in New York) -> discovery, which finds
the account's zone and each place's meters with their roles -> the place in the hub -> each meter's
share of the place's energyhistory through the poller's sink -> the place's energy in the hub's
analytics and its API, hour by hour where the account's hours are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from meterhub.analytics.places import place_energy
from meterhub.catalog import add_discovered
from meterhub.config import Settings
from meterhub.ingest import Ingestor
from meterhub.model import Meter, Role
from meterhub.poller.sink import Sink
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.base import ConnectorContext, Discovered, Fetched, QuotaGuard, TokenCache
from meterhub.vendors.iammeter.account import DEFAULT_METERS, MeterKind, MeterSpec, PlaceSpec
from meterhub.vendors.iammeter.connector import IammeterConnector
from meterhub.vendors.iammeter.payloads import METERSDATA_FLAT
from tests.api.conftest import ApiServer
from tests.simservers import Sim, simulator

pytestmark = pytest.mark.anyio

START = datetime(2026, 6, 10, 10, 30, tzinfo=UTC)
HEAT_PUMP = "5C1A1000"
METERS = (*DEFAULT_METERS, MeterSpec(HEAT_PUMP, "farm", METERSDATA_FLAT, MeterKind.SPECIAL))
PLACES = (PlaceSpec(1360, "DA2BED94"), PlaceSpec(2393, "3FE34ABE", "5E7A0C21", HEAT_PUMP))
ZONE = "Etc/GMT+4"  # New York's offset all through the month before START: UTC-4, fixed
DAY_START = datetime(2026, 6, 9, 4, tzinfo=UTC)  # 2026-06-09 00:00 in New York
DAY_END = DAY_START + timedelta(days=1)


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    monkeypatch.setenv("IAM_PLACES_PASSWORD", "123456")
    with simulator("iammeter", speed=0.0, start=START, meters=METERS, places=PLACES) as served:
        served._control("POST", "/_sim/variants", {"account_new_york": True})
        yield served


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "hub.db"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(db)
    yield opened
    opened.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0) as client:
        yield client


def connector(meter: Meter, store: SQLiteStore, http: httpx.AsyncClient) -> IammeterConnector:
    context = ConnectorContext(
        http, TokenCache(store, "iammeter", lambda: START),
        QuotaGuard(store, "iammeter", IammeterConnector.quotas, lambda: START), lambda: START,
    )
    return IammeterConnector(meter, context)


async def discover(
    sim: Sim, store: SQLiteStore, http: httpx.AsyncClient, tz: str = "UTC"
) -> list[Discovered]:
    options = {"base_url": sim.base_url, "username": "test", "password": "env:IAM_PLACES_PASSWORD",
               "place_id": "1360, 2393"}
    return await connector(Meter("probe", "iammeter", 1, tz, 300, "", options), store, http).discover()


def energyhistory(sim: Sim, group_by: str) -> list[dict[str, Any]]:
    params = {"token": sim.info()["token"], "startTime": "2026-06-09", "endTime": "2026-06-10",
              "groupby": group_by}
    answer = httpx.get(f"{sim.base_url}/api/v1/site/energyhistory/2393", params=params, timeout=30)
    rows: list[dict[str, Any]] = answer.json()["data"]
    return rows


async def test_discovery_builds_the_places_with_their_roles_in_the_accounts_zone(
    sim: Sim, store: SQLiteStore, http: httpx.AsyncClient
) -> None:
    found = await discover(sim, store, http)
    assert {d.tz for d in found} == {ZONE}  # from localTime - gmtTime, not the zone asked with (UTC)
    assert {d.options["sn"]: (d.place.place_id, d.place.role) for d in found if d.place} == {
        "DA2BED94": ("iammeter-1360", "grid"),
        "3FE34ABE": ("iammeter-2393", "grid"),
        "5E7A0C21": ("iammeter-2393", "solar"),
        HEAT_PUMP: ("iammeter-2393", "special"),
    }
    heat_pump = next(d for d in found if d.options["sn"] == HEAT_PUMP)
    assert {k: heat_pump.options[k] for k in ("place_id", "place_role")} == {"place_id": "2393",
                                                                             "place_role": "special"}
    lines = [added.line for added in add_discovered(store, found)]
    assert "added place iammeter-2393 (Etc/GMT+4): meter iammeter-3fe34abe is its grid meter" in lines
    assert "place iammeter-2393: meter iammeter-5c1a1000 is its special meter" in lines
    place = store.get_place("iammeter-2393")
    assert (place.tz, dict(place.meters)) == (ZONE, {
        "iammeter-3fe34abe": Role.GRID, "iammeter-5e7a0c21": Role.SOLAR, "iammeter-5c1a1000": Role.SPECIAL,
    })
    assert store.get_meter("iammeter-674b1e5d").tz == ZONE  # in no place, still in the account's zone


async def test_the_zone_asked_with_wins_when_it_has_the_offsets_seen(
    sim: Sim, store: SQLiteStore, http: httpx.AsyncClient
) -> None:
    assert {d.tz for d in await discover(sim, store, http, tz="America/New_York")} == {"America/New_York"}


async def test_the_places_energyhistory_lands_where_the_places_energy_is_read(
    sim: Sim, store: SQLiteStore, db: Path, http: httpx.AsyncClient
) -> None:
    add_discovered(store, await discover(sim, store, http))
    place = store.get_place("iammeter-2393")
    sink = Sink(store, Ingestor(store, now=lambda: START))
    for meter_id, _ in place.meters:
        async for chunk in connector(store.get_meter(meter_id), store, http).history(DAY_START, DAY_END):
            await sink.write(Fetched(intervals=chunk.intervals))  # the energyhistory alone

    hours = place_energy(store, place, DAY_START, DAY_END, "hour")
    vendor_hours = energyhistory(sim, "hour")
    assert [row["time"] for row in vendor_hours[:2]] == ["2026/6/9 0:00:00", "2026/6/9 1:00:00"]
    assert len(hours) == len(vendor_hours) == 24
    assert hours[0].start == DAY_START  # the account's midnight, not UTC's: no hour off
    for ours, theirs in zip(hours, vendor_hours, strict=True):
        assert (ours.yield_kwh, ours.from_grid_kwh, ours.to_grid_kwh, ours.special_load_kwh) == pytest.approx(
            (theirs["yield"], theirs["fromGrid"], theirs["toGrid"], theirs["specialLoad"]), abs=1e-9
        )
        assert ours.self_use_kwh == pytest.approx(theirs["selfUse"], abs=0.011)  # from rounded figures
        assert ours.source == "interval:iammeter:energyhistory:hour" and not ours.estimated
    assert sum(h.yield_kwh for h in hours) > 1 and sum(h.special_load_kwh for h in hours) > 1
    assert sum(h.to_grid_kwh for h in hours) > 0 and sum(h.from_grid_kwh for h in hours) > 0

    [day] = energyhistory(sim, "day")
    server = ApiServer(f"sqlite:///{db}", Settings(database_url=f"sqlite:///{db}", api_rate_per_s=0)).start()
    try:
        answer = server.client(server.admin_key).get(
            "/api/v1/places/iammeter-2393/energy", params={"start": "2026-06-09", "end": "2026-06-10"}
        )
    finally:
        server.stop()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["tz"], body["bucket"], len(body["data"])) == (ZONE, "1d", 1)
    [row] = body["data"]
    assert row["start"].startswith("2026-06-09T00:00:00-04:00")
    ours_of = {"yield": "yield_kwh", "fromGrid": "from_grid_kwh", "toGrid": "to_grid_kwh",
               "specialLoad": "special_load_kwh", "selfUse": "self_use_kwh"}  # fmt: skip
    for name, ours in ours_of.items():  # hours add up to the day
        assert row[ours] == pytest.approx(day[name], abs=0.13), name
