"""Real ``/monitorjson`` answers (tests/fixtures/iammeter) through the mapping and the device connector.

Every expected value is read off the JSON by hand and written literally: a row is
``[V, A, W, import kWh, export kWh, Hz, PF]`` (legacy rows stop after the export register);
phase 0 of a three-phase answer is the mean voltage, the summed currents, powers and registers,
and the first phase's frequency.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.simservers import served

from meterhub.errors import ConfigError, PayloadError, VendorAuthError, VendorUnavailable
from meterhub.model import Meter, Reading
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.base import ConnectorContext, QuotaGuard, TokenCache
from meterhub.vendors.iammeter import mapping
from meterhub.vendors.iammeter.connector import IammeterConnector

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parents[2] / "fixtures" / "iammeter"
AT = datetime(2026, 6, 10, 10, 30, tzinfo=UTC)
ADMIN = "Basic YWRtaW46YWRtaW4="  # admin:admin


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def values(reading: Reading) -> tuple[float | None, ...]:
    return (reading.voltage_v, reading.current_a, reading.power_w, reading.reactive_power_var,
            reading.power_factor, reading.frequency_hz, reading.energy_import_kwh,
            reading.energy_export_kwh, reading.reactive_import_kvarh, reading.reactive_export_kvarh)


# V, A, W, var, PF, Hz, import kWh, export kWh, reactive import kvarh, reactive export kvarh
EXPECTED: dict[str, dict[int, tuple[float | None, ...]]] = {
    "monitorjson_1phase_fw_i.91.063T2.json": {
        0: (226.85, 1.31, 152.0, None, 0.51, 49.97, 22920.38, 0.0, None, None),
    },
    "monitorjson_1phase_legacy_wem3162.json": {
        0: (235.0, 1.214, 189.0, None, None, None, 1265.17, 0.0, None, None),
    },
    "monitorjson_3phase_wem3080T_fw1.72.7.json": {
        # (236.0 + 220.0 + 220.0) / 3; 4.4 + 10 + 10; -1044 - 1100 - 1213; 0.92 + 6971.88 + 8.60;
        # 0.04 + 1789550.92 + 8.44
        0: (225.3333333, 24.4, -3357.0, None, None, 49.99, 6981.40, 1789559.40, None, None),
        1: (236.0, 4.4, -1044.0, None, 1.00, 49.99, 0.92, 0.04, None, None),
        2: (220.0, 10.0, -1100.0, None, 0.50, 49.99, 6971.88, 1789550.92, None, None),
        3: (220.0, 10.0, -1213.0, None, 0.55, 49.99, 8.60, 8.44, None, None),
    },
    "monitorjson_3phase_fragment_with_reactive.json": {
        # (226.2 + 226.6 + 226.1) / 3; 3 x 1.42; 197 + 197 + 199; -119 - 120 - 118;
        # 423.676 + 423.527 + 427.346; 0.007; 258.703 + 260.278 + 256.485
        0: (226.3, 4.26, 593.0, -357.0, None, 50.03, 1274.549, 0.0, 0.007, 775.466),
        1: (226.2, 1.42, 197.0, -119.0, 0.61, 50.03, 423.676, 0.0, 0.0, 258.703),
        2: (226.6, 1.42, 197.0, -120.0, 0.61, 50.03, 423.527, 0.0, 0.0, 260.278),
        3: (226.1, 1.42, 199.0, -118.0, 0.62, 50.03, 427.346, 0.0, 0.007, 256.485),
    },
}


def assert_readings(readings: list[Reading], expected: dict[int, tuple[float | None, ...]]) -> None:
    assert {r.phase: values(r) for r in readings} == {
        phase: pytest.approx(row, abs=1e-6) for phase, row in expected.items()
    }


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_real_answer_maps_to_the_values_it_shows(name: str) -> None:
    readings = mapping.map_monitorjson(fixture(name), "m", AT)
    assert_readings(readings, EXPECTED[name])
    assert {r.ts for r in readings} == {AT}


def test_serial_and_phases_come_from_the_answer() -> None:
    assert mapping.monitorjson_sn(fixture("monitorjson_3phase_wem3080T_fw1.72.7.json")) == "E395281A"
    assert mapping.monitorjson_sn(fixture("monitorjson_1phase_fw_i.91.063T2.json")) == "DA2BED94"
    assert mapping.monitorjson_sn(fixture("monitorjson_1phase_legacy_wem3162.json")) is None
    assert mapping.monitorjson_phases(fixture("monitorjson_3phase_wem3080T_fw1.72.7.json")) == 3
    assert mapping.monitorjson_phases(fixture("monitorjson_1phase_legacy_wem3162.json")) == 1


class Device:
    """A tiny device on loopback answering one body (a fixture, garbage, a status) to admin:admin."""

    def __init__(self) -> None:
        self.body: bytes = b"{}"
        self.status = 200
        self.seen_auth: list[str] = []

    def serve(self, name: str) -> None:
        self.body, self.status = (FIXTURES / name).read_bytes(), 200

    async def monitorjson(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        self.seen_auth.append(auth)
        if auth != ADMIN:
            return Response("Unauthorized", 401, {"WWW-Authenticate": 'Basic realm="meter"'})
        if self.status != 200:
            return JSONResponse({"error": "busy"}, self.status)
        return Response(self.body, media_type="application/json")


@pytest.fixture
def device() -> Iterator[tuple[Device, str]]:
    fake = Device()
    app = Starlette(routes=[Route("/monitorjson", fake.monitorjson)])
    with served(app) as base_url:
        yield fake, base_url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


def device_connector(store: SQLiteStore, http: httpx.AsyncClient, base_url: str,
                     **options: str) -> IammeterConnector:
    meter = Meter("iam-local", "iammeter", 3, "Europe/Oslo", 2, "",
                  {"source": "device", "base_url": base_url, **options})
    quotas = QuotaGuard(store, "iammeter", IammeterConnector.quotas, lambda: AT)
    context = ConnectorContext(http, TokenCache(store, "iammeter", lambda: AT), quotas, lambda: AT)
    return IammeterConnector(meter, context)


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_the_device_connector_reads_each_real_answer(
    name: str, device: tuple[Device, str], store: SQLiteStore, http: httpx.AsyncClient
) -> None:
    fake, base_url = device
    fake.serve(name)
    fetched = await device_connector(store, http, base_url).latest()
    assert_readings(fetched.readings, EXPECTED[name])
    assert {r.ts for r in fetched.readings} == {AT}  # the answer carries no time: the time it arrived
    assert fake.seen_auth == [ADMIN]  # the factory login when the meter names none


async def test_discovering_a_device_finds_the_meter_by_its_serial(
    device: tuple[Device, str], store: SQLiteStore, http: httpx.AsyncClient
) -> None:
    fake, base_url = device
    fake.serve("monitorjson_3phase_wem3080T_fw1.72.7.json")
    [found] = await device_connector(store, http, base_url).discover()
    assert (found.suggested_id, found.phases, found.name) == ("iammeter-e395281a", 3, "IAMMETER E395281A")
    assert dict(found.options) == {"source": "device", "base_url": base_url}
    fake.serve("monitorjson_1phase_legacy_wem3162.json")  # no SN: named by its host
    [legacy] = await device_connector(store, http, base_url).discover()
    assert (legacy.suggested_id, legacy.phases) == ("iammeter-127.0.0.1", 1)


async def test_a_device_has_no_history_and_no_quota(
    device: tuple[Device, str], store: SQLiteStore, http: httpx.AsyncClient
) -> None:
    connector = device_connector(store, http, device[1])
    assert [chunk async for chunk in connector.history(AT.replace(day=1), AT)] == []
    assert connector.min_poll_interval_s == 2
    assert IammeterConnector.quota_scope_keys(connector.meter) == {}


async def test_a_wrong_password_is_an_auth_error_naming_the_factory_login(
    device: tuple[Device, str], store: SQLiteStore, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IAM_DEVICE_PASSWORD", "not-the-password-4711")
    connector = device_connector(store, http, device[1], password="env:IAM_DEVICE_PASSWORD")
    with pytest.raises(VendorAuthError) as caught:
        await connector.latest()
    assert str(caught.value) == (
        "IAMMETER device 127.0.0.1 refused the user 'admin' or its password (HTTP 401); "
        "the factory login is admin/admin"
    )
    assert "not-the-password-4711" not in str(caught.value)


@pytest.mark.parametrize(
    ("body", "status", "error", "message"),
    [
        (b"<html>login</html>", 200, VendorUnavailable, "a truncated or non-JSON answer"),
        (b"", 200, VendorUnavailable, "answered nothing"),
        (b'{"status":"succeed"}', 200, PayloadError, "neither Data nor Datas"),
        (b'{"Data":[1,2,3]}', 200, PayloadError, "a row of 3 values"),
        (b"{}", 503, VendorUnavailable, r"failed \(HTTP 503\)"),
    ],
)
async def test_bad_answers_are_typed_errors(
    body: bytes, status: int, error: type[Exception], message: str,
    device: tuple[Device, str], store: SQLiteStore, http: httpx.AsyncClient,
) -> None:
    fake, base_url = device
    fake.body, fake.status = body, status
    with pytest.raises(error, match=message):
        await device_connector(store, http, base_url).latest()


async def test_an_offline_device_is_unavailable(store: SQLiteStore, http: httpx.AsyncClient) -> None:
    with served(Starlette()) as base_url:
        pass  # the port is closed again: nothing listens there any more
    with pytest.raises(VendorUnavailable, match=r"IAMMETER device 127\.0\.0\.1: no usable answer"):
        await device_connector(store, http, base_url).latest()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"source": "lan"}, "source 'lan' must be cloud or device"),
        ({"source": "device"}, "source=device needs base_url"),
    ],
)
def test_bad_device_options_are_config_errors(
    options: dict[str, str], message: str, store: SQLiteStore
) -> None:
    meter = Meter("iam-local", "iammeter", 1, "UTC", 2, "", options)
    context = ConnectorContext(httpx.AsyncClient(), TokenCache(store, "iammeter"),
                               QuotaGuard(store, "iammeter", IammeterConnector.quotas))
    with pytest.raises(ConfigError, match=message):
        IammeterConnector(meter, context)
