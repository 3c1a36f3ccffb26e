"""The AMS reader's Home Assistant state documents (energy, power, realtime) through the real broker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from meterhub.errors import PayloadError
from meterhub.model import Meter, Reading
from meterhub.mqtt import MqttSource, MqttSubscriber, PayloadFormat
from meterhub.mqtt_mapping import map_home_assistant, reader_iso_clock
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.amsreader.device import AmsReaderConfig, ReaderDevice
from meterhub.vendors.amsreader.publisher import AmsPublisher, PublisherConfig
from meterhub.vendors.amsreader.publisher import PayloadFormat as Published
from tests.mqttbroker import BROKER_HOST, BROKER_PORT, unique_topic
from tests.waiting import wait_until_async

METER = "ams-house"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "meterhub.db")
    store.add_meter(Meter(METER, "amsreader", phases=3, tz="Europe/Oslo", interval_s=10))
    yield store
    store.close()


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def list4_frame(ts: datetime) -> list[tuple[str, dict[str, Any]]]:
    """One list-4 frame as the reader's ha2, ha4 and realtime documents (values made up)."""
    energy = {"tPI": 12345.678, "tPO": 1.25, "tQI": 100.5, "tQO": 0.0, "rtc": iso(ts), "t": iso(ts)}
    power = {
        "lv": "Kamstrup_V0001", "id": "5706567274389702", "type": "6841131BN243101040",
        "P": 2000, "P1": 700, "P2": 800, "P3": 500, "Q": 300,
        "PO": 150, "PO1": 0, "PO2": 0, "PO3": 150, "QO": 0,
        "I1": 3.1, "I2": 3.5, "I3": 2.2, "U1": 231.2, "U2": 229.0, "U3": 230.4,
        "PF": 93, "PF1": 95, "PF2": 90, "PF3": 88,
        "tPI1": 4000.5, "tPI2": 4100.25, "tPI3": 4244.928, "tPO1": 0.0, "tPO2": 0.0, "tPO3": 1.25,
        "t": iso(ts),
    }  # fmt: skip
    day = {"use": 11.7, "cost": 0.0, "produced": 0.3, "income": 0.0}
    realtime = {
        "max": 3.9, "peaks": [4.19, 3.74, 3.76], "threshold": 5,
        "hour": {"use": 0.46, "cost": 0.0, "produced": 0.0, "income": 0.0}, "day": day,
        "month": {"use": 397.0, "cost": 0.0, "produced": 2.5, "income": 0.0}, "t": iso(ts),
    }  # fmt: skip
    return [("energy", energy), ("power", power), ("realtime", realtime)]


def readings(store: SQLiteStore, phase: int) -> list[Reading]:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    return list(store.iter_readings([METER], start, datetime.now(UTC) + timedelta(hours=1), phase=phase))


async def publish(messages: list[tuple[str, str]]) -> None:
    async with aiomqtt.Client(BROKER_HOST, BROKER_PORT) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)


def test_iso_times_and_unreported_power_factors() -> None:
    assert reader_iso_clock(None, "t") is None
    assert reader_iso_clock("1970-01-01T01:23:32Z", "t") is None  # 5012 s after boot, no NTP
    assert reader_iso_clock("2026-02-10T07:15:00Z", "t") == datetime(2026, 2, 10, 7, 15, tzinfo=UTC)
    for broken in ("2026-02-10T07:15:00", "yesterday", 1770707700):
        with pytest.raises(PayloadError):
            reader_iso_clock(broken, "t")
    received = datetime(2026, 2, 10, 7, 15, 1, tzinfo=UTC)
    unreported = {"P": 900, "P1": 300, "PF": 100, "PF1": 100, "PF2": 100, "PF3": 100, "t": None}
    (total, l1) = map_home_assistant("power", unreported, METER, received).readings
    assert (total.ts, total.power_w, total.power_factor) == (received, 900.0, None)
    assert (l1.power_w, l1.power_factor) == (300.0, None)
    unity = {**unreported, "PF2": 99}
    assert map_home_assistant("power", unity, METER, received).readings[0].power_factor == 1.0


