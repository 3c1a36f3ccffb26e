"""The AMS reader connector against the simulator: latest, plots as history, auth, faults, quota."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from tests import simservers
from tests.vendors.simrig import SimulatorRig

from meterhub.errors import ConfigError, InputError, PayloadError, VendorAuthError, VendorUnavailable
from meterhub.model import Meter
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.amsreader.connector import AmsReaderConnector
from meterhub.vendors.amsreader.simulator import create_app
from meterhub.vendors.base import ConnectorContext, Fetched, QuotaGuard, TokenCache

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 15, 12, 34, 56, tzinfo=UTC)
HOST = "ams-reader.test"
PASSWORD = "Han-p0rt-secret"
PASSWORD_ENV = "METERHUB_TEST_AMS_PASSWORD"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def stepping_clock(step: timedelta = timedelta(seconds=3)) -> Callable[[], datetime]:
    """A quota clock that moves on by ``step`` at each look: every call finds its slot free."""
    ticks = [START]

    def now() -> datetime:
        ticks[0] += step
        return ticks[0]

    return now


@dataclass
class Rig(SimulatorRig):
    """A reader simulator, an HTTP client on it, and a real SQLite store for quotas and tokens.

    All connectors of one rig share its quota clock, as all connectors of one hub share the
    wall clock.
    """

    base_url: str = f"http://{HOST}"
    quota_clock: Callable[[], datetime] = field(default_factory=stepping_clock)

    def context(self) -> ConnectorContext:
        return ConnectorContext(
            client=self.http,
            tokens=TokenCache(self.store, "amsreader"),
            quotas=QuotaGuard(self.store, "amsreader", AmsReaderConnector.quotas, now=self.quota_clock),
            now=self.app.state.device.clock.now,
        )

    def connector(self, tz: str = "Europe/Oslo", **options: str) -> AmsReaderConnector:
        where = {"host": HOST} if self.base_url == f"http://{HOST}" else {"base_url": self.base_url}
        meter = Meter("ams", "amsreader", phases=3, tz=tz, interval_s=10, options={**where, **options})
        return AmsReaderConnector(meter, self.context())

    async def vendor(self, route: str) -> Any:
        auth = ("admin", PASSWORD) if self.app.state.device.config.password else None
        return (await self.http.get(f"{self.base_url}/{route}", auth=auth)).json()


def make_app(**options: Any) -> Starlette:
    options.setdefault("start", START)
    return create_app(seed=3, speed=0.0, **options)


@pytest.fixture
async def rig(store: SQLiteStore) -> AsyncIterator[Rig]:
    app = make_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        yield Rig(app, http, store)


@pytest.fixture
async def locked_rig(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    app = make_app(username="admin", password=PASSWORD)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        yield Rig(app, http, store)


# --- latest ---------------------------------------------------------------------------------------
async def test_latest_maps_the_total_each_phase_and_the_extras(rig: Rig) -> None:
    fetched = await rig.connector().latest()
    data = await rig.vendor("data.json")
    total, *phases = fetched.readings
    assert total.ts == START.replace(microsecond=0) == datetime.fromtimestamp(data["c"], UTC)
    assert total.power_w == data["i"] - data["e"]
    assert total.reactive_power_var == data["ri"] - data["re"]
    assert (total.energy_import_kwh, total.energy_export_kwh) == (data["ic"], data["ec"])
    assert (total.reactive_import_kvarh, total.reactive_export_kvarh) == (data["ric"], data["rec"])
    assert [reading.phase for reading in phases] == [1, 2, 3]
    for reading in phases:
        line = data[f"l{reading.phase}"]
        assert (reading.voltage_v, reading.current_a) == (line["u"], line["i"])
        assert reading.power_w == line["p"] - line["q"] and reading.power_factor == line["f"]
    assert sum(reading.power_w or 0.0 for reading in phases) == pytest.approx(total.power_w, abs=3)
    extras = {extra.name: extra.value for extra in fetched.extras}
    assert data["t"] == -127 and "temperature_c" not in extras  # the reader has no sensor
    assert extras["rssi_dbm"] == data["r"]
    assert extras["capacity_threshold_kwh"] == data["ea"]["t"]
    assert (await rig.calls()) == {"/data.json": 2, "/sysinfo.json": 1}  # ours and the check above


async def test_a_temperature_sensor_is_reported(store: SQLiteStore) -> None:
    app = make_app(temperature_sensor=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        rig = Rig(app, http, store)
        fetched = await rig.connector().latest()
        data = await rig.vendor("data.json")
    extras = {extra.name: extra.value for extra in fetched.extras}
    assert data["t"] > -85 and extras["temperature_c"] == data["t"]


async def test_new_connectors_reuse_the_stored_firmware_version(rig: Rig) -> None:
    for _ in range(3):
        assert (await rig.connector().latest()).readings
    assert (await rig.calls()) == {"/data.json": 3, "/sysinfo.json": 1}
    other = Rig(rig.app, rig.http, rig.store, base_url="http://10.0.0.206", quota_clock=rig.quota_clock)
    assert (await other.connector().latest()).readings  # another reader: its own version
    assert (await rig.calls()) == {"/data.json": 4, "/sysinfo.json": 2}


async def test_a_restarted_reader_has_its_firmware_version_read_again(rig: Rig) -> None:
    assert (await rig.connector().latest()).readings
    device = rig.app.state.device
    device.clock.set(START + timedelta(hours=1))
    device.booted_at = START + timedelta(hours=1, seconds=-10)  # a firmware update restarted it
    device.config = dataclasses.replace(device.config, firmware_version="v2.2.24")
    assert (await rig.connector().latest()).readings
    assert (await rig.connector().latest()).readings
    assert (await rig.calls()) == {"/data.json": 3, "/sysinfo.json": 2}
    connector = rig.connector()
    assert (await connector.latest()).readings
    device.booted_at = START + timedelta(hours=1)  # uptime went back within one connector
    assert (await connector.latest()).readings
    assert (await rig.calls()) == {"/data.json": 5, "/sysinfo.json": 3}


async def test_a_solar_house_exports_through_negative_power(store: SQLiteStore) -> None:
    app = make_app(pv_peak_w=12_000.0, base_load_w=300.0, start=datetime(2026, 6, 21, 11, tzinfo=UTC))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        fetched = await Rig(app, http, store).connector().latest()
    assert all((reading.power_w or 0.0) < 0 for reading in fetched.readings)


async def test_single_phase_and_it_grid_readers(store: SQLiteStore) -> None:
    single = make_app(phases=1)
    it_grid = make_app(distribution_system=1, l2_current_present=False)
    clock = stepping_clock()  # one hub, one clock: the two readers share the address and the store
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=single)) as http:
        rig = Rig(single, http, store, quota_clock=clock)
        fetched = await rig.connector().latest()
        assert (await rig.calls()) == {"/data.json": 1, "/sysinfo.json": 1}
    assert [reading.phase for reading in fetched.readings] == [0, 1]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=it_grid)) as http:
        rig = Rig(it_grid, http, store, quota_clock=clock)
        fetched = await rig.connector().latest()
        data = await rig.vendor("data.json")
        assert (await rig.calls()) == {"/data.json": 2}  # the stored version serves this connector
    assert data["l2"]["e"] is True  # L2 current is missing
    l2 = fetched.readings[2]
    assert l2.phase == 2 and l2.current_a is None and l2.voltage_v


# --- history --------------------------------------------------------------------------------------
async def collect(connector: AmsReaderConnector, start: datetime, end: datetime) -> list[Fetched]:
    return [chunk async for chunk in connector.history(start, end)]


async def test_history_yields_the_dayplot_hours_and_monthplot_days_it_holds(rig: Rig) -> None:
    chunks = await collect(rig.connector(), START - timedelta(days=60), START)
    hours, days = (chunk.intervals for chunk in chunks)
    assert len(hours) == 24 and {record.source for record in hours} == {"amsreader.dayplot"}
    assert hours[-1].end == datetime(2026, 3, 15, 12, tzinfo=UTC)
    dayplot = await rig.vendor("dayplot.json")
    assert [record.import_kwh for record in hours[-2:]] == [dayplot["i10"], dayplot["i11"]]
    assert len(days) == 28 and days[-1].end == datetime(2026, 3, 14, 23, tzinfo=UTC)  # Oslo midnight
    monthplot = await rig.vendor("monthplot.json")
    assert days[-1].import_kwh == monthplot["i14"]
    assert (await rig.calls()) == {"/dayplot.json": 2, "/monthplot.json": 2}


async def test_history_asks_only_for_the_plots_that_reach_the_range(rig: Rig) -> None:
    chunks = await collect(rig.connector(), START - timedelta(hours=6), START)
    assert [len(chunk.intervals) for chunk in chunks] == [5]  # hours starting 07:00 to 11:00
    assert (await rig.calls()) == {"/dayplot.json": 1}
    assert await collect(rig.connector(), START - timedelta(days=90), START - timedelta(days=60)) == []
    assert (await rig.calls()) == {"/dayplot.json": 1}


# --- auth -----------------------------------------------------------------------------------------
async def test_basic_auth_is_sent_when_a_password_is_configured(locked_rig: Rig) -> None:
    fetched = await locked_rig.connector(username="admin", password=f"env:{PASSWORD_ENV}").latest()
    assert fetched.readings


async def test_missing_or_wrong_credentials_are_auth_errors_without_the_secret(
    locked_rig: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(VendorAuthError, match="wants a username and password"):
        await locked_rig.connector().latest()
    monkeypatch.setenv(PASSWORD_ENV, "not-" + PASSWORD)
    connector = locked_rig.connector(password=f"env:{PASSWORD_ENV}")
    with pytest.raises(VendorAuthError, match="rejected the username and password") as caught:
        await connector.latest()
    assert PASSWORD not in str(caught.value) and PASSWORD not in repr(connector)
    assert all(PASSWORD not in record.getMessage() for record in caplog.records)


async def test_options_are_checked(rig: Rig) -> None:
    context = rig.context()
    with pytest.raises(ConfigError, match="'host' or 'base_url'"):
        AmsReaderConnector(Meter("ams", "amsreader"), context)
    with pytest.raises(ConfigError, match="time zone"):
        rig.connector(tz="Nowhere/Special")
    with pytest.raises(ConfigError, match="METERHUB_TEST_UNSET"):
        await rig.connector(password="env:METERHUB_TEST_UNSET").latest()


# --- faults and quota -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("faults", "error"),
    [
        ({"offline": True}, VendorUnavailable),
        ({"error_status": 503, "error_every": 1}, VendorUnavailable),
        ({"error_status": 500, "error_every": 1}, VendorUnavailable),
        ({"truncate_json": True}, VendorUnavailable),
        ({"error_status": 404, "error_every": 1}, PayloadError),
    ],
)
async def test_device_faults_become_typed_errors(
    rig: Rig, faults: dict[str, Any], error: type[Exception]
) -> None:
    await rig.faults(**faults)
    with pytest.raises(error) as caught:
        await rig.connector().latest()
    assert caught.value.__cause__ is not None


async def test_an_offline_window_of_the_household_is_unavailable(store: SQLiteStore) -> None:
    app = make_app(offline=((START - timedelta(minutes=5), START + timedelta(minutes=5)),))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        with pytest.raises(VendorUnavailable, match="cannot reach the AMS reader"):
            await Rig(app, http, store).connector().latest()


async def test_calls_keep_two_seconds_apart(rig: Rig) -> None:
    connector = Rig(rig.app, rig.http, rig.store, quota_clock=lambda: datetime.now(UTC)).connector()
    started = time.monotonic()
    await connector.latest()  # data.json, then sysinfo.json 2 s later
    await connector.latest()  # data.json 2 s after that
    assert time.monotonic() - started >= 3.9
    assert (await rig.calls()) == {"/data.json": 2, "/sysinfo.json": 1}


async def test_timeouts_and_dropped_connections_on_a_real_socket(store: SQLiteStore) -> None:
    app = make_app()
    with simservers.served(app) as url:  # it does not wait for an answer held back by latency
        async with httpx.AsyncClient() as http:
            rig = Rig(app, http, store, base_url=url)
            connector = rig.connector(timeout_s="60")  # a busy machine answers late, not never
            assert (await connector.latest()).readings
            await rig.faults(latency_s=120.0)
            impatient = rig.connector(timeout_s="0.3")
            with pytest.raises(VendorUnavailable, match=r"did not answer GET /data\.json within 0\.3 s"):
                await impatient.latest()
            await rig.faults(offline=True)
            with pytest.raises(VendorUnavailable, match="cannot reach"):
                await connector.latest()
            await rig.faults(offline=False)
            assert (await rig.calls()) == {"/data.json": 3, "/sysinfo.json": 1}


# --- discover and relay ---------------------------------------------------------------------------
async def test_discover_reports_the_reader_its_meter_phases_and_zone(locked_rig: Rig) -> None:
    connector = locked_rig.connector(tz="UTC", username="admin", password=f"env:{PASSWORD_ENV}")
    [found] = await connector.discover()
    assert found.suggested_id == "amsreader-ams-sim"
    assert found.name == "ams-sim (6841131BN243101040)"
    assert (found.vendor, found.phases, found.tz) == ("amsreader", 3, "Europe/Oslo")
    assert found.options == {
        "host": HOST,
        "username": "admin",
        "password": f"env:{PASSWORD_ENV}",
        "price_series": "amsreader-ams-sim-import",
        "capacity_peaks": "true",
    }
    assert found.place is not None
    place = found.place
    assert (place.place_id, place.role, place.tz) == ("amsreader-ams-sim", "grid", "Europe/Oslo")
    # No price rows on the reader: import is priced by its series; the default thresholds
    # without the 65535 padding, and configuration.json's three peak days.
    assert found.place.tariff == {
        "import_series": "amsreader-ams-sim-import",
        "currency": "NOK",
        "capacity_thresholds_kwh": [5, 10, 15, 20, 25, 50, 75, 100, 150],
        "capacity_peak_days": 3,
    }


async def test_there_is_no_relay(rig: Rig) -> None:
    with pytest.raises(InputError, match="no relay"):
        await rig.connector().set_relay(False)
