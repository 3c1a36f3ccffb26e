"""The smart-MAC device simulator answers as the vendor's API document shows, rate included."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from meterhub.vendors.physics import Household
from meterhub.vendors.smartmac.payloads import (
    REPORTED_POUT_OFF,
    REPORTED_POUT_ON,
    REQUEST_POUT_OFF,
    REQUEST_POUT_ON,
)
from meterhub.vendors.smartmac.simulator import create_app

from .seed_examples import GETDATA, GETDATA_RAW, assert_same_device_shape

pytestmark = pytest.mark.anyio

START = datetime(2026, 6, 10, 10, 30, tzinfo=UTC)
"""The simulated clock stands still here (speed 0) unless a test moves it."""
DEVID, DEVPASS = "1728053249", "012345"
CREDENTIALS = {"page": "getdata", "devid": DEVID, "devpass": DEVPASS}


def new_app(**options: Any) -> Starlette:
    """Return a fresh simulated device whose clock stands at START."""
    return create_app(seed=1, speed=0.0, start=START, **options)


@asynccontextmanager
async def device(app: Starlette | None = None, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Serve ``app`` (a fresh device with ``options`` by default) in process."""
    transport = httpx.ASGITransport(app=app or new_app(**options))
    async with httpx.AsyncClient(transport=transport, base_url="http://192.168.4.1") as client:
        yield client


async def getdata(client: httpx.AsyncClient, **params: str) -> httpx.Response:
    """Send ``GET /?page=getdata&devid=...&devpass=...`` with extra or replaced parameters."""
    return await client.get("/", params={**CREDENTIALS, **params})


def parse(response: httpx.Response) -> dict[str, Any]:
    """Parse a device answer the way it must be parsed: raw line breaks allowed in strings."""
    body: dict[str, Any] = json.loads(response.text, strict=False)
    return body


async def set_clock(client: httpx.AsyncClient, now: datetime) -> None:
    """Move the simulated clock."""
    assert (await client.post("/_sim/clock", json={"now": now.isoformat()})).status_code == 200


def assert_device_error(response: httpx.Response, status_code: int) -> str:
    """Assert the device's error answer (devid, time, error; all strings); return the error."""
    assert response.status_code == status_code
    body = parse(response)
    assert list(body) == ["devid", "time", "error"]
    assert all(isinstance(value, str) for value in body.values())
    assert body["time"].isdigit()
    return str(body["error"])


async def test_getdata_matches_the_seed_example() -> None:
    async with device(extended=True) as client:
        response = await getdata(client)
    assert response.status_code == 200
    assert response.headers["server"] == "smart-MAC"
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert_same_device_shape(GETDATA, parse(response))
    assert parse(response)["time"] == str(int(START.timestamp()))


async def test_separators_are_raw_line_breaks_like_the_device_sends() -> None:
    async with device() as client:
        text = (await getdata(client)).text
    assert text.count('{"name":"\n"}') == GETDATA_RAW.count('{"name":"\n"}') == 3
    assert "\n" not in text.replace('{"name":"\n"}', "")
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    async with device(raw_line_breaks=False) as client:
        escaped = (await getdata(client)).json()
    assert escaped["data"]["br0"] == {"name": "\n"}


async def test_values_are_padded_strings_in_device_units() -> None:
    app = new_app()
    household: Household = app.state.device.household
    async with device(app) as client:
        data = parse(await getdata(client))["data"]
    state = household.state_at(START)
    assert data["W1"]["value"].startswith(" ")  # dtostrf pads to the field width
    assert float(data["V1"]["value"]) == pytest.approx(state.phases[0].voltage_v, abs=0.01)
    assert int(data["Wh2"]["value"]) == round(state.phases[1].energy_import_kwh * 1000)
    assert int(data["rWh3"]["value"]) == round(state.phases[2].energy_export_kwh * 1000)
    assert float(data["W1"]["value"]) == pytest.approx(max(0.0, state.phases[0].power_w), abs=1)
    assert float(data["T"]["value"]) == pytest.approx(state.temperature_c, abs=1)


async def test_single_phase_device_has_one_line() -> None:
    async with device(phases=1) as client:
        data = parse(await getdata(client))["data"]
    assert list(data) == ["V1", "A1", "W1", "rW1", "Wh1", "rWh1", "PF1", "br0", "T"]


