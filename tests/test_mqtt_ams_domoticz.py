"""The AMS reader's Domoticz commands: idx numbers, no time, a topic other devices share."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest

from meterhub.errors import PayloadError
from meterhub.model import Meter, Reading
from meterhub.mqtt import MqttSource, MqttSubscriber, PayloadFormat
from meterhub.mqtt_mapping import domoticz_values
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.amsreader.device import AmsReaderConfig, ReaderDevice
from meterhub.vendors.amsreader.publisher import AmsPublisher, PublisherConfig
from meterhub.vendors.amsreader.publisher import PayloadFormat as Published
from tests.mqttbroker import BROKER_HOST, BROKER_PORT, unique_topic
from tests.waiting import wait_until_async

METER = "ams-house"
IDX = {"elidx": 12, "vl1idx": 13, "vl2idx": 14, "vl3idx": 15, "cl1idx": 16}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "meterhub.db")
    store.add_meter(Meter(METER, "amsreader", phases=3, tz="Europe/Oslo", interval_s=10))
    yield store
    store.close()


def udevice(idx: int, svalue: str) -> str:
    return json.dumps({"command": "udevice", "idx": idx, "nvalue": 0, "svalue": svalue})


def reader_round(electricity: str, currents: str) -> list[str]:
    return [
        udevice(12, electricity),
        udevice(13, "231.20"),
        udevice(14, "229.00"),
        udevice(15, "230.40"),
        udevice(16, currents),
    ]


def readings(store: SQLiteStore, phase: int) -> list[Reading]:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    return list(store.iter_readings([METER], start, datetime.now(UTC) + timedelta(hours=1), phase=phase))


def test_udevice_commands_map_by_idx_and_others_are_not_ours() -> None:
    def values(idx: int, svalue: str, command: str = "udevice") -> dict[str, float] | None:
        return domoticz_values({"command": command, "idx": idx, "nvalue": 0, "svalue": svalue}, IDX)

    assert values(12, "1850.0;12345678.0") == {
        "meter/import/active": 1850.0,
        "meter/import/accumulated": 12345.678,
    }
    assert values(12, "0.0;12345678.0") == {"meter/import/accumulated": 12345.678}  # 0 W: maybe export
    assert values(16, "3.1;3.5;2.2") == {
        "meter/l1/current": 3.1,
        "meter/l2/current": 3.5,
        "meter/l3/current": 2.2,
    }
    assert values(99, "1") is None and values(13, "231.2", command="switchlight") is None
    for idx, broken in ((13, "231.2;1"), (16, "3.1;x;2.2"), (12, "1850")):
        with pytest.raises(PayloadError):
            values(idx, broken)
    with pytest.raises(ValueError, match="idx numbers"):
        MqttSource("h", 1883, "domoticz/in", "m", PayloadFormat.DOMOTICZ)
    for bad in ({"elidx": 0}, {"power": 3}, {"elidx": True}):
        with pytest.raises(ValueError):
            MqttSource("h", 1883, "domoticz/in", "m", PayloadFormat.DOMOTICZ, domoticz=bad)


@pytest.mark.mqtt
@pytest.mark.anyio
async def test_a_round_of_commands_is_one_reading_stamped_on_receipt(
    broker: None, store: SQLiteStore
) -> None:
    topic = unique_topic()  # stands for domoticz/in
    source = MqttSource(BROKER_HOST, BROKER_PORT, topic, METER, PayloadFormat.DOMOTICZ, domoticz=IDX)
    first = [udevice(7, "21.5"), *reader_round("1850.0;12345678.0", "3.1;3.5;2.2")]
    second = reader_round("0.0;12345700.0", "0.4;0.3;0.2")
    async with MqttSubscriber(store, [source], raw_window_s=3600.0) as subscriber:
        await subscriber.wait_subscribed()
        before = datetime.now(UTC)
        async with aiomqtt.Client(BROKER_HOST, BROKER_PORT) as client:
            for payload in first:
                await client.publish(topic, payload, qos=1)
            await wait_until_async(lambda: subscriber.counters.messages >= len(first), "the first round")
            between = datetime.now(UTC)
            # stored times have millisecond resolution: the second round must be received later
            await wait_until_async(lambda: datetime.now(UTC) - between > timedelta(milliseconds=2), "2 ms")
            for payload in second:
                await client.publish(topic, payload, qos=1)
        await wait_until_async(lambda: subscriber.counters.messages >= len(first) + len(second), "all")
    after = datetime.now(UTC)
    counters = subscriber.counters
    assert counters.malformed == {} and counters.ignored == 1  # idx 7: another device
    totals = readings(store, 0)
    assert len(totals) == 2
    assert before <= totals[0].ts <= between < totals[1].ts <= after
    assert (totals[0].power_w, totals[0].energy_import_kwh) == (1850.0, 12345.678)
    assert (totals[1].power_w, totals[1].energy_import_kwh) == (None, 12345.7)
    l1 = readings(store, 1)
    assert [(r.ts, r.voltage_v, r.current_a) for r in l1] == [
        (totals[0].ts, 231.2, 3.1),
        (totals[1].ts, 231.2, 0.4),
    ]
    assert (readings(store, 3)[0].voltage_v, readings(store, 3)[0].current_a) == (230.4, 2.2)


@pytest.mark.mqtt
@pytest.mark.anyio
async def test_the_simulated_reader_in_domoticz_format_is_stored(broker: None, store: SQLiteStore) -> None:
    topic = unique_topic()
    start = datetime(2026, 2, 10, 7, 15, tzinfo=UTC)
    device = ReaderDevice(AmsReaderConfig(start=start, list_type=3), seed=5, speed=0.0)
    config = PublisherConfig(formats=(Published.DOMOTICZ,), domoticz_topic=topic, domoticz=IDX)
    sent = AmsPublisher(device, config).messages(start)
    snapshot = device.snapshot(start)
    assert [json.loads(payload)["idx"] for _, payload in sent] == [12, 13, 14, 15, 16]
    source = MqttSource(BROKER_HOST, BROKER_PORT, topic, METER, PayloadFormat.DOMOTICZ, domoticz=IDX)
    async with MqttSubscriber(store, [source], raw_window_s=3600.0) as subscriber:
        await subscriber.wait_subscribed()
        async with aiomqtt.Client(BROKER_HOST, BROKER_PORT) as client:
            for message_topic, payload in sent:
                await client.publish(message_topic, payload, qos=1)
        await wait_until_async(lambda: subscriber.counters.messages >= len(sent), "every message")
    (total,) = readings(store, 0)
    assert total.power_w == snapshot.import_w > 0
    assert total.energy_import_kwh == pytest.approx(snapshot.energy_import_kwh, abs=1e-4)
    (l2,) = readings(store, 2)
    assert l2.voltage_v == round(snapshot.phases[1].voltage_v, 2)
    assert l2.current_a == round(snapshot.phases[1].current_a, 1)
