"""MQTT ingest of AMS reader payloads: the mapping, and the subscriber on the real Mosquitto broker."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import anyio
import anyio.abc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterhub.errors import ConfigError, PayloadError
from meterhub.model import Meter, Reading
from meterhub.mqtt import MqttSource, MqttSubscriber, PayloadFormat
from meterhub.mqtt_mapping import decode_json, map_json, map_raw, parse_raw_number, raw_suffix
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.amsreader.device import AmsReaderConfig, ReaderDevice, Snapshot
from meterhub.vendors.amsreader.mqttpayloads import json_classic, raw_messages
from meterhub.vendors.amsreader.publisher import AmsPublisher, PublisherConfig
from tests.mqttbroker import BROKER_HOST, BROKER_PORT, free_port, unique_topic
from tests.waiting import DEADLINE_S, wait_until_async

START = datetime(2026, 2, 10, 7, 15, tzinfo=UTC)
RECEIVED = START + timedelta(seconds=1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- mapping ------------------------------------------------------------------------------------
def make_device(list_type: int = 4, **options: Any) -> ReaderDevice:
    return ReaderDevice(AmsReaderConfig(start=START, list_type=list_type, **options), seed=5, speed=0.0)


def classic(device: ReaderDevice) -> tuple[dict[str, Any], Snapshot]:
    snapshot = device.snapshot(START)
    return json.loads(json.dumps(json_classic(device, snapshot))), snapshot


def flat(document: dict[str, Any]) -> dict[str, Any]:
    """Turn a JSON classic document into the reader's JSON flat form."""
    envelope = {key: value for key, value in document.items() if key not in ("data", "realtime")}
    realtime = {f"rt_{key}": value for key, value in document["realtime"].items() if key != "peaks"}
    return {**envelope, **document["data"], **realtime, "peaks": document["realtime"]["peaks"]}


def by_phase(readings: list[Reading]) -> dict[int, Reading]:
    return {reading.phase: reading for reading in readings}


@pytest.mark.parametrize("list_type", [1, 2, 3, 4])
def test_json_classic_maps_every_list_type(list_type: int) -> None:
    document, snapshot = classic(make_device(list_type))
    fetched = map_json(document, PayloadFormat.JSON, "ams", RECEIVED)
    phases = by_phase(fetched.readings)
    total = phases[0]
    assert total.ts == START
    assert total.power_w == snapshot.import_w - (snapshot.export_w if list_type >= 2 else 0)
    assert set(phases) == ({0} if list_type == 1 else {0, 1, 2, 3})
    if list_type >= 2:
        assert total.reactive_power_var == snapshot.reactive_import_var - snapshot.reactive_export_var
        assert phases[1].voltage_v == snapshot.phases[0].voltage_v
        assert phases[3].current_a == snapshot.phases[2].current_a
    if list_type >= 3:
        assert total.energy_import_kwh == snapshot.energy_import_kwh
        assert total.reactive_export_kvarh == snapshot.reactive_export_kvarh
    if list_type == 4:
        line = snapshot.phases[1]
        assert phases[2].power_w == line.import_w - line.export_w
        assert phases[2].energy_import_kwh == line.energy_import_kwh
        assert total.power_factor == snapshot.power_factor
    extras = {extra.name: extra.value for extra in fetched.extras}
    assert extras["temperature_c"] == snapshot.temperature_c
    assert extras["rssi_dbm"] == snapshot.rssi_dbm
    assert extras["capacity_threshold_kwh"] == snapshot.capacity.threshold_kwh


def test_json_flat_maps_like_json_classic() -> None:
    document, _ = classic(make_device(4))
    from_classic = map_json(document, PayloadFormat.JSON, "ams", RECEIVED)
    from_flat = map_json(flat(document), PayloadFormat.FLAT, "ams", RECEIVED)
    assert from_flat.readings == from_classic.readings
    assert sorted(e.name for e in from_flat.extras) == sorted(e.name for e in from_classic.extras)


