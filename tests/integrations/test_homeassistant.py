"""Home Assistant MQTT discovery through the real Mosquitto: configs, states, birth, removal, serve.

A test client subscribes to the topics the publisher writes and checks every discovery config
against Home Assistant's documented schema (tests/integrations/hadocs.py), renders every
value_template against the state document as Home Assistant would, and follows the publisher
as readings arrive, meters go, Home Assistant restarts and the hub stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import paho.mqtt.client as paho
import pytest

from meterhub.errors import ConfigError
from meterhub.homeassistant.publisher import HomeAssistantPublisher
from meterhub.homeassistant.settings import HomeAssistantSettings, parse_homeassistant
from meterhub.model import Meter, Reading, utc_now
from meterhub.poller.config import parse_config
from meterhub.store import Store, open_store
from tests.backends import Backend
from tests.integrations import hadocs
from tests.mqttbroker import BROKER_HOST, BROKER_PORT, free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.mqtt


class Listener:
    """A plain MQTT client that records every message on the topics it subscribes to."""

    def __init__(self, *filters: str) -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *args: self._subscribed.set()
        self._client.connect(BROKER_HOST, BROKER_PORT)
        self._client.loop_start()
        self._client.subscribe([(topic_filter, 1) for topic_filter in filters])
        wait_until(self._subscribed.is_set, "the test client's subscription")

    def _on_message(self, client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload.decode(), bool(message.retain)))

    def latest(self) -> dict[str, str]:
        """Return the newest payload of every topic heard."""
        with self._lock:
            return {topic: payload for topic, payload, _ in self.messages}

    def count(self, topic: str) -> int:
        """Return how many messages came on ``topic``."""
        with self._lock:
            return sum(1 for heard, _, _ in self.messages if heard == topic)

    def publish(self, topic: str, payload: str, retain: bool = False) -> None:
        """Publish a message and wait until the broker has it."""
        self._client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(30)

    def close(self) -> None:
        """Disconnect."""
        self._client.loop_stop()
        self._client.disconnect()


def _settings(**overrides: Any) -> HomeAssistantSettings:
    tag = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "discovery_prefix": f"hatest-{tag}",
        "state_prefix": f"mhtest-{tag}",
        "interval_s": 0.1,
    }
    values.update(overrides)
    found = parse_homeassistant(values)
    assert found is not None
    return found


def _seed(store: Store) -> None:
    now = utc_now()
    store.add_meter(Meter("house", "iammeter", 3, "Europe/Oslo", 60, "House grid"))
    store.add_meter(Meter("garage.ev", "smartmac", 1, "Europe/Oslo", 60))
    ts = now - timedelta(seconds=20)
    store.write_readings(
        [
            Reading("house", ts, 0, power_w=1523.456, frequency_hz=50.02, energy_import_kwh=12345.6789,
                    energy_export_kwh=321.5),
            Reading("house", ts, 1, voltage_v=231.26, current_a=2.5, power_w=500.0),
            Reading("house", ts, 2, voltage_v=229.9, current_a=3.25, power_w=700.0),
            Reading("house", ts, 3, voltage_v=230.4, current_a=1.5, power_w=323.456),
            Reading("garage.ev", ts, 0, voltage_v=228.0, current_a=10.0, power_w=2280.0,
                    energy_import_kwh=88.125),
        ]
    )  # fmt: skip
    store.record_health("house", True, now)


@contextmanager
def running(store: Store, settings: HomeAssistantSettings) -> Iterator[HomeAssistantPublisher]:
    """Run a publisher on an event loop of its own until the block ends."""
    publisher = HomeAssistantPublisher(store, settings)
    with anyio.from_thread.start_blocking_portal() as portal:
        future = portal.start_task_soon(publisher.run)
        portal.call(publisher.wait_connected)
        try:
            yield publisher
        finally:
            portal.call(publisher.stop)
            future.result(timeout=60)


def _complete(heard: dict[str, str], settings: HomeAssistantSettings, count: int) -> bool:
    """Say whether ``count`` configs and every topic they name (state, availability) were heard."""
    configs = _configs(heard, settings)
    named = {config["state_topic"] for config in configs.values()} | {
        item["topic"] for config in configs.values() for item in config["availability"]
    }
    return len(configs) == count and named <= set(heard)


def _configs(heard: dict[str, str], settings: HomeAssistantSettings) -> dict[str, dict[str, Any]]:
    return {
        topic: json.loads(payload)
        for topic, payload in heard.items()
        if topic.startswith(settings.discovery_prefix + "/") and topic.endswith("/config") and payload
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A real SQLite store with a three-phase and a single-phase meter and their readings."""
    opened = open_store(f"sqlite:///{tmp_path / 'ha.db'}")
    _seed(opened)
    yield opened
    opened.close()


