"""The IAMMETER connector against the simulated cloud, with a real SQLite store for tokens and quotas."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from meterhub.errors import (
    ConfigError,
    QuotaExceeded,
    VendorAuthError,
    VendorUnavailable,
)
from meterhub.model import Meter, Reading
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.base import Connector, ConnectorContext, Fetched, QuotaGuard, TokenCache
from meterhub.vendors.iammeter.connector import HISTORY_DAYS, MAX_LIST_ROWS, IammeterConnector
from meterhub.vendors.iammeter.simulator import create_app

pytestmark = pytest.mark.anyio

START = datetime(2026, 6, 10, 10, 30, tzinfo=UTC)
BASE_URL = "https://iammeter.sim"
THREE_PHASE, ONE_PHASE, PLACE = "3FE34ABE", "DA2BED94", "2393"
PASSWORD = "123456"  # the seed's example account, served by the simulator
LOGIN, METERDATA = "/api/v1/user/login", "/api/v1/site/meterdata2/{sn}"
LIST, HISTORY = "/api/v1/site/meterdatalist2/{sn}", "/api/v1/site/energyhistory/{place_id}"


class Rig:
    """A simulated cloud, one HTTP client, a store file and a clock shared by both sides."""

    def __init__(self, app: Starlette, http: httpx.AsyncClient, db: Path) -> None:
        self.app, self.http, self.db = app, http, db
        self.now = START
        self._stores: list[SQLiteStore] = []
        self.store = self.restart()

    def clock(self) -> datetime:
        return self.now

    def restart(self) -> SQLiteStore:
        """Open the store file afresh, as a restarted process does."""
        self.store = SQLiteStore(self.db)
        self._stores.append(self.store)
        return self.store

    def close(self) -> None:
        for store in self._stores:
            store.close()

    def connector(self, sn: str = THREE_PHASE, **options: str) -> IammeterConnector:
        meter_options = {"base_url": BASE_URL, "username": "env:IAMMETER_TEST_USER",
                         "password": "env:IAMMETER_TEST_PASSWORD", "sn": sn, **options}
        interval_s = int(meter_options.pop("interval_s", "60"))
        meter = Meter(f"iam-{sn.lower()}", "iammeter", tz="Europe/Oslo", interval_s=interval_s,
                      options=meter_options)
        context = ConnectorContext(
            self.http,
            TokenCache(self.store, "iammeter", self.clock),
            QuotaGuard(self.store, "iammeter", IammeterConnector.quotas, self.clock),
            self.clock,
        )
        return IammeterConnector(meter, context)

    async def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
        response = await self.http.post("/_sim/clock", json={"now": self.now.isoformat()})
        assert response.status_code == 200

    async def calls(self) -> dict[str, int]:
        calls: dict[str, int] = (await self.http.get("/_sim/calls")).json()
        return calls

    async def faults(self, **faults: Any) -> None:
        assert (await self.http.post("/_sim/faults", json=faults)).status_code == 200


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IAMMETER_TEST_USER", "test")
    monkeypatch.setenv("IAMMETER_TEST_PASSWORD", PASSWORD)


@pytest.fixture
async def rig(tmp_path: Path, credentials: None) -> AsyncIterator[Rig]:
    app = create_app(seed=1, speed=0.0, start=START)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=60.0) as http:
        rig = Rig(app, http, tmp_path / "meterhub.db")
        try:
            yield rig
        finally:
            rig.close()


async def collect(chunks: AsyncIterator[Fetched]) -> list[Fetched]:
    return [chunk async for chunk in chunks]


def by_phase(readings: list[Reading]) -> dict[int, Reading]:
    return {r.phase: r for r in readings}


async def test_it_satisfies_the_connector_protocol(rig: Rig) -> None:
    connector: Connector = rig.connector()
    assert connector.vendor == "iammeter" and connector.min_interval_s == 300


async def test_latest_maps_the_physics_of_the_last_upload(rig: Rig) -> None:
    fetched = await rig.connector(THREE_PHASE).latest()
    meter = rig.app.state.account.meters[THREE_PHASE]
    uploaded_at = meter.latest_upload(START)
    state = meter.reading_at(uploaded_at)
    phases = by_phase(fetched.readings)
    assert sorted(phases) == [0, 1, 2, 3]
    assert {r.ts for r in fetched.readings} == {uploaded_at}
    for number, truth in enumerate(state.phases, 1):
        got = phases[number]
        assert got.voltage_v == pytest.approx(truth.voltage_v, abs=0.01)
        assert got.power_w == pytest.approx(truth.power_w, abs=0.1)
        assert got.power_factor == pytest.approx(truth.power_factor, abs=0.01)
        assert got.energy_import_kwh == pytest.approx(truth.energy_import_kwh, abs=0.001)
        assert got.energy_export_kwh == pytest.approx(truth.energy_export_kwh, abs=0.001)
    total = phases[0]
    assert total.power_w == pytest.approx(state.total.power_w, abs=0.3)
    assert total.energy_import_kwh == pytest.approx(state.total.energy_import_kwh, abs=0.005)
    assert total.voltage_v == pytest.approx(state.total.voltage_v, abs=0.02)


async def test_a_single_phase_meter_has_phase_0_only(rig: Rig) -> None:
    fetched = await rig.connector(ONE_PHASE).latest()
    assert [r.phase for r in fetched.readings] == [0]
    meter = rig.app.state.account.meters[ONE_PHASE]
    truth = meter.reading_at(meter.latest_upload(START)).total
    assert fetched.readings[0].power_w == pytest.approx(truth.power_w, abs=0.1)


async def test_the_token_is_reused_across_restarts(rig: Rig) -> None:
    await rig.connector().latest()
    rig.store.close()
    rig.restart()
    await rig.advance(minutes=5)
    await rig.connector().latest()
    await rig.connector(ONE_PHASE).latest()
    calls = await rig.calls()
    assert calls[LOGIN] == 1
    assert calls[METERDATA] == 3


async def test_a_rejected_token_is_forgotten_and_replaced_by_one_login(rig: Rig, tmp_path: Path) -> None:
    await rig.connector().latest()
    # The vendor issues a different token from now on (another simulated account seed).
    other = create_app(seed=2, speed=0.0, start=START)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url=BASE_URL) as http:
        rig.http = http
        fetched = await rig.connector().latest()
        calls = await rig.calls()
    assert fetched.readings
    assert calls[LOGIN] == 1
    assert calls[METERDATA] == 2  # refused once with the old token, then answered


async def test_wrong_credentials_are_an_auth_error_that_names_no_secret(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IAMMETER_TEST_PASSWORD", "s3cret-wrong")
    connector = rig.connector()
    with pytest.raises(VendorAuthError) as caught:
        await connector.latest()
    assert (await rig.calls())[LOGIN] == 1
    assert "s3cret" not in _chain_text(caught.value)
    assert "s3cret" not in repr(connector)


async def test_the_13th_meterdata_call_in_an_hour_is_refused_before_any_request(rig: Rig) -> None:
    for _ in range(12):
        await rig.connector().latest()
        await rig.advance(minutes=1)
    with pytest.raises(QuotaExceeded) as caught:
        await rig.connector().latest()
    assert caught.value.retry_after_s is not None and 0 < caught.value.retry_after_s <= 3600
    rig.store.close()
    rig.restart()
    with pytest.raises(QuotaExceeded):
        await rig.connector().latest()
    assert (await rig.calls())[METERDATA] == 12
    await rig.advance(hours=1)
    assert (await rig.connector().latest()).readings


async def test_logins_stay_within_5_an_hour_across_restarts(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IAMMETER_TEST_PASSWORD", "wrong")
    for attempt in range(5):
        if attempt == 3:
            rig.store.close()
            rig.restart()
        with pytest.raises(VendorAuthError):
            await rig.connector(sn=ONE_PHASE).latest()
    with pytest.raises(QuotaExceeded, match="login_hourly"):
        await rig.connector(sn=ONE_PHASE).latest()
    assert (await rig.calls())[LOGIN] == 5


async def test_an_empty_answer_over_the_vendors_quota_is_not_data(rig: Rig) -> None:
    token = rig.app.state.account.token
    for _ in range(12):  # another client spends the SN's hourly quota at the vendor
        response = await rig.http.get(f"/api/v1/site/meterdata/{THREE_PHASE}", headers={"token": token})
        assert response.status_code == 200 and response.content
    with pytest.raises(QuotaExceeded, match="answered nothing") as caught:
        await rig.connector().latest()
    assert caught.value.retry_after_s == 300


async def test_history_chunks_stay_within_2000_rows_per_call(rig: Rig) -> None:
    chunks = await collect(rig.connector().history(START - timedelta(days=3), START))
    assert (await rig.calls())[LIST] == len(chunks) == 4  # local days 7, 8, 9 and 10 June
    stamps = [sorted({r.ts for r in chunk.readings}) for chunk in chunks]
    assert all(0 < len(rows) <= MAX_LIST_ROWS for rows in stamps)
    every = list(itertools.chain.from_iterable(stamps))
    assert every == sorted(set(every))
    assert START - timedelta(days=3) <= every[0] < START - timedelta(days=3) + timedelta(minutes=2)
    assert START - timedelta(minutes=2) <= every[-1] < START
    assert len(every) == pytest.approx(3 * 1440, abs=2)
    assert all({r.phase for r in chunk.readings} == {0, 1, 2, 3} for chunk in chunks)


async def test_coarser_history_packs_several_days_per_call(rig: Rig) -> None:
    chunks = await collect(rig.connector(interval_s="300").history(START - timedelta(days=12), START))
    assert (await rig.calls())[LIST] == len(chunks) == 3  # 13 local days, 6 per call (288 rows a day)
    assert all(len({r.ts for r in chunk.readings}) <= MAX_LIST_ROWS for chunk in chunks)


async def test_history_reaches_back_over_the_latest_month_only(rig: Rig) -> None:
    chunks = await collect(rig.connector(interval_s="900").history(START - timedelta(days=90), START))
    first = min(r.ts for chunk in chunks for r in chunk.readings)
    assert START - timedelta(days=HISTORY_DAYS + 1) <= first
    assert (await rig.calls())[LIST] == len(chunks) == 2  # 31 local days, 20 per call at 15 minutes


async def test_place_history_is_complete_hours_in_calls_of_7_days(rig: Rig) -> None:
    start = START - timedelta(days=10)
    connector = rig.connector(interval_s="3600", place_id=PLACE)
    chunks = await collect(connector.history(start, START))
    intervals = [i for chunk in chunks for i in chunk.intervals]
    assert (await rig.calls())[HISTORY] == 2
    assert all(i.end - i.start == timedelta(hours=1) for i in intervals)
    assert all(start <= i.start and i.end <= START for i in intervals)
    assert len(intervals) == 10 * 24 - 1  # the hour 10:00-11:00 of the start and end days is cut
    meter = rig.app.state.account.meters[THREE_PHASE]
    first, last = intervals[0].start, intervals[-1].end
    imported = meter.register_kwh(last)[0] - meter.register_kwh(first)[0]
    assert sum(i.import_kwh or 0.0 for i in intervals) == pytest.approx(imported, abs=0.01 * len(intervals))


async def test_discover_lists_the_accounts_meters_once_per_5_minutes(rig: Rig) -> None:
    found = await rig.connector(place_id=PLACE).discover()
    assert {d.options["sn"]: d.phases for d in found} == {
        "DA2BED94": 1, "3FE34ABE": 3, "5E7A0C21": 1, "674B1E5D": 3, "B384789C": 3, "59C9AB8D": 3,
    }
    mine = next(d for d in found if d.options["sn"] == THREE_PHASE)
    assert mine.options["place_id"] == PLACE and mine.options["password"] == "env:IAMMETER_TEST_PASSWORD"
    with pytest.raises(QuotaExceeded):
        await rig.connector().discover()
    assert (await rig.calls())["/api/v1/site/metersdata"] == 1


@pytest.mark.parametrize(
    ("faults", "error"),
    [
        ({"error_status": 503, "error_every": 1}, VendorUnavailable),
        ({"error_status": 429, "error_every": 1}, QuotaExceeded),
        ({"truncate_json": True}, VendorUnavailable),
        ({"offline": True}, VendorUnavailable),
        ({"latency_s": 60.0}, VendorUnavailable),
    ],
)
async def test_faults_become_typed_errors(rig: Rig, faults: dict[str, Any], error: type[Exception]) -> None:
    await rig.connector().latest()  # logged in
    await rig.faults(**faults)
    rig.http.timeout = httpx.Timeout(0.2 if "latency_s" in faults else 60.0)  # only latency may time out
    with pytest.raises(error) as caught:
        await rig.connector().latest()
    assert caught.value.__cause__ is not None or error is QuotaExceeded
    assert rig.app.state.account.token not in _chain_text(caught.value)


async def test_a_401_fault_is_an_auth_error_after_one_more_login(rig: Rig) -> None:
    await rig.connector().latest()
    await rig.faults(error_status=401, error_every=1)
    with pytest.raises(VendorAuthError):
        await rig.connector().latest()
    assert (await rig.calls())[LOGIN] == 2


async def test_relay_control_is_not_offered(rig: Rig) -> None:
    with pytest.raises(ConfigError, match="relay"):
        await rig.connector().set_relay(True)


def _chain_text(error: BaseException) -> str:
    parts: list[str] = []
    current: BaseException | None = error
    while current is not None:
        parts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)
