"""Real meters' values, as the AMS reader firmware decodes its captured HAN frames, reach the store.

The fixtures (tests/fixtures/amsreader/FIRMWARE_FRAMES.md) are the firmware's own data.json and
MQTT JSON templates filled with the values of three frames of its decoder test corpus: a
Kamstrup and an Aidon list-3 meter and an IT-grid Kaifa list-2 meter, all Norwegian. A reader
serving the data.json verbatim over loopback HTTP is polled by the poller into a real SQLite
store; the MQTT documents go through the real Mosquitto broker to the hub's subscriber. Every
expected number below is read off the frames by hand (see the provenance file).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meterhub.model import Extra, Meter, Reading
from meterhub.mqtt import MqttSource, MqttSubscriber, PayloadFormat
from meterhub.poller import Poller
from meterhub.store.sqlite import SQLiteStore
from tests.mqttbroker import BROKER_HOST, BROKER_PORT, unique_topic
from tests.simservers import served
from tests.waiting import wait_until_async

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent / "fixtures" / "amsreader"
SEED_SYSINFO = Path(__file__).parent / "vendors" / "amsreader" / "seed" / "sysinfo.json"
METER = "ams"
KAMSTRUP_AT = datetime(2021, 11, 25, 22, 0, 55, tzinfo=UTC)
"""em001-1's clock, 2021-11-25 23:00:55 in Oslo (CET)."""
KAIFA_AT = datetime(2022, 1, 2, 13, 37, 20, tzinfo=UTC)
"""gh180-2's header time, 2022-01-02 14:37:20 in Oslo (CET)."""
AIDON_AT = datetime(2025, 12, 14, 15, 0, tzinfo=UTC)
"""gh1119-1's clock, 2025-12-14 16:00:00 in Oslo (CET): the 16:00 hourly frame."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "meterhub.db")
    yield opened
    opened.close()


def reader_app(data_json: str) -> Starlette:
    """A reader answering its data.json verbatim, and sysinfo.json with the last release number."""
    body = (FIXTURES / data_json).read_bytes()
    sysinfo = json.loads(SEED_SYSINFO.read_text()) | {"version": "v2.5.7"}

    async def data(_request: Request) -> Response:
        return Response(body, media_type="application/json")

    async def info(_request: Request) -> Response:
        return Response(json.dumps(sysinfo), media_type="application/json")

    return Starlette(routes=[Route("/data.json", data), Route("/sysinfo.json", info)])


async def poll_fixture(store: SQLiteStore, data_json: str) -> tuple[dict[int, Reading], dict[str, Extra]]:
    with served(reader_app(data_json)) as base_url:
        store.add_meter(Meter(METER, "amsreader", 3, "Europe/Oslo", 10, "", {"base_url": base_url}))
        async with httpx.AsyncClient(timeout=10) as client:
            outcome = await Poller(store, client).poll_once(METER)
    assert outcome.ok, outcome.error
    return latest(store)


def latest(store: SQLiteStore) -> tuple[dict[int, Reading], dict[str, Extra]]:
    readings = {reading.phase: reading for reading in store.latest([METER], phase=None)}
    start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(hours=1)
    names = ("temperature_c", "rssi_dbm", "vcc_v", "uptime_s")
    extras = {extra.name: extra for name in names for extra in store.extras(METER, name, start, end)}
    return readings, extras


async def test_kamstrup_list3_frame_through_data_json(store: SQLiteStore) -> None:
    readings, extras = await poll_fixture(store, "data-kamstrup-em001-1.json")
    assert readings == {
        0: Reading(
            METER, KAMSTRUP_AT, 0, power_w=1247.0, reactive_power_var=-417.0,
            energy_import_kwh=85823.28, energy_export_kwh=4540.83,
            reactive_import_kvarh=153.27, reactive_export_kvarh=14774.38,
        ),
        1: Reading(METER, KAMSTRUP_AT, 1, voltage_v=236.0, current_a=1.89),
        2: Reading(METER, KAMSTRUP_AT, 2, voltage_v=236.0, current_a=3.27),
        3: Reading(METER, KAMSTRUP_AT, 3, voltage_v=236.0, current_a=1.28),
    }  # fmt: skip
    assert "temperature_c" not in extras  # -127: the reader has no sensor
    assert (extras["rssi_dbm"].value, extras["vcc_v"].value) == (-62.0, 3.29)


async def test_it_grid_kaifa_list2_frame_through_data_json(store: SQLiteStore) -> None:
    readings, _ = await poll_fixture(store, "data-kaifa-gh180-2.json")
    # List 2: no registers (0.000), no power factors, no per-phase power. The meter sends no L2
    # voltage (0.00) while 5.75 A flow in L2: not a reading of 0 V.
    assert readings == {
        0: Reading(METER, KAIFA_AT, 0, power_w=4097.0, reactive_power_var=195.0),
        1: Reading(METER, KAIFA_AT, 1, voltage_v=239.2, current_a=12.06),
        2: Reading(METER, KAIFA_AT, 2, current_a=5.75),
        3: Reading(METER, KAIFA_AT, 3, voltage_v=239.7, current_a=13.41),
    }


async def test_aidon_list3_frame_through_data_json(store: SQLiteStore) -> None:
    readings, extras = await poll_fixture(store, "data-aidon-gh1119-1.json")
    assert readings == {
        0: Reading(
            METER, AIDON_AT, 0, power_w=4027.0, reactive_power_var=-472.0,
            energy_import_kwh=109552.248, energy_export_kwh=0.0,
            reactive_import_kvarh=130.48, reactive_export_kvarh=15319.72,
        ),
        1: Reading(METER, AIDON_AT, 1, voltage_v=233.0, current_a=0.5),
        2: Reading(METER, AIDON_AT, 2, voltage_v=233.4, current_a=0.3),
        3: Reading(METER, AIDON_AT, 3, voltage_v=231.1, current_a=16.8),
    }  # fmt: skip
    assert extras["temperature_c"] == Extra(METER, AIDON_AT, "temperature_c", 21.5)


@pytest.mark.mqtt
async def test_json_classic_documents_of_the_kamstrup_and_aidon_frames(
    broker: None, store: SQLiteStore
) -> None:
    store.add_meter(Meter(METER, "amsreader", 3, "Europe/Oslo", 10))
    topic = unique_topic()
    names = ("mqtt-json-kamstrup-em001-1.json", "mqtt-json-aidon-gh1119-1.json")
    source = MqttSource(BROKER_HOST, BROKER_PORT, topic, METER, PayloadFormat.JSON)
    async with MqttSubscriber(store, [source]) as subscriber:
        await subscriber.wait_subscribed()
        async with aiomqtt.Client(BROKER_HOST, BROKER_PORT) as client:
            for name in names:
                await client.publish(topic, (FIXTURES / name).read_bytes(), qos=1)
        await wait_until_async(lambda: subscriber.counters.readings_stored >= 8, "8 readings stored")
    assert subscriber.counters.malformed == {}
    start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime.now(UTC)
    totals = list(store.iter_readings([METER], start, end, phase=0))
    l3 = list(store.iter_readings([METER], start, end, phase=3))
    # The Kamstrup reader's clock t is set; the Aidon reader's (86400 s since boot) is not, so
    # the meter's clock rtc stamps it.
    assert totals == [
        Reading(
            METER, KAMSTRUP_AT, 0, power_w=1247.0, reactive_power_var=-417.0,
            energy_import_kwh=85823.28, energy_export_kwh=4540.83,
            reactive_import_kvarh=153.27, reactive_export_kvarh=14774.38,
        ),
        Reading(
            METER, AIDON_AT, 0, power_w=4027.0, reactive_power_var=-472.0,
            energy_import_kwh=109552.248, energy_export_kwh=0.0,
            reactive_import_kvarh=130.48, reactive_export_kvarh=15319.72,
        ),
    ]  # fmt: skip
    assert [(r.ts, r.voltage_v, r.current_a) for r in l3] == [
        (KAMSTRUP_AT, 236.0, 1.28),
        (AIDON_AT, 231.1, 16.8),
    ]