def test_discovery_and_state_follow_home_assistants_schema(broker: None, store: Store) -> None:
    settings = _settings()
    listener = Listener(f"{settings.discovery_prefix}/#", f"{settings.state_prefix}/#")
    try:
        with running(store, settings):
            wait_until(
                lambda: _complete(listener.latest(), settings, 21), "21 configs (15 + 6) and the states"
            )
            heard = listener.latest()
        configs = _configs(heard, settings)
        assert [
            problem
            for topic, config in configs.items()
            for problem in hadocs.problems(settings.discovery_prefix, topic, config)
        ] == []
        unique_ids = [config["unique_id"] for config in configs.values()]
        assert len(set(unique_ids)) == len(unique_ids)
        by_id = {config["unique_id"]: config for config in configs.values()}

        power = by_id["meterhub_house_power"]
        assert (power["device_class"], power["state_class"], power["unit_of_measurement"]) == (
            "power", "measurement", "W",
        )  # fmt: skip
        for key in ("energy_import", "energy_export"):
            energy = by_id[f"meterhub_house_{key}"]
            assert (energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) == (
                "energy", "total_increasing", "kWh",
            )  # fmt: skip
        for phase in (1, 2, 3):
            assert by_id[f"meterhub_house_voltage_l{phase}"]["device_class"] == "voltage"
            assert by_id[f"meterhub_house_current_l{phase}"]["unit_of_measurement"] == "A"
        online = by_id["meterhub_house_online"]
        assert online["device_class"] == "connectivity"
        assert f"/binary_sensor/{settings.node_id}/" in next(t for t, c in configs.items() if c is online)

        device = power["device"]
        assert device["manufacturer"] == "IAMMETER"
        assert device["name"] == "House grid"
        assert device["model"]
        assert all(c["device"]["identifiers"] == device["identifiers"] for c in configs.values()
                   if c["unique_id"].startswith("meterhub_house_"))  # fmt: skip
        garage = [c for c in configs.values() if c["device"]["manufacturer"] == "smart-MAC"]
        assert {c["device"]["name"] for c in garage} == {"garage.ev"}
        assert garage[0]["device"]["identifiers"] != device["identifiers"]
        # The garage meter reports no export register: it has no export entity.
        assert not any(c["unique_id"].endswith("_energy_export") for c in garage)

        expected = {
            "meterhub_house_power": "1523.5",
            "meterhub_house_power_l3": "323.5",
            "meterhub_house_energy_import": "12345.679",
            "meterhub_house_energy_export": "321.5",
            "meterhub_house_voltage_l1": "231.3",
            "meterhub_house_current_l2": "3.25",
            "meterhub_house_frequency": "50.02",
            "meterhub_house_online": "ON",
        }
        for unique_id, value in expected.items():
            config = by_id[unique_id]
            state = json.loads(heard[config["state_topic"]])
            assert hadocs.render(config["value_template"], state) == value, unique_id
        for config in configs.values():  # every template renders a number, a time or ON/OFF
            rendered = hadocs.render(config["value_template"], json.loads(heard[config["state_topic"]]))
            if config.get("device_class") == "timestamp":
                assert rendered.endswith("+00:00")
            elif "payload_on" in config:
                assert rendered in (config["payload_on"], config["payload_off"])
            else:
                float(rendered)
            for availability in config["availability"]:
                assert heard[availability["topic"]] == availability["payload_available"]
        assert heard[settings.status_topic] == "online"
    finally:
        listener.close()
    assert listener.latest()[settings.status_topic] == "offline"  # a stopped hub says so


