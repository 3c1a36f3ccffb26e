"""Raw MQTT rounds as the AMS reader sends them: one round, one reading per phase, on the real broker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest

from meterhub.model import Meter, Reading
from meterhub.mqtt import MqttSource, MqttSubscriber, PayloadFormat
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.amsreader.device import AmsReaderConfig, ReaderDevice
from meterhub.vendors.amsreader.publisher import AmsPublisher, PublisherConfig
from meterhub.vendors.amsreader.publisher import PayloadFormat as Published
from tests.mqttbroker import BROKER_HOST, BROKER_PORT, unique_topic
from tests.waiting import wait_until_async

METER = "ams-house"
METER_ID = "5706567274389702"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "meterhub.db")
    store.add_meter(Meter(METER, "amsreader", phases=3, tz="Europe/Oslo", interval_s=10))
    yield store
    store.close()


def list3_round(t: int, import_w: int, import_kwh: str) -> list[tuple[str, str]]:
    """One round of a list-3 meter, topic by topic in the reader's order (values made up)."""
    return [
        ("meter/dlms/timestamp", str(t)),
        ("meter/id", METER_ID),
        ("meter/type", "6841131BN243101040"),
        ("meter/clock", str(t)),
        ("meter/import/reactive/accumulated", "100.500"),
        ("meter/import/active/accumulated", import_kwh),
        ("meter/import/active/accumulated/tariff1", import_kwh),
        ("meter/import/active/accumulated/tariff2", "0.000"),
        ("meter/export/reactive/accumulated", "0.000"),
        ("meter/export/active/accumulated", "1.250"),
        ("meter/id", METER_ID),
        ("meter/type", "6841131BN243101040"),
        ("meter/l1/current", "4.10"),
        ("meter/l1/voltage", "231.20"),
        ("meter/l2/current", "2.00"),
        ("meter/l2/voltage", "229.00"),
        ("meter/l3/current", "3.30"),
        ("meter/l3/voltage", "230.40"),
        ("meter/export/reactive", "0"),
        ("meter/export/active", "150"),
        ("meter/import/reactive", "300"),
        ("meter/import/active", str(import_w)),
        ("realtime/import/hour", "0.459"),
    ]


async def publish(topic: str, messages: list[tuple[str, str]]) -> None:
    async with aiomqtt.Client(BROKER_HOST, BROKER_PORT) as client:
        for suffix, payload in messages:
            await client.publish(f"{topic}/{suffix}", payload, qos=1)


def readings(store: SQLiteStore, phase: int) -> list[Reading]:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    return list(store.iter_readings([METER], start, datetime.now(UTC) + timedelta(hours=1), phase=phase))


@pytest.mark.mqtt
@pytest.mark.anyio
async def test_a_list3_round_with_id_and_type_twice_is_one_reading(broker: None, store: SQLiteStore) -> None:
    topic = unique_topic()
    t = int(time.time()) - 60
    sent = [*list3_round(t, 2000, "12345.678"), *list3_round(t + 10, 2100, "12345.684")]
    source = MqttSource(BROKER_HOST, BROKER_PORT, topic, METER, PayloadFormat.RAW)
    # rounds end at the next round's start, or when the subscriber stops: never by a timer here
    async with MqttSubscriber(store, [source], raw_window_s=3600.0) as subscriber:
        await subscriber.wait_subscribed()
        await publish(topic, sent)
        await wait_until_async(lambda: subscriber.counters.messages >= len(sent), "every message")
    assert subscriber.counters.malformed == {}
    first, second = datetime.fromtimestamp(t, UTC), datetime.fromtimestamp(t + 10, UTC)
    totals = readings(store, 0)
    assert [r.ts for r in totals] == [first, second]
    assert (totals[0].power_w, totals[1].power_w) == (1850.0, 1950.0)  # 2000 - 150, 2100 - 150
    assert totals[0].reactive_power_var == 300.0
    assert (totals[0].energy_import_kwh, totals[1].energy_import_kwh) == (12345.678, 12345.684)
    assert totals[0].energy_export_kwh == 1.25 and totals[0].reactive_import_kvarh == 100.5
    l1, l3 = readings(store, 1), readings(store, 3)
    assert [(r.ts, r.voltage_v, r.current_a) for r in l1] == [(first, 231.2, 4.1), (second, 231.2, 4.1)]
    assert (l3[0].voltage_v, l3[0].current_a) == (230.4, 3.3)
    hour = store.extras(METER, "hour_import_kwh", first, second + timedelta(seconds=1))
    assert [(extra.ts, extra.value) for extra in hour] == [(first, 0.459), (second, 0.459)]


@pytest.mark.mqtt
@pytest.mark.anyio
async def test_simulated_list4_rounds_become_whole_readings(broker: None, store: SQLiteStore) -> None:
    topic = unique_topic()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    device = ReaderDevice(AmsReaderConfig(start=start, list_type=4), seed=5, speed=0.0)
    publisher = AmsPublisher(device, PublisherConfig(topic=topic, formats=(Published.RAW,)))
    instants = [start + timedelta(seconds=10 * n) for n in range(1, 4)]
    rounds = [publisher.messages(instant) for instant in instants]
    suffixes = [topic_.removeprefix(f"{topic}/") for topic_, _ in rounds[0]]
    assert suffixes[0] == "meter/dlms/timestamp"
    assert suffixes.count("meter/id") == 2 and suffixes.count("meter/type") == 2
    source = MqttSource(BROKER_HOST, BROKER_PORT, topic, METER, PayloadFormat.RAW)
    async with MqttSubscriber(store, [source], raw_window_s=3600.0) as subscriber:
        await subscriber.wait_subscribed()
        sent = [(suffix.removeprefix(f"{topic}/"), text) for round_ in rounds for suffix, text in round_]
        await publish(topic, sent)
        await wait_until_async(lambda: subscriber.counters.messages >= len(sent), "every message")
    assert subscriber.counters.malformed == {}
    totals = readings(store, 0)
    assert [r.ts for r in totals] == instants
    for total, round_ in zip(totals, rounds, strict=True):
        texts = {suffix.removeprefix(f"{topic}/"): text for suffix, text in round_}
        assert total.power_w == float(texts["meter/import/active"]) - float(texts["meter/export/active"])
        assert total.energy_import_kwh == float(texts["meter/import/accumulated"])
        assert total.power_factor == float(texts["meter/powerfactor"])
    for phase in (1, 2, 3):
        for reading in readings(store, phase):
            values = (reading.voltage_v, reading.current_a, reading.power_w, reading.energy_import_kwh)
            assert None not in values, (phase, reading)
