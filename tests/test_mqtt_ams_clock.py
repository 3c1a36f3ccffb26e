"""An AMS reader without NTP: its clock counts seconds since boot, and that clock is unset, not wrong."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest

from meterhub.errors import PayloadError
from meterhub.model import Meter, Reading
from meterhub.mqtt import MqttSource, MqttSubscriber, PayloadFormat
from meterhub.mqtt_mapping import reader_clock
from meterhub.store.sqlite import SQLiteStore
from tests.mqttbroker import BROKER_HOST, BROKER_PORT, unique_topic
from tests.waiting import wait_until_async

METER = "ams-house"
UPTIME_S = 5012
"""What ``t`` says on a reader 1 h 23 min 32 s after boot, without NTP."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "meterhub.db")
    store.add_meter(Meter(METER, "amsreader", phases=3, tz="Europe/Oslo", interval_s=10))
    yield store
    store.close()


def totals(store: SQLiteStore) -> list[Reading]:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    return list(store.iter_readings([METER], start, datetime.now(UTC) + timedelta(hours=1), phase=0))


def test_a_clock_before_2020_is_unset_and_a_broken_one_is_malformed() -> None:
    assert reader_clock(None, "t") is None
    assert reader_clock(0, "t") is None
    assert reader_clock(UPTIME_S, "t") is None
    assert reader_clock(1_577_836_799, "t") is None  # 2019-12-31 23:59:59
    assert reader_clock(1_577_836_800, "t") == datetime(2020, 1, 1, tzinfo=UTC)
    assert reader_clock(1_770_707_700.0, "t") == datetime(2026, 2, 10, 7, 15, tzinfo=UTC)
    for broken in ("1770707700", True, -1, float("nan"), 4_102_444_800):  # the last: 2100-01-01
        with pytest.raises(PayloadError):
            reader_clock(broken, "t")


@pytest.mark.mqtt
@pytest.mark.anyio
async def test_json_with_an_unset_clock_takes_the_meter_clock_else_the_receipt_time(
    broker: None, store: SQLiteStore
) -> None:
    topic = unique_topic()
    rtc = int(time.time()) - 60
    list3 = {"id": "48:27", "t": UPTIME_S, "data": {"P": 1800, "PO": 0, "tPI": 12345.678, "rtc": rtc}}
    list2 = {"id": "48:27", "t": UPTIME_S + 10, "data": {"P": 700, "PO": 100, "U1": 231.2}}
    source = MqttSource(BROKER_HOST, BROKER_PORT, topic, METER, PayloadFormat.JSON)
    async with MqttSubscriber(store, [source]) as subscriber:
        await subscriber.wait_subscribed()
        before = datetime.now(UTC)
        async with aiomqtt.Client(BROKER_HOST, BROKER_PORT) as client:
            for document in (list3, list2):
                await client.publish(topic, json.dumps(document), qos=1)
        await wait_until_async(lambda: subscriber.counters.readings_stored >= 3, "3 readings stored")
        after = datetime.now(UTC)
    assert subscriber.counters.malformed == {}
    from_rtc, received = totals(store)
    assert from_rtc.ts == datetime.fromtimestamp(rtc, UTC)
    assert (from_rtc.power_w, from_rtc.energy_import_kwh) == (1800.0, 12345.678)
    assert before <= received.ts <= after
    assert received.power_w == 600.0  # 700 - 100


@pytest.mark.mqtt
@pytest.mark.anyio
async def test_raw_rounds_with_an_unset_clock_take_the_meter_clock_else_the_receipt_time(
    broker: None, store: SQLiteStore
) -> None:
    topic = unique_topic()
    clock = int(time.time()) - 60
    sent = [
        ("meter/dlms/timestamp", str(UPTIME_S)),
        ("meter/clock", str(clock)),
        ("meter/import/active/accumulated", "12345.678"),
        ("meter/export/active", "150"),
        ("meter/import/active", "2000"),
        ("meter/dlms/timestamp", str(UPTIME_S + 10)),  # a list-2 frame: no meter clock
        ("meter/export/active", "0"),
        ("meter/import/active", "2100"),
    ]
    source = MqttSource(BROKER_HOST, BROKER_PORT, topic, METER, PayloadFormat.RAW)
    async with MqttSubscriber(store, [source], raw_window_s=3600.0) as subscriber:
        await subscriber.wait_subscribed()
        before = datetime.now(UTC)
        async with aiomqtt.Client(BROKER_HOST, BROKER_PORT) as client:
            for suffix, payload in sent:
                await client.publish(f"{topic}/{suffix}", payload, qos=1)
        await wait_until_async(lambda: subscriber.counters.messages >= len(sent), "every message")
    after = datetime.now(UTC)
    assert subscriber.counters.malformed == {}
    from_clock, received = totals(store)
    assert from_clock.ts == datetime.fromtimestamp(clock, UTC)
    assert (from_clock.power_w, from_clock.energy_import_kwh) == (1850.0, 12345.678)
    # the second round's values arrived after ``before``; it is stored when the subscriber stops
    assert before <= received.ts <= after
    assert received.power_w == 2100.0
