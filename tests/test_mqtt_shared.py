"""Three workers on one PostgreSQL database and the real Mosquitto: each MQTT message stored once.

JSON classic and flat sources share one MQTT v5 subscription group, so the broker hands each
message to one worker; raw, Home Assistant and Domoticz sources are assembled by every worker.
Either way each reading is one row, with or without the device's time, and a message delivered
twice (a QoS 1 retransmission) is stored once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import anyio
import pytest

from meterhub.errors import ConfigError
from meterhub.model import Extra, Meter, Reading
from meterhub.mqtt import MqttSource, MqttSubscriber, PayloadFormat
from meterhub.poller.config import parse_config
from meterhub.store.base import Store
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.amsreader.device import AmsReaderConfig, ReaderDevice
from meterhub.vendors.amsreader.mqttpayloads import (
    domoticz_messages,
    home_assistant_messages,
    json_classic,
    raw_messages,
)
from tests.backends import Backend
from tests.mqttbroker import BROKER_HOST, BROKER_PORT, unique_topic
from tests.waiting import DEADLINE_S, wait_until_async

WORKERS = 3
ROUNDS = 6
IDX = {"elidx": 12, "vl1idx": 13, "vl2idx": 14, "vl3idx": 15, "cl1idx": 16}
RAW_TIMES = ("meter/dlms/timestamp", "meter/clock")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[Backend]:
    """A fresh schema of the test PostgreSQL; each worker opens a store of its own on it."""
    place = Backend("postgres", tmp_path)
    try:
        yield place
    finally:
        place.close()


def flat(document: dict[str, Any]) -> dict[str, Any]:
    """Turn a JSON classic document into the reader's JSON flat form."""
    envelope = {key: value for key, value in document.items() if key not in ("data", "realtime")}
    realtime = {f"rt_{key}": value for key, value in document["realtime"].items() if key != "peaks"}
    return {**envelope, **document["data"], **realtime, "peaks": document["realtime"]["peaks"]}


@dataclass
class Feed:
    """One simulated reader publishing in one format, with or without its clock."""

    meter: str
    fmt: PayloadFormat
    timed: bool
    topic: str
    device: ReaderDevice

    @property
    def shared(self) -> bool:
        return self.fmt in (PayloadFormat.JSON, PayloadFormat.FLAT)

    def source(self) -> MqttSource:
        extra: dict[str, Any] = {"domoticz": IDX} if self.fmt is PayloadFormat.DOMOTICZ else {}
        return MqttSource(BROKER_HOST, BROKER_PORT, self.topic, self.meter, self.fmt, **extra)

    def messages(self, at: datetime) -> list[tuple[str, str]]:
        """Return what the reader publishes at ``at``; without its clock when not timed."""
        snapshot = self.device.snapshot(at)
        if self.fmt in (PayloadFormat.JSON, PayloadFormat.FLAT):
            document = json.loads(json.dumps(json_classic(self.device, snapshot)))
            if not self.timed:
                document["t"] = int((at - self.device.config.start).total_seconds())  # since boot
            return [(self.topic, json.dumps(document if self.fmt is PayloadFormat.JSON else flat(document)))]
        if self.fmt is PayloadFormat.RAW:
            sent = raw_messages(self.device, snapshot, self.topic)
            if not self.timed:
                sent = [(topic, text) for topic, text in sent if not topic.endswith(RAW_TIMES)]
            return sent
        if self.fmt is PayloadFormat.HOME_ASSISTANT:
            sent = home_assistant_messages(self.device, snapshot, self.topic)
            if not self.timed:
                sent = [(topic, json.dumps({**json.loads(text), "t": None})) for topic, text in sent]
            return sent
        return domoticz_messages(self.device, snapshot, self.topic, IDX)


def feeds(start: datetime) -> list[Feed]:
    """Every format the hub ingests, with and without the device's time (Domoticz has none)."""
    made = []
    for fmt in PayloadFormat:
        for timed in (True, False):
            if fmt is PayloadFormat.DOMOTICZ and timed:
                continue
            config = AmsReaderConfig(start=start, list_type=2, ntp=timed)
            device = ReaderDevice(config, seed=len(made) + 3, speed=0.0)
            name = f"{fmt.value}-{'timed' if timed else 'untimed'}"
            made.append(Feed(name, fmt, timed, unique_topic(), device))
    return made


def rows(store: Store, meter: str) -> list[Reading]:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    return list(store.iter_readings([meter], start, datetime.now(UTC) + timedelta(hours=1)))


def extras(store: Store, meter: str, name: str) -> list[Extra]:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    return store.extras(meter, name, start, datetime.now(UTC) + timedelta(hours=1))


async def pause_past_a_millisecond() -> None:
    """Let the clock pass a millisecond: stored times have millisecond resolution."""
    before = datetime.now(UTC)
    await wait_until_async(lambda: datetime.now(UTC) - before > timedelta(milliseconds=2), "2 ms")


