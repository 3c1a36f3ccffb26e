"""The smart-MAC connector against the simulated device, with a real SQLite store for its rate quota."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from meterhub.errors import ConfigError, QuotaExceeded, VendorAuthError, VendorUnavailable
from meterhub.model import Meter
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.base import Connector, ConnectorContext, QuotaGuard, TokenCache
from meterhub.vendors.smartmac.connector import SmartmacConnector
from meterhub.vendors.smartmac.simulator import create_app

pytestmark = pytest.mark.anyio

START = datetime(2026, 6, 10, 10, 30, tzinfo=UTC)
BASE_URL = "http://192.168.4.1"
DEVID, DEVPASS = "1728053249", "012345"


class Rig:
    """A simulated device, one HTTP client, a store file and a clock shared by both sides."""

    def __init__(self, app: Starlette, http: httpx.AsyncClient, db: Path) -> None:
        self.app, self.http, self.db = app, http, db
        self.now = START
        self._stores: list[SQLiteStore] = []
        self.store = self.restart()

    def clock(self) -> datetime:
        return self.now

    def restart(self) -> SQLiteStore:
        self.store = SQLiteStore(self.db)
        self._stores.append(self.store)
        return self.store

    def close(self) -> None:
        for store in self._stores:
            store.close()

    def connector(self, phases: int = 3, **options: str) -> SmartmacConnector:
        meter_options = {"base_url": BASE_URL, "devid": DEVID, "devpass": "env:SMARTMAC_TEST_PIN", **options}
        meter = Meter("sm-1", "smartmac", phases=phases, tz="Europe/Oslo", options=meter_options)
        context = ConnectorContext(
            self.http,
            TokenCache(self.store, "smartmac", self.clock),
            QuotaGuard(self.store, "smartmac", SmartmacConnector.quotas, self.clock),
            self.clock,
        )
        return SmartmacConnector(meter, context)

    async def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
        assert (await self.http.post("/_sim/clock", json={"now": self.now.isoformat()})).status_code == 200

    async def calls(self) -> int:
        return int((await self.http.get("/_sim/calls")).json().get("/", 0))

    async def info(self) -> dict[str, Any]:
        info: dict[str, Any] = (await self.http.get("/_sim/info")).json()
        return info


def rig_fixture(**device: Any) -> Any:
    @pytest.fixture
    async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
        monkeypatch.setenv("SMARTMAC_TEST_PIN", DEVPASS)
        app = create_app(seed=1, speed=0.0, start=START, **device)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL,
                                     timeout=60.0) as http:
            rig = Rig(app, http, tmp_path / "meterhub.db")
            try:
                yield rig
            finally:
                rig.close()

    return rig


rig = rig_fixture()
extended = rig_fixture(extended=True, newer_firmware=True)
single = rig_fixture(phases=1)


async def test_it_satisfies_the_connector_protocol(rig: Rig) -> None:
    connector: Connector = rig.connector()
    assert connector.vendor == "smartmac" and connector.min_interval_s == 60


async def test_latest_maps_the_devices_physics(rig: Rig) -> None:
    fetched = await rig.connector().latest()
    state = rig.app.state.device.household.state_at(START)
    phases = {r.phase: r for r in fetched.readings}
    assert sorted(phases) == [0, 1, 2, 3]
    assert {r.ts for r in fetched.readings} == {START}
    for number, truth in enumerate(state.phases, 1):
        got = phases[number]
        assert got.voltage_v == pytest.approx(truth.voltage_v, abs=0.005)
        assert got.power_w == pytest.approx(truth.power_w, abs=0.5)
        assert got.energy_import_kwh == pytest.approx(truth.energy_import_kwh, abs=0.001)
    assert phases[0].power_w == pytest.approx(state.total.power_w, abs=1.5)
    assert phases[0].energy_import_kwh == pytest.approx(state.total.energy_import_kwh, abs=0.003)
    extras = {e.name: e.value for e in fetched.extras}
    assert extras == {"temperature_c": round(state.temperature_c), "relay_on": 0.0}


async def test_a_single_line_device_has_phase_0_only(single: Rig) -> None:
    fetched = await single.connector(phases=1).latest()
    assert [r.phase for r in fetched.readings] == [0]


async def test_set_relay_on_ends_with_the_device_reporting_on(rig: Rig) -> None:
    connector = rig.connector()
    assert await connector.set_relay(True) is True
    assert (await rig.info())["relay_on"] is True
    await rig.advance(minutes=1)
    fetched = await connector.latest()
    assert {e.name: e.value for e in fetched.extras}["relay_on"] == 1.0
    await rig.advance(minutes=1)
    assert await connector.set_relay(False) is False
    assert (await rig.info())["relay_on"] is False
    await rig.advance(minutes=1)
    assert await connector.set_relay(True) is True
    assert (await rig.info())["relay_on"] is True


async def test_a_second_request_within_a_minute_is_refused_before_any_request(rig: Rig) -> None:
    await rig.connector().latest()
    with pytest.raises(QuotaExceeded) as caught:
        await rig.connector().set_relay(True)
    assert caught.value.retry_after_s == pytest.approx(60.0)
    rig.store.close()
    rig.restart()
    await rig.advance(seconds=30)
    with pytest.raises(QuotaExceeded):
        await rig.connector().latest()
    assert await rig.calls() == 1
    await rig.advance(seconds=30)
    assert (await rig.connector().latest()).readings
    assert await rig.calls() == 2


async def test_extended_devices_answer_every_6_seconds(extended: Rig) -> None:
    connector = extended.connector(rate_class="extended")
    fetched = await connector.latest()
    assert {r.phase: r.frequency_hz for r in fetched.readings}[1] is not None  # newer firmware
    with pytest.raises(QuotaExceeded):
        await connector.latest()
    await extended.advance(seconds=6)
    await connector.latest()
    assert await extended.calls() == 2


async def test_the_devices_own_429_is_quota_exceeded(rig: Rig) -> None:
    params = {"page": "getdata", "devid": DEVID, "devpass": DEVPASS}
    assert (await rig.http.get("/", params=params)).status_code == 200  # another client was first
    with pytest.raises(QuotaExceeded, match="429") as caught:
        await rig.connector().latest()
    assert caught.value.retry_after_s == 60.0


async def test_a_wrong_pin_is_an_auth_error_that_names_no_pin(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTMAC_TEST_PIN", "987654")
    connector = rig.connector()
    with pytest.raises(VendorAuthError, match="devid/devpass") as caught:
        await connector.latest()
    assert "987654" not in _chain_text(caught.value) and "987654" not in repr(connector)


async def test_an_unknown_rate_class_is_a_config_error(rig: Rig) -> None:
    with pytest.raises(ConfigError, match="rate_class"):
        rig.connector(rate_class="turbo")


async def test_the_device_keeps_no_history(rig: Rig) -> None:
    chunks = [chunk async for chunk in rig.connector().history(START - timedelta(days=1), START)]
    assert chunks == [] and await rig.calls() == 0


async def test_discover_returns_the_device_itself(rig: Rig) -> None:
    (found,) = await rig.connector().discover()
    assert (found.vendor, found.phases, found.options["devid"]) == ("smartmac", 3, DEVID)
    assert found.options["devpass"] == "env:SMARTMAC_TEST_PIN"


async def test_a_device_clock_far_off_is_not_trusted(rig: Rig) -> None:
    rig.now = START + timedelta(hours=3)  # our clock only: the device still says START
    fetched = await rig.connector().latest()
    assert {r.ts for r in fetched.readings} == {rig.now}


@pytest.mark.parametrize(
    "faults",
    [{"error_status": 500, "error_every": 1}, {"truncate_json": True}, {"offline": True}, {"latency_s": 60}],
)
async def test_faults_become_vendor_unavailable(rig: Rig, faults: dict[str, Any]) -> None:
    assert (await rig.http.post("/_sim/faults", json=faults)).status_code == 200
    rig.http.timeout = httpx.Timeout(0.2 if "latency_s" in faults else 60.0)  # only latency may time out
    with pytest.raises(VendorUnavailable) as caught:
        await rig.connector().latest()
    assert caught.value.__cause__ is not None
    assert DEVPASS not in _chain_text(caught.value)


def _chain_text(error: BaseException) -> str:
    parts: list[str] = []
    current: BaseException | None = error
    while current is not None:
        parts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)