def test_new_readings_are_published_only_when_they_change(broker: None, store: Store) -> None:
    settings = _settings()
    listener = Listener(f"{settings.state_prefix}/#", f"{settings.discovery_prefix}/#")
    state_topic = f"{settings.state_prefix}/house/state"
    try:
        with running(store, settings) as publisher:
            wait_until(lambda: state_topic in listener.latest(), "the house's state")
            first = listener.count(state_topic)
            rounds = publisher.counters.rounds
            wait_until(lambda: publisher.counters.rounds >= rounds + 5, "five rounds without a new reading")
            marker = f"{settings.state_prefix}/marker"
            listener.publish(marker, "after")
            wait_until(lambda: marker in listener.latest(), "the marker")
            assert listener.count(state_topic) == first  # nothing changed: nothing sent

            store.write_readings([Reading("house", utc_now(), 0, power_w=-800.0, energy_import_kwh=12346.0)])
            wait_until(
                lambda: json.loads(listener.latest()[state_topic])["power_w"] == -800.0, "the new reading"
            )
            state = json.loads(listener.latest()[state_topic])
            assert state["energy_import_kwh"] == 12346.0
            assert state["voltage_l1_v"] == 231.3  # the phases' newest values stay

            config_topic = f"{settings.discovery_prefix}/sensor/{settings.node_id}/house_power/config"
            assert listener.count(config_topic) == 1  # a new reading changes no config
            store.update_meter(Meter("house", "iammeter", 3, "Europe/Oslo", 60, "Main fuse"))
            wait_until(lambda: listener.count(config_topic) == 2, "the renamed meter's configs")
            assert json.loads(listener.latest()[config_topic])["device"]["name"] == "Main fuse"
    finally:
        listener.close()


def test_birth_message_republishes_discovery(broker: None, store: Store) -> None:
    settings = _settings()
    listener = Listener(f"{settings.discovery_prefix}/#")
    topic = f"{settings.discovery_prefix}/sensor/{settings.node_id}/house_power/config"
    try:
        with running(store, settings) as publisher:
            wait_until(lambda: listener.count(topic) == 1, "the first discovery config")
            listener.publish(settings.birth_topic, "online")
            wait_until(lambda: listener.count(topic) == 2, "discovery again after Home Assistant's birth")
            assert publisher.counters.births == 1
            listener.publish(settings.birth_topic, "offline")  # Home Assistant going away asks nothing
            rounds = publisher.counters.rounds
            wait_until(lambda: publisher.counters.rounds >= rounds + 3, "three more rounds")
            assert publisher.counters.births == 1
    finally:
        listener.close()


def test_removed_and_unlisted_meters_are_removed_from_home_assistant(broker: None, store: Store) -> None:
    settings = _settings(meters=["house", "garage*"])
    ghost = f"{settings.discovery_prefix}/sensor/{settings.node_id}/ghost_power/config"
    setup = Listener(f"{settings.discovery_prefix}/#")
    setup.publish(
        ghost, json.dumps({"state_topic": "x", "unique_id": "ghost"}), retain=True
    )  # an earlier run's
    setup.close()
    store.add_meter(Meter("flat", "umeter", 1, "Europe/Oslo", 60))
    store.write_readings([Reading("flat", utc_now(), 0, power_w=100.0)])
    listener = Listener(f"{settings.discovery_prefix}/#", f"{settings.state_prefix}/#")
    garage_power = f"{settings.discovery_prefix}/sensor/{settings.node_id}/garage_ev_"
    try:
        with running(store, settings):
            wait_until(lambda: listener.latest().get(ghost) == "", "the stale config removed")
            wait_until(
                lambda: any(t.startswith(garage_power) and p for t, p in listener.latest().items()),
                "the garage published",
            )
            assert not any("flat" in topic for topic in listener.latest())  # not listed: never published
            store.remove_meter("garage.ev")
            garage_state = f"{settings.state_prefix}/garage_ev_{_hash('garage.ev')}/state"
            wait_until(lambda: listener.latest().get(garage_state) == "", "the garage's state cleared last")
        heard = listener.latest()
        garage_topics = [t for t in heard if "garage_ev" in t]
        assert garage_topics and all(heard[t] == "" for t in garage_topics)
        assert any(t.endswith("/state") for t in garage_topics)  # its retained state cleared too
    finally:
        listener.close()
    after = Listener(f"{settings.discovery_prefix}/#")  # what a Home Assistant starting now would get
    try:
        after.publish(f"{settings.discovery_prefix}/marker", "m")
        wait_until(lambda: f"{settings.discovery_prefix}/marker" in after.latest(), "the marker")
        retained = {t for t, p, retain in after.messages if retain and p}
        assert retained and all("house_" in topic for topic in retained)
    finally:
        after.close()