@pytest.mark.mqtt
@pytest.mark.postgres
@pytest.mark.anyio
async def test_three_workers_store_every_message_of_every_format_once(
    broker: None, postgres: Backend
) -> None:
    start = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    sources = feeds(start)
    stores = [postgres.open() for _ in range(WORKERS)]
    for feed in sources:
        stores[0].add_meter(Meter(feed.meter, "amsreader", phases=3, tz="Europe/Oslo", interval_s=10))
    instants = [start + timedelta(seconds=10 * k) for k in range(ROUNDS)]
    plan = [[message for feed in sources for message in feed.messages(at)] for at in instants]
    shared_topics = {feed.topic for feed in sources if feed.shared}
    async with AsyncExitStack() as stack:
        workers = [
            await stack.enter_async_context(
                MqttSubscriber(store, [feed.source() for feed in sources], raw_window_s=3600.0)
            )
            for store in stores
        ]
        for worker in workers:
            await worker.wait_subscribed()
        expected = 0
        async with aiomqtt.Client(BROKER_HOST, BROKER_PORT) as client:
            for sent in plan:
                for topic, payload in sent:
                    await client.publish(topic, payload, qos=1)
                expected += sum(1 if topic in shared_topics else WORKERS for topic, _ in sent)
                # every worker has every message of this round before the next is published
                await wait_until_async(
                    lambda total=expected: sum(worker.counters.messages for worker in workers) >= total,
                    "the round",
                )
                await pause_past_a_millisecond()
    shared_sent = sum(1 for sent in plan for topic, _ in sent if topic in shared_topics)
    plain_sent = sum(len(sent) for sent in plan) - shared_sent
    assert sum(worker.counters.messages for worker in workers) == shared_sent + WORKERS * plain_sent
    for worker in workers:  # the group spread the shared messages over every worker
        assert worker.counters.messages > plain_sent, worker.counters.snapshot()
        assert worker.counters.malformed == {} and worker.counters.readings_rejected == 0

    check = stores[0]
    for feed in sources:
        stored = rows(check, feed.meter)
        times = sorted({reading.ts for reading in stored})
        assert len(times) == ROUNDS, (feed.meter, times)
        phases = {reading.phase for reading in stored}
        assert phases == {0, 1, 2, 3}, feed.meter
        assert check.count_readings(feed.meter) == len(stored) == ROUNDS * len(phases), feed.meter
        if feed.timed:
            assert times == instants, feed.meter
        else:
            assert times[0] > instants[-1], feed.meter  # stamped on receipt, not by a clock
        first_phase = [reading for reading in stored if reading.phase == 1]
        assert all(reading.voltage_v is not None for reading in first_phase), feed.meter
        if feed.shared:
            assert len(extras(check, feed.meter, "temperature_c")) == ROUNDS, feed.meter
    # Each copy of an untimed round or document another worker assembled or stored first is a
    # redelivery; one a worker assembles again from a late message of its round may count twice,
    # and the rows above show none of them was stored twice.
    per_round = 1 + 2 + 1  # raw round, Home Assistant power and realtime, Domoticz round
    redeliveries = sum(worker.counters.redeliveries for worker in workers)
    assert (WORKERS - 1) * per_round * ROUNDS <= redeliveries <= WORKERS * per_round * ROUNDS


@pytest.mark.mqtt
@pytest.mark.postgres
@pytest.mark.anyio
async def test_a_message_delivered_twice_is_stored_once(broker: None, postgres: Backend) -> None:
    start = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    json_feed = Feed(
        "house",
        PayloadFormat.JSON,
        False,
        unique_topic(),
        ReaderDevice(AmsReaderConfig(start=start, list_type=2, ntp=False), seed=7, speed=0.0),
    )
    stores = [postgres.open() for _ in range(WORKERS)]
    stores[0].add_meter(Meter("house", "amsreader", phases=3, tz="Europe/Oslo", interval_s=10))
    ((topic, payload),) = json_feed.messages(start + timedelta(seconds=30))
    async with AsyncExitStack() as stack:
        workers = [
            await stack.enter_async_context(MqttSubscriber(store, [json_feed.source()])) for store in stores
        ]
        for worker in workers:
            await worker.wait_subscribed()
        async with aiomqtt.Client(BROKER_HOST, BROKER_PORT) as client:
            # What a publisher does when the broker's acknowledgement was lost: send it again.
            await client.publish(topic, payload, qos=1)
            await wait_until_async(lambda: sum(w.counters.readings_stored for w in workers) > 0, "stored")
            await client.publish(topic, payload, qos=1)
            await wait_until_async(lambda: sum(w.counters.messages for w in workers) == 2, "both copies")
        await wait_until_async(
            lambda: (
                sum(w.counters.readings_duplicate for w in workers)
                == sum(w.counters.readings_stored for w in workers)
            ),
            "the copy's readings",
        )
    handled = sorted(worker.counters.messages for worker in workers)
    assert handled == [0, 1, 1]  # the group gave the copy to another worker
    assert sum(worker.counters.redeliveries for worker in workers) == 1
    stored = rows(stores[0], "house")
    assert len(stored) == 4 and len({reading.ts for reading in stored}) == 1
    assert len(extras(stores[0], "house", "temperature_c")) == 1