@pytest.mark.mqtt
@pytest.mark.anyio
async def test_a_list4_frame_is_one_reading_per_phase_and_its_extras(
    broker: None, store: SQLiteStore
) -> None:
    topic = unique_topic()
    first = datetime.fromtimestamp(int(time.time()) - 60, UTC)
    second = first + timedelta(seconds=10)
    ha1 = {"P": 512, "t": iso(second + timedelta(seconds=10))}  # a list-1 frame between list-4 ones
    frames = [*list4_frame(first), ("power", ha1), *list4_frame(second)]
    sent = [(f"{topic}/{suffix}", json.dumps(document)) for suffix, document in frames]
    sent.append((f"{topic}/temperatures", json.dumps({"temperatures": {"28FF01": 20.5}, "t": iso(first)})))
    source = MqttSource(BROKER_HOST, BROKER_PORT, topic, METER, PayloadFormat.HOME_ASSISTANT)
    async with MqttSubscriber(store, [source]) as subscriber:
        await subscriber.wait_subscribed()
        await publish(sent)
        await wait_until_async(lambda: subscriber.counters.messages >= len(sent), "every message")
    counters = subscriber.counters
    assert counters.malformed == {} and counters.ignored == 1  # the temperatures
    totals = readings(store, 0)
    assert [r.ts for r in totals] == [first, second, second + timedelta(seconds=10)]
    total = totals[0]
    assert (total.power_w, total.reactive_power_var, total.power_factor) == (1850.0, 300.0, 0.93)
    assert (total.energy_import_kwh, total.energy_export_kwh) == (12345.678, 1.25)
    assert (total.reactive_import_kvarh, total.reactive_export_kvarh) == (100.5, 0.0)
    assert totals[2].power_w == 512.0 and totals[2].energy_import_kwh is None
    l3 = readings(store, 3)[0]
    assert (l3.power_w, l3.voltage_v, l3.current_a, l3.power_factor) == (350.0, 230.4, 2.2, 0.88)
    assert (l3.energy_import_kwh, l3.energy_export_kwh) == (4244.928, 1.25)
    expected = {
        "capacity_month_max_kwh": 3.9, "capacity_threshold_kwh": 5.0,
        "capacity_peak_1_kwh": 4.19, "capacity_peak_2_kwh": 3.74, "capacity_peak_3_kwh": 3.76,
        "hour_import_kwh": 0.46, "day_import_kwh": 11.7, "month_import_kwh": 397.0,
        "hour_export_kwh": 0.0, "day_export_kwh": 0.3, "month_export_kwh": 2.5,
    }  # fmt: skip
    for name, value in expected.items():
        assert [(e.ts, e.value) for e in store.extras(METER, name, first, second)] == [(first, value)], name


@pytest.mark.mqtt
@pytest.mark.anyio
async def test_the_simulated_reader_in_home_assistant_format_is_stored(
    broker: None, store: SQLiteStore
) -> None:
    topic = unique_topic()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    device = ReaderDevice(AmsReaderConfig(start=start, list_type=4), seed=5, speed=0.0)
    publisher = AmsPublisher(device, PublisherConfig(topic=topic, formats=(Published.HOME_ASSISTANT,)))
    instants = [start + timedelta(seconds=10 * n) for n in range(1, 4)]
    rounds = [publisher.messages(instant) for instant in instants]
    assert [suffix.removeprefix(f"{topic}/") for suffix, _ in rounds[0]] == ["energy", "power", "realtime"]
    source = MqttSource(BROKER_HOST, BROKER_PORT, topic, METER, PayloadFormat.HOME_ASSISTANT)
    async with MqttSubscriber(store, [source]) as subscriber:
        await subscriber.wait_subscribed()
        await publish([message for round_ in rounds for message in round_])
        await wait_until_async(lambda: subscriber.counters.messages >= 9, "every message")
    assert subscriber.counters.malformed == {}
    totals = readings(store, 0)
    assert [r.ts for r in totals] == instants
    for total, round_ in zip(totals, rounds, strict=True):
        energy, power = (json.loads(payload) for _, payload in round_[:2])
        assert total.power_w == power["P"] - power["PO"]
        assert total.energy_import_kwh == energy["tPI"]
        assert total.power_factor == power["PF"] / 100
    for phase in (1, 2, 3):
        for reading in readings(store, phase):
            assert None not in (
                reading.voltage_v,
                reading.current_a,
                reading.power_w,
                reading.energy_import_kwh,
            )