def test_raw_values_of_one_round_map_to_one_reading_per_phase() -> None:
    device = make_device(4)
    snapshot = device.snapshot(START)
    numbers: dict[str, float] = {}
    for topic, text in raw_messages(device, snapshot, "ams/1"):
        name = raw_suffix(topic.removeprefix("ams/1/"))
        if name is not None and not name.startswith("meter/id") and name != "meter/type":
            numbers[name] = parse_raw_number(name, text.encode())
    fetched = map_raw(numbers, "ams", RECEIVED)
    from_json = by_phase(map_json(classic(device)[0], PayloadFormat.JSON, "ams", RECEIVED).readings)
    phases = by_phase(fetched.readings)
    assert phases[0].ts == START
    for name in (
        "power_w",
        "reactive_power_var",
        "energy_import_kwh",
        "reactive_import_kvarh",
        "power_factor",
    ):
        assert getattr(phases[0], name) == getattr(from_json[0], name), name
    for n in (1, 2, 3):
        assert (phases[n].voltage_v, phases[n].current_a, phases[n].power_w) == (
            from_json[n].voltage_v,
            from_json[n].current_a,
            from_json[n].power_w,
        )
    names = {extra.name for extra in fetched.extras}
    assert {"hour_import_kwh", "capacity_month_max_kwh"} <= names


def test_firmware_raw_names_and_ignored_topics() -> None:
    assert raw_suffix("meter/import/active/accumulated") == "meter/import/accumulated"
    assert raw_suffix("price/3") is None and raw_suffix("temperature/28FF01") is None
    with pytest.raises(PayloadError):
        parse_raw_number("meter/import/active", b"twelve")
    with pytest.raises(PayloadError):
        parse_raw_number("meter/import/active", b"nan")


def test_system_price_and_temperature_documents() -> None:
    system = {
        "id": "48:27",
        "name": "ams",
        "up": 60,
        "vcc": 3.3,
        "rssi": -60,
        "temp": 21.0,
        "version": "v2.3.9",
    }
    fetched = map_json(system, PayloadFormat.JSON, "ams", RECEIVED)
    assert fetched.readings == [] and {e.name for e in fetched.extras} == {
        "uptime_s",
        "vcc_v",
        "rssi_dbm",
        "temperature_c",
    }
    assert all(extra.ts == RECEIVED for extra in fetched.extras)
    prices = {"id": "48:27", "prices": {"import": [1.2, None]}}
    assert map_json(prices, PayloadFormat.JSON, "ams", RECEIVED).extras == []
    assert map_json({"28FF0102": 20.5}, PayloadFormat.FLAT, "ams", RECEIVED).readings == []


def test_sources_split_topics_and_find_their_meter() -> None:
    source = MqttSource(
        "h", 1883, "ams/+", "fallback", "raw",  # as a config file gives it
        devices={"ams/garage": "garage", "5706": "house"},
    )  # fmt: skip
    assert source.format is PayloadFormat.RAW and source.subscription == "ams/+/#"
    assert source.split("ams/garage/meter/l1/voltage") == ("ams/garage", "meter/l1/voltage")
    assert source.split("ams/garage") == ("ams/garage", "")
    assert source.split("other/garage/meter") is None
    assert source.meter_for("ams/garage", ()) == "garage"
    assert source.meter_for("ams/x", ("5706",)) == "house"
    assert source.meter_for("ams/y", ()) == "fallback"
    bad_fields: list[dict[str, Any]] = [{"topic": "ams/#"}, {"topic": ""}, {"port": 0}, {"meter_id": None}]
    for bad in bad_fields:
        with pytest.raises((ConfigError, ValueError)):
            MqttSource(**{"host": "h", "port": 1883, "topic": "ams", "meter_id": "m", **bad})
    with pytest.raises(ValueError):
        MqttSource("h", 1883, "ams", "m", "domoticz")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=15,
)
ENVELOPE_KEYS = st.sampled_from(["t", "temp", "rssi", "data", "realtime", "P", "rt_h", "peaks", "version"])
DATA_KEYS = st.sampled_from(["P", "PO", "U1", "I2", "tPI", "PF3", "rtc", "meterId"])


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from([PayloadFormat.JSON, PayloadFormat.FLAT]))
def test_fuzz_garbled_documents_map_or_raise_payload_error(data: st.DataObject, fmt: PayloadFormat) -> None:
    document, _ = classic(make_device(4))
    if fmt is PayloadFormat.FLAT:
        document = flat(document)
    for key in data.draw(st.lists(ENVELOPE_KEYS, max_size=3)):
        document[key] = data.draw(JSON_VALUES)
    target = document.get("data") if fmt is PayloadFormat.JSON else document
    if isinstance(target, dict):
        for key in data.draw(st.lists(DATA_KEYS, max_size=3)):
            target[key] = data.draw(JSON_VALUES)
    body = json.dumps(document).encode()
    cut = data.draw(st.integers(min_value=0, max_value=len(body)))
    for payload in (body, body[:cut]):
        with contextlib.suppress(PayloadError):
            map_json(decode_json(payload), fmt, "ams", RECEIVED)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=30), st.dictionaries(st.sampled_from(["meter/clock", "meter/l1/voltage"]), st.floats())
)
def test_fuzz_raw_values_map_or_raise_payload_error(payload: bytes, numbers: dict[str, float]) -> None:
    with contextlib.suppress(PayloadError):
        parse_raw_number("meter/import/active", payload)
    with contextlib.suppress(PayloadError):
        map_raw(numbers, "ams", RECEIVED)


