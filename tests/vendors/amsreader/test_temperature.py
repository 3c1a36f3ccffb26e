"""The reader's 1-Wire sensors: temperature.json as the firmware prints it, its extras, and its reads."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tests.vendors.amsreader.test_connector import START, Rig, make_app

from meterhub.errors import PayloadError
from meterhub.model import Extra
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.amsreader import mapping, upkeep
from meterhub.vendors.amsreader.connector import firmware_key, firmware_record
from meterhub.vendors.base import TokenCache

AT = datetime(2026, 3, 15, 10, 30, tzinfo=UTC)
SENSORS = (("28FF6A2B91160412", 21.5), ("28aa0102030405f1", -3.2), ("28BB000000000001", -127.0))
FIRMWARE_ANSWER = (
    '{"c":3,"s":[{"i":0,"a":"28FF6A2B91160412","n":"","c":1,"v":21.5},'
    '{"i":1,"a":"28AA0102030405F1","n":"","c":1,"v":-3.2},'
    '{"i":2,"a":"28BB000000000001","n":"","c":1,"v":-127.0}]}'
)


# --- mapping ------------------------------------------------------------------------------------
def test_each_answering_sensor_becomes_an_extra_named_by_its_address() -> None:
    document = json.loads(FIRMWARE_ANSWER)
    assert mapping.temperature_extras(document, "ams", AT) == [
        Extra("ams", AT, "temperature_28ff6a2b91160412_c", 21.5),
        Extra("ams", AT, "temperature_28aa0102030405f1_c", -3.2),
    ]
    assert mapping.sensor_count(document) == 3
    assert mapping.temperature_extras({"c": 0, "s": []}, "ams", AT) == []
    assert mapping.sensor_count({"c": 0, "s": []}) == 0 and mapping.sensor_count("junk") == 0


def test_readings_at_or_below_minus_85_are_no_reading() -> None:
    def sensor(value: float) -> dict[str, object]:
        return {"c": 1, "s": [{"i": 0, "a": "28FF6A2B91160412", "n": "", "c": 1, "v": value}]}

    assert mapping.temperature_extras(sensor(-85.0), "ams", AT) == []
    assert mapping.temperature_extras(sensor(-90.5), "ams", AT) == []
    [kept] = mapping.temperature_extras(sensor(-84.9), "ams", AT)
    assert kept.value == -84.9


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "not a JSON object"),
        ({"c": 1}, "not a list of sensors"),
        ({"c": 1, "s": ["28FF"]}, "sensor 0 is str"),
        ({"c": 1, "s": [{"a": "28FF6A2B9116041", "v": 1.0}]}, "not 16 hex digits"),
        ({"c": 1, "s": [{"a": "28FF6A2B9116041Z", "v": 1.0}]}, "not 16 hex digits"),
        ({"c": 1, "s": [{"a": "28FF6A2B91160412", "v": "21.5"}]}, "not a number"),
    ],
)
def test_a_temperature_json_not_in_the_firmwares_shape_is_a_payload_error(
    document: object, message: str
) -> None:
    with pytest.raises(PayloadError, match=message):
        mapping.temperature_extras(document, "ams", AT)


def test_sensors_are_read_every_five_minutes_and_ten_minutes_after_a_failure() -> None:
    assert upkeep.temperatures_due(None, AT)
    assert not upkeep.temperatures_due((AT, True), AT + timedelta(minutes=4, seconds=59))
    assert upkeep.temperatures_due((AT, True), AT + timedelta(minutes=5))
    assert not upkeep.temperatures_due((AT, False), AT + timedelta(minutes=9, seconds=59))
    assert upkeep.temperatures_due((AT, False), AT + timedelta(minutes=10))
    assert upkeep.temperatures_due((AT, True), AT - timedelta(seconds=1))  # a clock set back


# --- the simulator --------------------------------------------------------------------------------
@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def answers(**options: object) -> tuple[Any, Any]:
    app = make_app(**options)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as http:
        return (await http.get("/temperature.json")).json(), (await http.get("/data.json")).json()["t"]


@pytest.mark.anyio
async def test_the_simulator_prints_configured_sensors_the_built_in_one_or_none() -> None:
    configured, t = await answers(temperature_sensors=SENSORS)
    assert configured == {
        "c": 3,
        "s": [
            {"i": 0, "a": "28FF6A2B91160412", "n": "", "c": 1, "v": 21.5},
            {"i": 1, "a": "28AA0102030405F1", "n": "", "c": 1, "v": -3.2},
            {"i": 2, "a": "28BB000000000001", "n": "", "c": 1, "v": -127.0},
        ],
    }
    assert t == 9.15  # (21.5 - 3.2) / 2: the sensor that does not answer is not averaged
    built_in, t = await answers(temperature_sensor=True)
    assert built_in["c"] == 1
    [sensor] = built_in["s"]
    assert sensor["a"].startswith("28FF") and len(sensor["a"]) == 16 and sensor["v"] == round(t, 1)
    assert await answers() == ({"c": 0, "s": []}, -127.0)
    assert await answers(temperature_sensors=(("28BB000000000001", -127.0),)) == (
        {"c": 1, "s": [{"i": 0, "a": "28BB000000000001", "n": "", "c": 1, "v": -127.0}]},
        -127.0,
    )


# --- the connector ----------------------------------------------------------------------------------
@pytest.fixture
async def sensor_rig(store: SQLiteStore) -> AsyncIterator[Rig]:
    """A reader of firmware v2.3.9 with three sensors, whose version the hub knows."""
    app = make_app(temperature_sensors=SENSORS)
    await TokenCache(store, "amsreader").put(
        firmware_key(Rig.base_url), firmware_record((2, 3, 9), None), None
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        yield Rig(app, http, store)


@pytest.mark.anyio
async def test_the_sensors_are_read_once_per_five_minutes_with_the_option(sensor_rig: Rig) -> None:
    connector = sensor_rig.connector(temperature_sensors="true")
    first = await connector.latest()
    second = await connector.latest()
    restarted = await sensor_rig.connector(temperature_sensors="TRUE").latest()
    names = {extra.name: extra.value for extra in first.extras}
    assert names["temperature_28ff6a2b91160412_c"] == 21.5
    assert names["temperature_28aa0102030405f1_c"] == -3.2
    assert "temperature_28bb000000000001_c" not in names and names["temperature_c"] == 9.15
    for later in (second, restarted):
        assert not [extra for extra in later.extras if extra.name.startswith("temperature_28")]
    assert await sensor_rig.calls() == {"/data.json": 3, "/temperature.json": 1}


@pytest.mark.anyio
async def test_without_the_option_the_sensors_are_not_read(sensor_rig: Rig) -> None:
    for value in (None, "false"):
        options = {} if value is None else {"temperature_sensors": value}
        fetched = await sensor_rig.connector(**options).latest()
        assert fetched.readings
    assert await sensor_rig.calls() == {"/data.json": 2}


@pytest.mark.anyio
async def test_a_failed_sensor_read_keeps_the_poll_and_waits_before_trying_again(
    sensor_rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    connector = sensor_rig.connector(temperature_sensors="true")
    await sensor_rig.faults(error_status=503, error_every=2)  # every second call: the sensor read
    with caplog.at_level(logging.WARNING, "meterhub.vendors.amsreader.connector"):
        failed = await connector.latest()
    await sensor_rig.faults()
    again = await sensor_rig.connector(temperature_sensors="true").latest()
    kept = await TokenCache(sensor_rig.store, "amsreader").get(
        upkeep.upkeep_key("temperatures", Rig.base_url)
    )
    assert failed.readings and not [e for e in failed.extras if e.name.startswith("temperature_28")]
    assert "reading the AMS reader's temperatures failed" in caplog.text and "HTTP 503" in caplog.text
    assert upkeep.read_record(kept) == (START.replace(microsecond=0), False)
    assert again.readings and (await sensor_rig.calls())["/temperature.json"] == 1