async def test_newer_firmware_adds_frequency_totals_and_powset() -> None:
    async with device(newer_firmware=True, power_limit_w=3500) as client:
        body = parse(await getdata(client))
    assert list(body) == ["devid", "time", "pout", "powset", "data"]
    assert body["powset"] == "3500"
    keys = list(body["data"])
    assert keys[keys.index("PF1") + 1] == "Fr1"
    assert keys[-4:] == ["A", "W", "TWh", "T"]
    assert body["data"]["Fr3"]["unit"] == "Hz"
    assert all(isinstance(e.get("value", ""), str) for e in body["data"].values())
    assert [key for key in keys if key in GETDATA["data"]] == list(GETDATA["data"])


async def test_relay_follows_the_seed_literally() -> None:
    """Request pout=0 turns the load on, pout=1 off; the answer's "pout" is "1" for on."""
    assert (REQUEST_POUT_ON, REQUEST_POUT_OFF) == ("0", "1")
    assert (REPORTED_POUT_ON, REPORTED_POUT_OFF) == ("1", "0")
    async with device(extended=True) as client:
        assert parse(await getdata(client))["pout"] == REPORTED_POUT_OFF
        for step, (request, reported) in enumerate(
            [(REQUEST_POUT_ON, REPORTED_POUT_ON), (None, REPORTED_POUT_ON),
             (REQUEST_POUT_OFF, REPORTED_POUT_OFF)],
            start=1,
        ):  # fmt: skip
            await set_clock(client, START + timedelta(seconds=6 * step))
            extra = {} if request is None else {"pout": request}
            assert parse(await getdata(client, **extra))["pout"] == reported


async def test_bad_pout_is_refused() -> None:
    async with device() as client:
        error = assert_device_error(await getdata(client, pout="on"), 400)
    assert "pout" in error


@pytest.mark.parametrize(
    "params", [{"devpass": "000000"}, {"devid": "1"}, {"devpass": ""}, {"devid": "", "devpass": ""}]
)
async def test_wrong_credentials_get_a_clear_auth_error(params: dict[str, str]) -> None:
    async with device() as client:
        error = assert_device_error(await getdata(client, **params), 401)
    assert "devpass" in error


async def test_unknown_page_is_refused() -> None:
    async with device() as client:
        error = assert_device_error(await getdata(client, page="setdata"), 404)
    assert "getdata" in error


async def test_standard_device_refuses_a_second_request_within_a_minute() -> None:
    async with device() as client:
        assert (await getdata(client)).status_code == 200
        await set_clock(client, START + timedelta(seconds=59))
        refused = await getdata(client)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert "too many requests" in parse(refused)["error"]
        await set_clock(client, START + timedelta(seconds=60))
        assert (await getdata(client)).status_code == 200


async def test_extended_device_answers_every_six_seconds() -> None:
    async with device(extended=True) as client:
        assert (await getdata(client)).status_code == 200
        await set_clock(client, START + timedelta(seconds=5))
        assert (await getdata(client)).status_code == 429
        await set_clock(client, START + timedelta(seconds=6))
        assert (await getdata(client)).status_code == 200


async def test_offline_device_answers_nothing() -> None:
    window = ((START - timedelta(minutes=1), START + timedelta(minutes=10)),)
    async with device(offline=window) as client:
        with pytest.raises(httpx.ConnectError):
            await getdata(client)
        await set_clock(client, START + timedelta(minutes=10))
        assert (await getdata(client)).status_code == 200


@pytest.mark.parametrize("nasty", ["", " 0", "é", "²", "0" * 500, "getdata\n"])
async def test_nasty_values_get_device_errors(nasty: str) -> None:
    async with device(extended=True) as client:
        for step, params in enumerate(
            [{"page": nasty}, {"devid": nasty}, {"devpass": nasty}, {"pout": nasty}], start=1
        ):
            await set_clock(client, START + timedelta(seconds=6 * step))
            response = await getdata(client, **params)
            assert response.status_code in (400, 401, 404), params
            assert list(parse(response)) == ["devid", "time", "error"]


async def test_info_names_the_rate_class_and_relay() -> None:
    async with device() as client:
        info = (await client.get("/_sim/info")).json()
    assert (info["vendor"], info["rate_class"], info["relay_on"]) == ("smartmac", "standard", False)