# --- the subscriber on the real broker ---------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "meterhub.db")
    store.add_meter(Meter("ams-house", "amsreader", phases=3, tz="Europe/Oslo", interval_s=10))
    yield store
    store.close()


def live_device() -> ReaderDevice:
    """A reader whose clock is now, so its readings pass ingest's future check."""
    return ReaderDevice(AmsReaderConfig(list_type=4), seed=5, speed=1.0)


@pytest.mark.mqtt
@pytest.mark.anyio
async def test_json_classic_messages_are_stored(broker: None, store: SQLiteStore) -> None:
    topic = unique_topic()
    source = MqttSource(BROKER_HOST, BROKER_PORT, topic, "ams-house", PayloadFormat.JSON)
    publisher = PublisherConfig(topic=topic, interval_s=1.0)
    async with MqttSubscriber(store, [source]) as subscriber:
        await subscriber.wait_subscribed()
        async with AmsPublisher(live_device(), publisher):
            await wait_until_async(lambda: subscriber.counters.readings_stored >= 8, "8 readings stored")
    counters = subscriber.counters
    assert counters.malformed == {} and counters.readings_rejected == 0
    latest = by_phase(store.latest(["ams-house"], phase=None))
    assert set(latest) == {0, 1, 2, 3}
    assert (latest[0].energy_import_kwh or 0) > 1000 and 200 < (latest[1].voltage_v or 0) < 260
    assert latest[0].power_w == pytest.approx(sum(latest[n].power_w or 0 for n in (1, 2, 3)), abs=3)
    temperatures = store.extras(
        "ams-house", "temperature_c", latest[0].ts, latest[0].ts + timedelta(seconds=1)
    )
    assert len(temperatures) == 1
    assert counters.snapshot()["extras_stored"] == counters.extras_stored > 0


@pytest.mark.mqtt
@pytest.mark.anyio
async def test_raw_values_of_a_round_become_one_reading(broker: None, store: SQLiteStore) -> None:
    topic = unique_topic()
    source = MqttSource(BROKER_HOST, BROKER_PORT, topic, "ams-house", PayloadFormat.RAW)
    publisher = PublisherConfig(topic=topic, interval_s=1.0)  # both formats: the JSON one is ignored
    # A window longer than the test: rounds are told apart only by a topic coming again, never
    # by how quickly a busy machine delivers one round's messages.
    async with MqttSubscriber(store, [source], raw_window_s=3600.0) as subscriber:
        await subscriber.wait_subscribed()
        async with AmsPublisher(live_device(), publisher) as running:
            await wait_until_async(lambda: subscriber.counters.readings_stored >= 12, "12 readings stored")
        rounds = running.published_count
        # the last round is whole before the subscriber stops and stores it
        await wait_until_async(lambda: subscriber.counters.messages >= rounds, "every published message")
    start, end = START, datetime.now(UTC) + timedelta(minutes=1)
    totals = list(store.iter_readings(["ams-house"], start, end, phase=0))
    assert 3 <= len(totals) <= rounds
    for total in totals:
        values = (total.power_w, total.reactive_power_var, total.energy_import_kwh, total.power_factor)
        assert None not in values  # values of separate topics were joined into one reading
    assert subscriber.counters.malformed == {}


