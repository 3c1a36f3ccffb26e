"""An IT-grid Kaifa meter's list 2 over MQTT: its L2 voltage of 0 V is not a measurement.

The document is the JSON classic list-2 payload of the firmware's ``JsonMqttHandler`` filled
with the Kaifa frame ``test/payloads/kaifa/gh180-2.hex`` (see fixtures/amsreader/FIRMWARE_FRAMES.md):
I 12.056/5.754/13.412 A (printed with two decimals), U 239.2/0/239.7 V, P+ 4097 W, Q+ 195 var,
the reader's clock set to the frame's instant 2022-01-02 13:37:20Z (1641130640).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from meterhub.model import Meter, Reading
from meterhub.mqtt import MqttSource, MqttSubscriber, PayloadFormat
from meterhub.mqtt_mapping import map_home_assistant, map_json, map_raw
from meterhub.store.sqlite import SQLiteStore
from tests.mqttbroker import BROKER_HOST, BROKER_PORT, unique_topic
from tests.waiting import wait_until_async

METER = "ams-kaifa"
AT = datetime(2022, 1, 2, 13, 37, 20, tzinfo=UTC)
LIST2 = (
    '{"id":"48:27:E2:44:88:4A","name":"ams-kaifa","up":86400,"t":1641130640,"vcc":3.290,"rssi":-62,'
    '"temp":-127.00,"data":{"lv":"KFM_001","meterId":"6970631403275928","type":"MA304H3E","P":4097,'
    '"Q":195,"PO":0,"QO":0,"I1":12.06,"I2":5.75,"I3":13.41,"U1":239.20,"U2":0.00,"U3":239.70},'
    '"realtime":{"h":0.000,"d":0.00,"m":0.0,"t":5,"x":0.00,"he":0.000,"de":0.00,"me":0.0,'
    '"peaks":[0.00,0.00,0.00]}}'
)
EXPECTED = [
    Reading(METER, AT, 0, power_w=4097.0, reactive_power_var=195.0),
    Reading(METER, AT, 1, voltage_v=239.2, current_a=12.06),
    Reading(METER, AT, 2, current_a=5.75),
    Reading(METER, AT, 3, voltage_v=239.7, current_a=13.41),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "meterhub.db")
    store.add_meter(Meter(METER, "amsreader", phases=3, tz="Europe/Oslo", interval_s=10))
    yield store
    store.close()


@pytest.mark.mqtt
@pytest.mark.anyio
async def test_the_kaifa_list2_document_stores_no_l2_voltage(broker: None, store: SQLiteStore) -> None:
    topic = unique_topic()
    source = MqttSource(BROKER_HOST, BROKER_PORT, topic, METER, PayloadFormat.JSON)
    async with MqttSubscriber(store, [source]) as subscriber:
        await subscriber.wait_subscribed()
        async with aiomqtt.Client(BROKER_HOST, BROKER_PORT) as client:
            await client.publish(topic, LIST2, qos=1)
        await wait_until_async(lambda: subscriber.counters.readings_stored >= 4, "4 readings stored")
    assert subscriber.counters.malformed == {}
    stored = sorted(
        store.iter_readings([METER], datetime(2022, 1, 2, tzinfo=UTC), datetime(2022, 1, 3, tzinfo=UTC)),
        key=lambda reading: reading.phase,
    )
    assert stored == EXPECTED


def test_every_payload_format_drops_a_0_v_phase_voltage_only_while_current_flows() -> None:
    received = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)
    flat = {"id": "48:27", "t": 1641130640, "P": 4097, "U1": 239.2, "U2": 0.0, "I1": 12.06, "I2": 5.75}
    [_, l1, l2] = map_json(flat, PayloadFormat.FLAT, METER, received).readings
    assert (l1.voltage_v, l2.voltage_v, l2.current_a) == (239.2, None, 5.75)
    raw = {"meter/import/active": 4097.0, "meter/l2/voltage": 0.0, "meter/l2/current": 5.75}
    [_, l2] = map_raw(raw, METER, received).readings
    assert (l2.phase, l2.voltage_v, l2.current_a) == (2, None, 5.75)
    power = {"P": 4097, "U1": 239.2, "U2": 0.0, "I1": 12.06, "I2": 5.75, "t": "2022-01-02T13:37:20Z"}
    [_, l1, l2] = map_home_assistant("power", power, METER, received).readings
    assert (l1.voltage_v, l2.voltage_v, l2.ts) == (239.2, None, AT)
    # 0 V with 0 A on a phase is not the IT-grid case: that phase is only zeros, so absent;
    # a phase with voltage and no current keeps its 0 A.
    idle = json.loads(LIST2)
    idle["data"] |= {"I2": 0.0, "I3": 0.0}
    readings = map_json(idle, PayloadFormat.JSON, METER, received).readings
    assert [(r.phase, r.voltage_v, r.current_a) for r in readings] == [
        (0, None, None),
        (1, 239.2, 12.06),
        (3, 239.7, 0.0),
    ]
