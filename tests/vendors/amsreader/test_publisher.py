"""The AMS reader publisher sends JSON classic and raw payloads to the real Mosquitto broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import anyio
import pytest
from tests.mqttbroker import BROKER_HOST, BROKER_PORT, free_port, unique_topic

from meterhub.errors import VendorUnavailable
from meterhub.vendors.amsreader.device import AmsReaderConfig, ReaderDevice
from meterhub.vendors.amsreader.mqttpayloads import json_classic, raw_messages
from meterhub.vendors.amsreader.publisher import AmsPublisher, PayloadFormat, PublisherConfig

START = datetime(2026, 2, 10, 7, 15, tzinfo=UTC)
ENVELOPE_TYPES = {
    "id": str,
    "name": str,
    "up": int,
    "t": int,
    "vcc": float,
    "rssi": int,
    "temp": float,
    "data": dict,
    "realtime": dict,
}
REALTIME_TYPES = {
    "h": float,
    "d": float,
    "m": float,
    "t": int,
    "x": float,
    "he": float,
    "de": float,
    "me": float,
    "peaks": list,
}
LIST_KEYS = {
    1: {"P"},
    2: {"lv", "meterId", "type", "Q", "PO", "QO", "I1", "I2", "I3", "U1", "U2", "U3"},
    3: {"tPI", "tPIT1", "tPIT2", "tPO", "tPOT1", "tPOT2", "tQI", "tQO", "rtc"},
    4: {"P1", "P2", "P3", "PO1", "PO2", "PO3", "PF", "PF1", "PF2", "PF3"}
    | {"tPI1", "tPI2", "tPI3", "tPO1", "tPO2", "tPO3"},
}
TEXT_KEYS = {"lv", "meterId", "type"}
INT_KEYS = {"P", "Q", "PO", "QO", "P1", "P2", "P3", "PO1", "PO2", "PO3", "rtc"}
RAW_SUFFIXES = {
    "meter/import/active",
    "meter/export/active",
    "meter/import/reactive",
    "meter/export/reactive",
    "meter/l1/voltage",
    "meter/l2/voltage",
    "meter/l3/voltage",
    "meter/l1/current",
    "meter/import/accumulated",
    "meter/export/accumulated",
    "meter/import/reactive/accumulated",
    "meter/id",
    "meter/clock",
    "meter/import/l1",
    "meter/l3/powerfactor",
    "realtime/import/hour",
    "realtime/import/threshold",
    "realtime/import/monthmax",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_device(list_type: int = 4, **options: Any) -> ReaderDevice:
    config = AmsReaderConfig(start=START, list_type=list_type, **options)
    return ReaderDevice(config, seed=5, speed=0.0)


def assert_envelope(document: dict[str, object], list_type: int) -> None:
    assert {key: type(document[key]) for key in document} == ENVELOPE_TYPES
    realtime = document["realtime"]
    assert isinstance(realtime, dict)
    assert {key: type(realtime[key]) for key in realtime} == REALTIME_TYPES
    data = document["data"]
    assert isinstance(data, dict)
    expected = set().union(*(LIST_KEYS[n] for n in range(1, list_type + 1)))
    assert set(data) == expected
    for key, value in data.items():
        kind = str if key in TEXT_KEYS else int if key in INT_KEYS else float
        assert type(value) is kind, (key, value)


@pytest.mark.parametrize("list_type", [1, 2, 3, 4])
def test_json_classic_carries_the_fields_of_each_list_type(list_type: int) -> None:
    device = make_device(list_type)
    document = json.loads(json.dumps(json_classic(device, device.snapshot(START))))
    assert_envelope(document, list_type)
    assert document["t"] == int(START.timestamp())


def test_raw_topics_grow_with_the_list_type() -> None:
    device = make_device(1)
    snapshot = device.snapshot(START)
    topics = {topic for topic, _ in raw_messages(device, snapshot, "ams")}
    assert "ams/meter/import/active" in topics
    assert "ams/meter/l1/voltage" not in topics
    full = make_device(4)
    messages = dict(raw_messages(full, full.snapshot(START), "ams"))
    assert {f"ams/{suffix}" for suffix in RAW_SUFFIXES} <= set(messages)
    assert float(messages["ams/meter/import/accumulated"]) > 1000
    assert int(messages["ams/meter/import/active"]) >= 0


def test_nothing_is_published_while_offline() -> None:
    window = ((START - timedelta(minutes=1), START + timedelta(minutes=1)),)
    publisher = AmsPublisher(make_device(offline=window))
    assert publisher.messages(START) == []
    assert publisher.messages(START + timedelta(minutes=2))


@pytest.mark.mqtt
@pytest.mark.anyio
async def test_publisher_sends_both_formats_every_interval(broker: None) -> None:
    topic = unique_topic()
    device = make_device(4)
    config = PublisherConfig(topic=topic, interval_s=0.2)
    marker = f"{topic}-marker"
    json_documents: list[dict[str, object]] = []
    raw: dict[str, str] = {}
    received = 0
    async with aiomqtt.Client(BROKER_HOST, BROKER_PORT) as subscriber:
        await subscriber.subscribe(f"{topic}/#")
        await subscriber.subscribe(marker)
        publisher = AmsPublisher(device, config)
        async with publisher:
            with anyio.fail_after(60):
                async for message in subscriber.messages:
                    received += 1
                    payload = bytes(message.payload).decode()
                    if message.topic.value == topic:
                        json_documents.append(json.loads(payload))
                    else:
                        raw[message.topic.value.removeprefix(f"{topic}/")] = payload
                    if len(json_documents) >= 2 and raw.keys() >= RAW_SUFFIXES:
                        break
        stopped_at = publisher.published_count
        # Whatever the stopped publisher sent reached the broker before it disconnected, so it
        # arrives before a marker sent afterwards: once the marker is here, nothing more can come.
        await subscriber.publish(marker, payload="after the stop")
        with anyio.fail_after(60):
            async for message in subscriber.messages:
                if message.topic.value == marker:
                    break
                received += 1
    assert publisher.published_count == stopped_at
    assert received == stopped_at  # every message sent before the stop, and none after it
    for document in json_documents:
        assert_envelope(document, 4)
    assert json_documents[0]["id"] == device.mac
    assert float(raw["meter/l1/voltage"]) > 200
    assert float(raw["meter/import/accumulated"]) > 1000
    assert raw["meter/id"] == device.config.meter_id


@pytest.mark.mqtt
@pytest.mark.anyio
async def test_publisher_can_send_one_format_only(broker: None) -> None:
    topic = unique_topic()
    config = PublisherConfig(topic=topic, interval_s=0.2, formats=(PayloadFormat.RAW,))
    async with aiomqtt.Client(BROKER_HOST, BROKER_PORT) as subscriber:
        await subscriber.subscribe(f"{topic}/#")
        async with AmsPublisher(make_device(2), config):
            with anyio.fail_after(60):
                topics = set()
                async for message in subscriber.messages:
                    topics.add(message.topic.value)
                    if f"{topic}/meter/l3/current" in topics:
                        break
    assert topic not in topics


@pytest.mark.anyio
async def test_unreachable_broker_is_a_vendor_unavailable_error() -> None:
    config = PublisherConfig(port=free_port(), interval_s=0.1, connect_timeout_s=2)
    with anyio.fail_after(60), pytest.raises(VendorUnavailable, match="cannot publish"):
        await AmsPublisher(make_device(), config).run()


def test_a_reader_without_ntp_sends_seconds_since_boot_as_its_clock() -> None:
    device = make_device()
    device.variant = lambda name: name == "unset_clock"
    document = json_classic(device, device.snapshot(START + timedelta(seconds=5012)))
    assert document["t"] == document["up"] == 5012