@pytest.mark.mqtt
@pytest.mark.anyio
async def test_a_malformed_message_is_counted_logged_once_and_ingest_goes_on(
    broker: None, store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="meterhub.mqtt")
    topic = unique_topic()
    source = MqttSource(BROKER_HOST, BROKER_PORT, topic, "ams-house", PayloadFormat.JSON)
    async with MqttSubscriber(store, [source]) as subscriber:
        await subscriber.wait_subscribed()
        async with aiomqtt.Client(BROKER_HOST, BROKER_PORT) as client:
            for garbage in (b"{not json", b"[1, 2]", b'{"data": 5}'):
                await client.publish(topic, garbage)
        await wait_until_async(lambda: subscriber.counters.malformed[topic] == 3, "3 malformed messages")
        async with AmsPublisher(live_device(), PublisherConfig(topic=topic, interval_s=1.0)):
            await wait_until_async(lambda: subscriber.counters.readings_stored >= 4, "4 readings stored")
    assert subscriber.counters.malformed == {topic: 3}
    warnings = [record for record in caplog.records if "malformed MQTT message" in record.getMessage()]
    assert len(warnings) == 1 and topic in warnings[0].getMessage()


class DroppingProxy:
    """A TCP relay to the broker whose connections the test can cut, as a broker restart would."""

    def __init__(self) -> None:
        self.port = 0
        self._connections: list[anyio.CancelScope] = []

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host=BROKER_HOST, local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        task_status.started()
        async with listener:
            await listener.serve(self._relay)

    async def _relay(self, client: anyio.abc.SocketStream) -> None:
        with anyio.CancelScope() as scope:
            self._connections.append(scope)
            upstream = await anyio.connect_tcp(BROKER_HOST, BROKER_PORT)
            async with client, upstream, anyio.create_task_group() as pumps:
                pumps.start_soon(self._pump, client, upstream)
                pumps.start_soon(self._pump, upstream, client)

    @staticmethod
    async def _pump(source: anyio.abc.SocketStream, target: anyio.abc.SocketStream) -> None:
        async for chunk in source:
            await target.send(chunk)
        raise anyio.EndOfStream  # one side closed: end the whole relay

    def drop_all(self) -> None:
        for scope in self._connections:
            scope.cancel()
        self._connections.clear()


@pytest.mark.mqtt
@pytest.mark.anyio
async def test_ingest_resumes_after_the_broker_connection_drops(broker: None, store: SQLiteStore) -> None:
    proxy = DroppingProxy()
    topic = unique_topic()
    async with anyio.create_task_group() as tasks:
        await tasks.start(proxy.serve)
        source = MqttSource(BROKER_HOST, proxy.port, topic, "ams-house", PayloadFormat.JSON)
        subscriber = MqttSubscriber(store, [source], reconnect_min_s=0.1, reconnect_max_s=0.5)
        async with subscriber, AmsPublisher(live_device(), PublisherConfig(topic=topic, interval_s=1.0)):
            await subscriber.wait_subscribed()
            await wait_until_async(lambda: subscriber.counters.readings_stored >= 4, "4 readings stored")
            proxy.drop_all()
            await wait_until_async(lambda: subscriber.counters.connects >= 2, "a reconnection")
            stored_before = subscriber.counters.readings_stored
            await wait_until_async(
                lambda: subscriber.counters.readings_stored >= stored_before + 8, "8 readings after it"
            )
        tasks.cancel_scope.cancel()
    assert subscriber.counters.connection_failures >= 1


@pytest.mark.anyio
async def test_an_unreachable_broker_is_retried_with_backoff_and_stops_cleanly(store: SQLiteStore) -> None:
    source = MqttSource(BROKER_HOST, free_port(), unique_topic(), "ams-house", PayloadFormat.JSON)
    subscriber = MqttSubscriber(
        store, [source], reconnect_min_s=0.05, reconnect_max_s=0.2, connect_timeout_s=1
    )
    with anyio.fail_after(DEADLINE_S):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(subscriber.run)
            await wait_until_async(lambda: subscriber.counters.connection_failures >= 3, "3 failed connects")
            subscriber.stop()
    assert subscriber.counters.connects == 0


@pytest.mark.anyio
async def test_an_unset_credential_reference_fails_at_start(store: SQLiteStore) -> None:
    source = MqttSource(
        BROKER_HOST, 1883, unique_topic(), "ams-house", password_ref="env:METERHUB_TEST_UNSET_PW"
    )
    with pytest.raises(ConfigError, match="METERHUB_TEST_UNSET_PW"):
        await MqttSubscriber(store, [source]).run()