def test_meter_going_offline_makes_its_sensors_unavailable(broker: None, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'off.db'}")
    try:
        store.add_meter(Meter("pv", "file", 1, "UTC", 60))
        store.write_readings([Reading("pv", utc_now() - timedelta(seconds=30), 0, power_w=-2000.0)])
        settings = _settings()
        listener = Listener(f"{settings.state_prefix}/#")
        availability = f"{settings.state_prefix}/pv/availability"
        try:
            with running(store, settings):
                wait_until(lambda: listener.latest().get(availability) == "online", "pv online")
                store.record_health("pv", False, utc_now(), "device did not answer")
                state_topic = f"{settings.state_prefix}/pv/state"
                wait_until(
                    lambda: json.loads(listener.latest()[state_topic])["online"] is False,
                    "pv's state offline",
                )
                # The state goes out after the availability in one round: both are offline now.
                assert listener.latest()[availability] == "offline"
        finally:
            listener.close()
    finally:
        store.close()


def test_a_missing_secret_waits_without_stopping_the_hub(
    broker: None, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    variable = f"HA_TEST_PW_{uuid.uuid4().hex[:8].upper()}"
    settings = _settings(password_ref=f"env:{variable}")
    publisher = HomeAssistantPublisher(store, settings, reconnect_min_s=0.05, reconnect_max_s=0.2)
    listener = Listener(f"{settings.state_prefix}/#")
    try:
        with anyio.from_thread.start_blocking_portal() as portal:
            future = portal.start_task_soon(publisher.run)
            wait_until(lambda: publisher.counters.secret_waits >= 2, "two tries without the secret")
            assert not future.done() and publisher.counters.connects == 0
            monkeypatch.setenv(variable, "any-password")  # the operator sets it; no restart needed
            portal.call(publisher.wait_connected)
            wait_until(lambda: listener.latest().get(settings.status_topic) == "online", "the hub online")
            portal.call(publisher.stop)
            future.result(timeout=60)
    finally:
        listener.close()


class Proxy:
    """A loopback TCP relay to Mosquitto whose connections a test can cut, as a network would."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                inbound, _ = self._server.accept()
            except OSError:
                return
            outbound = socket.create_connection((BROKER_HOST, BROKER_PORT))
            with self._lock:
                self._sockets += [inbound, outbound]
            threading.Thread(target=self._pump, args=(inbound, outbound), daemon=True).start()
            threading.Thread(target=self._pump, args=(outbound, inbound), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for each in (source, target):
            with contextlib.suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Break every connection relayed so far."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for each in sockets:
            with contextlib.suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)
            each.close()

    def close(self) -> None:
        """Stop relaying."""
        self._server.close()
        self.cut()


def test_a_lost_broker_is_reconnected_and_the_last_will_says_offline(broker: None, store: Store) -> None:
    proxy = Proxy()
    settings = _settings(broker=f"mqtt://127.0.0.1:{proxy.port}")
    publisher = HomeAssistantPublisher(store, settings, reconnect_min_s=0.05, reconnect_max_s=0.2)
    listener = Listener(settings.status_topic)
    try:
        with anyio.from_thread.start_blocking_portal() as portal:
            future = portal.start_task_soon(publisher.run)
            portal.call(publisher.wait_connected)
            wait_until(lambda: listener.count(settings.status_topic) == 1, "the hub online")
            proxy.cut()
            wait_until(lambda: listener.count(settings.status_topic) >= 3, "offline (the will), then online")
            statuses = [p for t, p, _ in listener.messages if t == settings.status_topic]
            assert statuses[:3] == ["online", "offline", "online"]
            assert publisher.counters.connects == 2 and publisher.counters.connection_failures >= 1
            portal.call(publisher.stop)
            future.result(timeout=60)
    finally:
        listener.close()
        proxy.close()


def test_one_worker_publishes_and_another_takes_over(broker: None, backend: Backend) -> None:
    store = backend.open()
    _seed(store)
    settings = _settings()
    first = HomeAssistantPublisher(store, settings, worker="worker-a", lease_s=2.0)
    second = HomeAssistantPublisher(store, settings, worker="worker-b", lease_s=2.0)
    listener = Listener(settings.status_topic)
    try:
        with anyio.from_thread.start_blocking_portal() as portal:
            running_first = portal.start_task_soon(first.run)
            portal.call(first.wait_connected)
            running_second = portal.start_task_soon(second.run)
            wait_until(lambda: second.counters.standby >= 2, "the second worker standing by")
            assert second.counters.connects == 0
            portal.call(first.stop)  # gives the lease back
            running_first.result(timeout=60)
            portal.call(second.wait_connected)
            wait_until(lambda: listener.latest().get(settings.status_topic) == "online", "online again")
            statuses = [p for t, p, _ in listener.messages if t == settings.status_topic]
            assert statuses == ["online", "offline", "online"]
            portal.call(second.stop)
            running_second.result(timeout=60)
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"broker": "mqtt://user:pw@host:1883"}, "must not hold credentials"),
        ({"broker": "http://host"}, "mqtt://host:1883"),
        ({"password_ref": "hunter2"}, "must be a reference like env:VARIABLE_NAME"),
        ({"discovery_prefix": "home/+"}, "no wildcards"),
        ({"meters": []}, "list of meter ids"),
        ({"node_id": "a/b"}, "node_id"),
        ({"interval_s": 0}, "interval_s"),
        ({"colour": "blue"}, "unknown [homeassistant] setting(s) colour"),
    ],
)
def test_bad_settings_are_refused_with_one_line(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"homeassistant": table})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert "hunter2" not in str(caught.value) and "pw@" not in str(caught.value)


def test_config_section_is_read() -> None:
    config = parse_config(
        {"homeassistant": {"broker": "mqtts://broker.lan", "password_ref": "env:MQTT_PW", "meters": "house*"}}
    )
    assert config.homeassistant is not None
    assert (config.homeassistant.host, config.homeassistant.port, config.homeassistant.tls) == (
        "broker.lan", 8883, True,
    )  # fmt: skip
    assert config.homeassistant.publishes("house-2") and not config.homeassistant.publishes("flat")
    assert parse_config({}).homeassistant is None


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meterhub", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_show_publish_once_and_unpublish(broker: None, store: Store, tmp_path: Path) -> None:
    settings = _settings()
    config = tmp_path / "meterhub.toml"
    config.write_text(
        "[homeassistant]\n"
        f'broker = "mqtt://{BROKER_HOST}:{BROKER_PORT}"\n'
        f'discovery_prefix = "{settings.discovery_prefix}"\n'
        f'state_prefix = "{settings.state_prefix}"\n'
        'password_ref = "env:HA_TEST_MQTT_PASSWORD"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "METERHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'ha.db'}"}
    missing = _cli("homeassistant", "publish", "--once", "--config", str(config), env=env)
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: ") and "HA_TEST_MQTT_PASSWORD" in missing.stderr
    env["HA_TEST_MQTT_PASSWORD"] = "not-checked-by-this-broker"

    shown = _cli("homeassistant", "show", "--config", str(config), "--format", "json", env=env)
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    house = {row["unique_id"]: row for row in rows if row["meter"] == "house"}
    assert house["meterhub_house_energy_import"]["state_class"] == "total_increasing"
    assert house["meterhub_house_power"]["value"] == 1523.5

    unknown = _cli("homeassistant", "show", "--config", str(config), "--meter", "nosuch", env=env)
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: ") and "nosuch" in unknown.stderr
    bare = tmp_path / "bare.toml"
    bare.write_text("[poller]\nbackoff_cap_s = 60\n", encoding="utf-8")
    sectionless = _cli("homeassistant", "publish", "--once", "--config", str(bare), env=env)
    assert sectionless.returncode == 1
    assert sectionless.stderr == f"error: {bare} has no [homeassistant] section; add one with at least " + (
        'broker = "mqtt://HOST:1883" (see the README, Home Assistant)\n'
    )

    listener = Listener(f"{settings.discovery_prefix}/#", f"{settings.state_prefix}/#")
    try:
        done = _cli("homeassistant", "publish", "--once", "--config", str(config), env=env)
        assert done.returncode == 0, done.stderr
        assert "for 2 meters" in done.stdout
        assert "not-checked-by-this-broker" not in done.stdout + done.stderr
        wait_until(
            lambda: _complete(listener.latest(), settings, 21), "the configs and states of both meters"
        )
        gone = _cli("homeassistant", "unpublish", "--config", str(config), env=env)
        assert gone.returncode == 0, gone.stderr
        wait_until(lambda: _configs(listener.latest(), settings) == {}, "every config removed")
    finally:
        listener.close()

    port = free_port()
    config.write_text(f'[homeassistant]\nbroker = "mqtt://{BROKER_HOST}:{port}"\n', encoding="utf-8")
    down = _cli("homeassistant", "publish", "--once", "--config", str(config), env=env)
    assert down.returncode == 1
    assert down.stderr.startswith(f"error: cannot publish to the MQTT broker at {BROKER_HOST}:{port}")
    assert "Traceback" not in down.stderr


def test_serve_publishes_to_home_assistant(broker: None, store: Store, tmp_path: Path) -> None:
    settings = _settings()
    config = tmp_path / "meterhub.toml"
    config.write_text(
        "[homeassistant]\n"
        f'discovery_prefix = "{settings.discovery_prefix}"\n'
        f'state_prefix = "{settings.state_prefix}"\n'
        'meters = ["garage*"]\n'
        "interval_s = 0.2\n",
        encoding="utf-8",
    )
    env = {**os.environ, "METERHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'ha.db'}"}
    listener = Listener(f"{settings.discovery_prefix}/#", f"{settings.state_prefix}/#")
    hub = subprocess.Popen(
        [sys.executable, "-m", "meterhub", "serve", "--port", str(free_port()), "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    state_topic = f"{settings.state_prefix}/garage_ev_{_hash('garage.ev')}/state"
    try:
        wait_until(lambda: state_topic in listener.latest() or hub.poll() is not None, "the garage's state")
        if hub.poll() is not None:
            pytest.fail(f"meterhub serve ended early: {hub.communicate(timeout=60)[1]}")
        assert json.loads(listener.latest()[state_topic])["power_w"] == 2280.0
        assert listener.latest()[settings.status_topic] == "online"
        assert not any("/house" in topic for topic in listener.latest())
        store.write_readings([Reading("garage.ev", utc_now(), 0, power_w=3680.0)])
        wait_until(lambda: json.loads(listener.latest()[state_topic])["power_w"] == 3680.0, "the new reading")
    finally:
        hub.terminate()
        _, errors = hub.communicate(timeout=60)
        listener.close()
    assert hub.returncode == 0, errors
    assert listener.latest()[settings.status_topic] == "offline"


def _hash(meter_id: str) -> str:
    import hashlib

    return hashlib.sha256(meter_id.encode()).hexdigest()[:6]