def test_groups_are_configured_per_source() -> None:
    def source(**table: Any) -> MqttSource:
        config = parse_config({"mqtt": [{"topic": "ams/house", "meter_id": "house", **table}]})
        return config.mqtt[0]

    assert source().subscription == "$share/meterhub/ams/house/#"
    assert source(group="hub-eu").subscription == "$share/hub-eu/ams/house/#"
    assert source(group="").subscription == "ams/house/#"  # one process: a plain subscription
    assert source(format="flat").window_s == 600.0 and source(dedupe_window_s=30).window_s == 30.0
    raw = source(format="raw")
    assert raw.group == "" and raw.subscription == "ams/house/#" and raw.window_s == 5.0
    problems = {
        "group": [{"group": "a/b"}, {"group": "a+"}, {"group": 5}, {"format": "raw", "group": "g"}],
        "dedupe_window_s": [{"dedupe_window_s": 0}, {"dedupe_window_s": "1"}, {"dedupe_window_s": True}],
    }
    for field, tables in problems.items():
        for table in tables:
            with pytest.raises(ConfigError, match=rf"mqtt\[0\].*(group|{field})"):
                source(**table)


@pytest.mark.mqtt
@pytest.mark.postgres
@pytest.mark.anyio
async def test_when_a_worker_leaves_the_group_the_others_take_every_later_message(
    broker: None, postgres: Backend
) -> None:
    start = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    device = ReaderDevice(AmsReaderConfig(start=start, list_type=2), seed=11, speed=0.0)
    feed = Feed("house", PayloadFormat.JSON, True, unique_topic(), device)
    stores = [postgres.open() for _ in range(WORKERS)]
    stores[0].add_meter(Meter("house", "amsreader", phases=3, tz="Europe/Oslo", interval_s=10))
    batches = [
        [feed.messages(start + timedelta(seconds=10 * (k + 9 * n)))[0] for k in range(9)] for n in (0, 1)
    ]
    async with AsyncExitStack() as stack:
        staying = [
            await stack.enter_async_context(MqttSubscriber(store, [feed.source()])) for store in stores[1:]
        ]
        async with aiomqtt.Client(BROKER_HOST, BROKER_PORT) as client:
            async with MqttSubscriber(stores[0], [feed.source()]) as leaving:
                for worker in (leaving, *staying):
                    await worker.wait_subscribed()
                for topic, payload in batches[0]:
                    await client.publish(topic, payload, qos=1)
                await wait_until_async(
                    lambda: sum(w.counters.messages for w in (leaving, *staying)) == 9, "the first batch"
                )
            # The leaving worker has disconnected: the broker deals every later message to the rest.
            for topic, payload in batches[1]:
                await client.publish(topic, payload, qos=1)
            await wait_until_async(
                lambda: sum(w.counters.messages for w in staying) + leaving.counters.messages == 18,
                "the second batch",
            )
        await wait_until_async(
            lambda: sum(w.counters.readings_stored for w in (leaving, *staying)) == 18 * 4, "every reading"
        )
    assert leaving.counters.messages > 0 and all(w.counters.messages > 0 for w in staying)
    stored = rows(stores[1], "house")
    assert len(stored) == 18 * 4 and len({reading.ts for reading in stored}) == 18


@pytest.mark.anyio
async def test_a_broker_without_mqtt_v5_is_named_with_the_way_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="meterhub.mqtt")

    async def refuse_v5(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)  # the CONNECT
        writer.write(b"\x20\x02\x00\x01")  # an MQTT 3.1.1 broker: unacceptable protocol version
        await writer.drain()
        writer.close()

    old_broker = await asyncio.start_server(refuse_v5, BROKER_HOST, 0)
    port = old_broker.sockets[0].getsockname()[1]
    store = SQLiteStore(tmp_path / "meterhub.db")
    source = MqttSource(BROKER_HOST, port, unique_topic(), "house", PayloadFormat.JSON)
    subscriber = MqttSubscriber(store, [source], reconnect_min_s=0.05, reconnect_max_s=0.2)
    try:
        with anyio.fail_after(DEADLINE_S):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(subscriber.run)
                await wait_until_async(lambda: subscriber.counters.connection_failures >= 3, "3 refusals")
                subscriber.stop()
    finally:
        old_broker.close()
        store.close()
    warnings = [record.getMessage() for record in caplog.records if "MQTT v5" in record.getMessage()]
    assert len(warnings) == 1 and f"{BROKER_HOST}:{port}" in warnings[0] and 'group = ""' in warnings[0]
