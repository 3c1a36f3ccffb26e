"""One bad MQTT message costs only its own readings: the messages around it are stored."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest

from meterhub.model import Meter, Reading
from meterhub.mqtt import MqttSource, MqttSubscriber, PayloadFormat
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.base import Fetched
from tests.mqttbroker import BROKER_HOST, BROKER_PORT, unique_topic
from tests.waiting import wait_until_async

FAR_T = 1_577_836_801
"""2020-01-01T00:00:01Z: a set clock, accepted, and years before the other readings."""
BEYOND_T = 4_102_444_800
"""2100-01-01T00:00:00Z: no plausible time."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "meterhub.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(db_path)
    store.add_meter(Meter("ams-house", "amsreader", interval_s=10))
    yield store
    store.close()


def document(t: int, power_w: float, import_kwh: float) -> bytes:
    return json.dumps({"t": t, "data": {"P": power_w, "tPI": import_kwh}}).encode()


def rollup_rows(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        return int(conn.execute("SELECT count(*) FROM rollup_15m").fetchone()[0])


@pytest.mark.mqtt
@pytest.mark.anyio
async def test_bad_messages_between_good_ones_cost_nothing_else(
    broker: None, store: SQLiteStore, db_path: Path
) -> None:
    topic = unique_topic()
    now_s = int(time.time())
    good = [document(FAR_T, 500.0, 999.0), document(now_s - 3, 500.0, 1000.0)]
    good += [document(now_s - 2, 600.0, 1000.01), document(now_s - 1, 700.0, 1000.02)]
    bad = [
        document(now_s - 10, 1.0, 1e300),  # a register no meter has: SQLite cannot encode it
        document(now_s - 11, 1.0, -1e300),
        document(BEYOND_T, 500.0, 999.0),  # from 2100 on: the mapping calls it malformed
    ]
    source = MqttSource(BROKER_HOST, BROKER_PORT, topic, "ams-house", PayloadFormat.JSON)
    async with MqttSubscriber(store, [source]) as subscriber:
        await subscriber.wait_subscribed()
        async with aiomqtt.Client(BROKER_HOST, BROKER_PORT) as client:
            for payload in (good[0], bad[0], good[1], bad[1], good[2], bad[2], good[3]):
                await client.publish(topic, payload, qos=1)
        counters = subscriber.counters
        await wait_until_async(
            lambda: counters.readings_stored + counters.readings_rejected + counters.malformed[topic] >= 7,
            "7 messages handled",
        )
    assert (counters.readings_stored, counters.readings_rejected, counters.write_errors) == (4, 2, 0)
    assert counters.malformed == {topic: 1}
    start = datetime(2020, 1, 1, tzinfo=UTC) - timedelta(days=1)
    kept = list(store.iter_readings(["ams-house"], start, datetime.now(UTC), phase=0))
    assert [r.energy_import_kwh for r in kept] == [999.0, 1000.0, 1000.01, 1000.02]
    assert kept[0].ts == datetime(2020, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert rollup_rows(db_path) <= 4  # the reading of 2020 costs one bucket, not years of them


@pytest.mark.anyio
async def test_a_failing_batch_is_written_again_message_by_message(store: SQLiteStore) -> None:
    # Batches form by arrival timing over the network, so this drives one batch directly.
    store.add_meter(Meter("gone", "amsreader", interval_s=10))
    source = MqttSource(BROKER_HOST, BROKER_PORT, unique_topic(), "ams-house", PayloadFormat.JSON)
    subscriber = MqttSubscriber(store, [source])
    t0 = datetime.now(UTC) - timedelta(minutes=1)

    def message(meter_id: str, seconds: int) -> Fetched:
        return Fetched(readings=[Reading(meter_id, t0 + timedelta(seconds=seconds), power_w=5.0)])

    await subscriber._write([message("ams-house", 0), message("gone", 0)])
    assert subscriber.counters.readings_stored == 2  # the ingestor now knows both meters
    store.remove_meter("gone")  # meanwhile: the store now refuses the whole batch naming it
    await subscriber._write([message("ams-house", 10), message("gone", 10), message("ams-house", 20)])
    assert subscriber.counters.readings_stored == 4
    assert subscriber.counters.write_errors == 1
    assert store.count_readings("ams-house") == 3
