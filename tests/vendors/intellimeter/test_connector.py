"""The Intellimeter connector against the simulator: mapping, history chunks, sessions, faults."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.applications import Starlette
from tests import simservers
from tests.vendors.simrig import SimulatorRig

from meterhub.errors import (
    ConfigError,
    InputError,
    PayloadError,
    QuotaExceeded,
    VendorAuthError,
    VendorUnavailable,
)
from meterhub.model import Meter
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.base import ConnectorContext, Fetched, QuotaGuard, TokenCache
from meterhub.vendors.intellimeter.connector import (
    FILE_CHUNK_DAYS,
    HISTORY_WINDOW_DAYS,
    IntellimeterConnector,
)
from meterhub.vendors.intellimeter.simulator import create_app

pytestmark = pytest.mark.anyio

START = datetime(2026, 1, 15, 17, 42, 10, tzinfo=UTC)
TZ = "America/Toronto"
BASE_URL = "http://intellimeter.test"
USERNAME = "alice"
PASSWORD = "s3cret-Pa55word"
PASSWORD_ENV = "METERHUB_TEST_INTELLIMETER_PASSWORD"
KEY_ENV = "METERHUB_TEST_INTELLIMETER_KEY"
FIVE_MINUTES = timedelta(minutes=5)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


@dataclass
class Rig(SimulatorRig):
    """A simulator, an HTTP client on it, and a real SQLite store for tokens and quotas."""

    base_url: str = BASE_URL

    def context(self) -> ConnectorContext:
        return ConnectorContext(
            client=self.http,
            tokens=TokenCache(self.store, "intellimeter"),
            quotas=QuotaGuard(self.store, "intellimeter", IntellimeterConnector.quotas),
            now=self.app.state.site.clock.now,
        )

    def connector(self, **options: str) -> IntellimeterConnector:
        defaults = {"base_url": self.base_url, "point": "meter1"}
        if "key" not in options:
            defaults.update(username=USERNAME, password=f"env:{PASSWORD_ENV}")
        meter = Meter(
            "grid", "intellimeter", phases=3, tz=TZ, interval_s=300, options={**defaults, **options}
        )
        return IntellimeterConnector(meter, self.context())


def make_app(**options: Any) -> Starlette:
    options.setdefault("start", START)
    return create_app(seed=7, speed=0.0, username=USERNAME, password=PASSWORD, **options)


@pytest.fixture
async def rig(store: SQLiteStore) -> AsyncIterator[Rig]:
    app = make_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        yield Rig(app, http, store)


async def vendor_rows(app: Starlette, path: str, **params: str) -> Any:
    """Ask the simulator directly, in a session of its own, for a JSON answer."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as own:
        login = await own.put("/session", data={"username": USERNAME, "password": PASSWORD})
        assert login.status_code == 200
        return (await own.get(path, params={"xml": "false", **params})).json()


def local_utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(TZ)).astimezone(UTC)


# --- latest ---------------------------------------------------------------------------------------
async def test_latest_maps_the_register_and_the_five_minute_energy(rig: Rig) -> None:
    fetched = await rig.connector().latest()
    # the first poll learns the point's id (one /point call), which later polls reuse
    assert await rig.calls() == {"/session": 1, "/point": 1, "/data": 1, "/interval": 1}
    await rig.connector().latest()
    assert (await rig.calls())["/point"] == 1
    data = next(row for row in await vendor_rows(rig.app, "/data") if row["MeterParam"] == "meter1")
    interval = next(row for row in await vendor_rows(rig.app, "/interval") if row["MeterParam"] == "meter1")
    [reading] = fetched.readings
    assert reading.meter == "grid" and reading.phase == 0
    assert reading.ts == local_utc(data["TimeStamping"]) == datetime(2026, 1, 15, 17, 40, tzinfo=UTC)
    assert reading.energy_import_kwh == data["value"]
    assert reading.power_w is None
    [record] = fetched.intervals
    assert (record.start, record.end) == (reading.ts - FIVE_MINUTES, reading.ts)
    assert record.import_kwh == interval["value"] and record.source == "intellimeter.interval"


async def test_an_account_that_asked_for_xml_maps_the_same(rig: Rig) -> None:
    as_json = await rig.connector().latest()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rig.app), base_url=BASE_URL) as own:
        await own.put("/session", data={"username": USERNAME, "password": PASSWORD})
        await own.post("/user", data={"xml": "true"})
        assert (await own.get("/data")).text.startswith("<?xml")
    assert await rig.connector().latest() == as_json


async def test_latest_logs_in_with_the_api_key(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    key = (await vendor_rows(rig.app, "/key"))["key"]
    monkeypatch.setenv(KEY_ENV, key)
    fetched = await rig.connector(key=f"env:{KEY_ENV}", point="meter2").latest()
    assert [reading.energy_import_kwh for reading in fetched.readings] == [
        row["value"] for row in await vendor_rows(rig.app, "/data") if row["MeterParam"] == "meter2"
    ]


# --- history --------------------------------------------------------------------------------------
async def collect(connector: IntellimeterConnector, start: datetime, end: datetime) -> list[Fetched]:
    return [chunk async for chunk in connector.history(start, end)]


async def test_history_asks_for_seven_local_days_per_file_call(rig: Rig) -> None:
    start, end = START - timedelta(days=20), START
    chunks = await collect(rig.connector(), start, end)
    assert (await rig.calls())["/file"] == 3  # 21 local days touched, 7 per call
    zone = ZoneInfo(TZ)
    for chunk in chunks:
        days = {reading.ts.astimezone(zone).date() for reading in chunk.readings}
        assert (max(days) - min(days)).days < FILE_CHUNK_DAYS
    times = [reading.ts for chunk in chunks for reading in chunk.readings]
    assert times[0] == datetime(2025, 12, 26, 17, 45, tzinfo=UTC)
    assert times[-1] == datetime(2026, 1, 15, 17, 40, tzinfo=UTC)
    assert all(later - earlier == FIVE_MINUTES for earlier, later in itertools.pairwise(times))
    registers = [reading.energy_import_kwh or 0.0 for chunk in chunks for reading in chunk.readings]
    assert registers == sorted(registers)


async def test_a_history_window_of_the_declared_span_is_one_file_call(rig: Rig) -> None:
    zone = ZoneInfo(TZ)
    start = datetime(2026, 1, 1, tzinfo=zone).astimezone(UTC)
    end = start + timedelta(seconds=IntellimeterConnector.history_chunk_s)
    chunks = await collect(rig.connector(), start, end)
    assert (await rig.calls())["/file"] == 1
    assert len(chunks[0].readings) == HISTORY_WINDOW_DAYS * 288
    assert len(chunks[0].intervals) == HISTORY_WINDOW_DAYS * 288  # the last one ends at ``end``


async def test_history_over_the_autumn_clock_change_keeps_the_repeated_hour(store: SQLiteStore) -> None:
    app = make_app(start=datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        connector = Rig(app, http, store).connector()
        start = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # local midnight, EDT
        end = datetime(2026, 11, 2, 5, 0, tzinfo=UTC)  # next local midnight, EST: 25 hours
        times = [r.ts for chunk in await collect(connector, start, end) for r in chunk.readings]
    assert len(times) == 25 * 12  # every 5 minutes from the first local midnight to the next
    assert all(later - earlier == FIVE_MINUTES for earlier, later in itertools.pairwise(times))


async def test_history_never_asks_for_days_that_have_not_come(rig: Rig) -> None:
    chunks = await collect(rig.connector(), START - timedelta(hours=1), START + timedelta(days=30))
    assert (await rig.calls())["/file"] == 1
    assert len([r for chunk in chunks for r in chunk.readings]) == 12
    assert await collect(rig.connector(), START + timedelta(days=1), START + timedelta(days=2)) == []


# --- sessions and credentials ---------------------------------------------------------------------
async def test_a_wrong_password_is_an_auth_error_that_names_no_secret(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "wrong-" + PASSWORD)
    caplog.set_level(logging.DEBUG)
    connector = rig.connector()
    with pytest.raises(VendorAuthError) as caught:
        await connector.latest()
    message = str(caught.value)
    assert "401" in message and PASSWORD_ENV in message
    assert PASSWORD not in message and PASSWORD not in repr(connector)
    assert all(PASSWORD not in record.getMessage() for record in caplog.records)


async def test_the_session_survives_a_restart(rig: Rig) -> None:
    await rig.connector().latest()
    await rig.connector().latest()  # a new connector, the same store: the cookie is reused
    assert (await rig.calls())["/session"] == 1


async def test_a_refused_session_is_established_again(rig: Rig) -> None:
    tokens = TokenCache(rig.store, "intellimeter")
    scope = f"session|{BASE_URL}|user={USERNAME}"
    await tokens.put(scope, "session=expired-long-ago", None)
    fetched = await rig.connector(point_id="1").latest()  # its id known: /data is the first call
    assert fetched.readings
    assert (await rig.calls())["/session"] == 1
    assert (await rig.calls())["/data"] == 2  # refused once, then answered
    assert "/point" not in await rig.calls()
    assert await tokens.get(scope) not in (None, "session=expired-long-ago")


async def test_a_rotated_key_takes_effect_through_its_reference(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_key = (await vendor_rows(rig.app, "/key"))["key"]
    monkeypatch.setenv(KEY_ENV, old_key)
    connector = rig.connector(key=f"env:{KEY_ENV}")
    new_key = await connector.rotate_key()
    assert new_key != old_key
    assert (await connector.latest()).readings  # the open session still works
    await TokenCache(rig.store, "intellimeter").forget(f"session|{BASE_URL}|key=env:{KEY_ENV}")
    with pytest.raises(VendorAuthError, match=f"API key in env:{KEY_ENV}") as caught:
        await rig.connector(key=f"env:{KEY_ENV}").latest()
    assert old_key not in str(caught.value)
    monkeypatch.setenv(KEY_ENV, new_key)
    assert (await rig.connector(key=f"env:{KEY_ENV}").latest()).readings


async def test_missing_or_malformed_options_are_config_errors(rig: Rig) -> None:
    context = rig.context()
    with pytest.raises(ConfigError, match="'key', or 'username' and 'password'"):
        IntellimeterConnector(Meter("m", "intellimeter", options={"username": USERNAME}), context)
    with pytest.raises(ConfigError, match="time zone"):
        IntellimeterConnector(
            Meter("m", "intellimeter", tz="Mars/Olympus", options={"key": "env:K"}), context
        )
    with pytest.raises(ConfigError, match="timeout_s"):
        rig.connector(timeout_s="soon")
    with pytest.raises(ConfigError, match="point"):
        await IntellimeterConnector(
            Meter("m", "intellimeter", tz=TZ, options={"base_url": BASE_URL, "key": "env:K"}), context
        ).latest()
    with pytest.raises(ConfigError, match="env:VARIABLE_NAME"):
        await rig.connector(password=PASSWORD).latest()  # a secret given as a value, not a reference


# --- faults and quotas ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("faults", "error"),
    [
        ({"offline": True}, VendorUnavailable),
        ({"error_status": 503, "error_every": 1}, VendorUnavailable),
        ({"error_status": 500, "error_every": 1}, VendorUnavailable),
        ({"truncate_json": True}, VendorUnavailable),
        ({"error_status": 429, "error_every": 1}, QuotaExceeded),
        ({"error_status": 404, "error_every": 1}, PayloadError),
    ],
)
async def test_vendor_faults_become_typed_errors(
    rig: Rig, faults: dict[str, Any], error: type[Exception]
) -> None:
    connector = rig.connector()
    await connector.latest()
    await rig.faults(**faults)
    with pytest.raises(error) as caught:
        await connector.latest()
    assert caught.value.__cause__ is not None


async def test_quota_allows_twelve_data_calls_an_hour(rig: Rig) -> None:
    connector = rig.connector()
    for _ in range(12):
        await connector.latest()
    with pytest.raises(QuotaExceeded) as caught:
        await connector.latest()
    assert caught.value.retry_after_s is not None and caught.value.retry_after_s > 3000
    calls = await rig.calls()
    assert calls["/data"] == calls["/interval"] == 12


async def test_timeouts_and_dropped_connections_on_a_real_socket(store: SQLiteStore) -> None:
    app = make_app()
    with simservers.served(app) as url:  # it does not wait for an answer held back by latency
        async with httpx.AsyncClient() as http:
            rig = Rig(app, http, store, base_url=url)
            connector = rig.connector(timeout_s="60")  # a busy machine answers late, not never
            await connector.latest()
            await rig.faults(latency_s=120.0)
            with pytest.raises(VendorUnavailable, match=r"did not answer GET /data within 0\.3 s"):
                await rig.connector(timeout_s="0.3").latest()
            await rig.faults(offline=True)
            with pytest.raises(VendorUnavailable, match="cannot reach Intellimeter"):
                await connector.latest()


# --- discover and relay ---------------------------------------------------------------------------
async def test_discover_lists_every_point_with_its_phases(rig: Rig) -> None:
    found = await rig.connector().discover()
    assert [(item.suggested_id, item.name, item.phases) for item in found] == [
        ("intellimeter-meter1", "meter1", 3),
        ("intellimeter-meter2", "meter2", 1),
        ("intellimeter-meter3", "meter3", 3),
    ]
    assert found[1].options == {
        "base_url": BASE_URL,
        "username": USERNAME,
        "password": f"env:{PASSWORD_ENV}",
        "point": "meter2",
        "point_id": "2",  # the id /point gives, which stays when the point is renamed
    }
    assert all(item.tz == TZ and item.vendor == "intellimeter" for item in found)


async def test_there_is_no_relay(rig: Rig) -> None:
    with pytest.raises(InputError, match="no relay"):
        await rig.connector().set_relay(True)
