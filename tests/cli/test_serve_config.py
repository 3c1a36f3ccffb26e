"""``meterhub serve --config meterhub.toml``: declared meters polled, MQTT ingested, clean stop.

The hub runs as a real subprocess on a free port against a real SQLite file; the IAMMETER
simulator answers over loopback HTTP and the AMS reader simulator publishes to the machine's
Mosquitto (127.0.0.1:1883), which CI must provide.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from meterhub.errors import ConfigError
from meterhub.poller.config import load_config, parse_config
from meterhub.store import open_store
from meterhub.vendors.amsreader.device import AmsReaderConfig, ReaderDevice
from meterhub.vendors.amsreader.publisher import AmsPublisher, PayloadFormat, PublisherConfig
from tests.cli.conftest import Run
from tests.mqttbroker import free_port, require_broker
from tests.simservers import simulator
from tests.waiting import wait_until


@contextmanager
def publishing(topic: str) -> Iterator[None]:
    """Publish a simulated AMS reader's JSON every second in a background thread."""
    device = ReaderDevice(AmsReaderConfig(list_type=4), seed=3, speed=1.0)
    config = PublisherConfig(topic=topic, interval_s=1.0, formats=(PayloadFormat.JSON,))
    publisher = AmsPublisher(device, config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(publisher.run(),), daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(publisher.stop)
        thread.join(10)
        loop.close()


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def has_readings(db_url: str, meter_id: str) -> bool:
    store = open_store(db_url)
    try:
        return store.count_readings(meter_id) > 0
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.mqtt
def test_serve_polls_declared_meters_ingests_mqtt_and_stops_cleanly(tmp_path: Path) -> None:
    require_broker()
    topic = f"meterhub-test/{uuid.uuid4().hex[:8]}"
    db_url = f"sqlite:///{tmp_path / 'hub.db'}"
    port = free_port()
    with simulator("iammeter") as iam:
        info = iam.info()
        config = tmp_path / "meterhub.toml"
        config.write_text(
            f"""
[poller]
startup_spread_s = 1

[[meters]]
id = "iam"
vendor = "iammeter"
tz = "{info["tz"]}"
interval_s = 300

[meters.options]
base_url = "{iam.base_url}"
sn = "{info["meters"][0]["sn"]}"
username = "test"
password = "env:T_IAM_PASSWORD"

[[meters]]
id = "ams"
vendor = "amsreader"
phases = 3
tz = "Europe/Oslo"
interval_s = 10

[[mqtt]]
topic = "{topic}"
meter_id = "ams"
format = "json"
"""
        )
        env = {**os.environ, "T_IAM_PASSWORD": info["password"]}
        command = [sys.executable, "-m", "meterhub", "--database-url", db_url, "serve"]
        hub = subprocess.Popen(
            [*command, "--config", str(config), "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: healthy(port), "/healthz to answer")
            wait_until(lambda: has_readings(db_url, "iam"), "polled IAMMETER readings")
            with publishing(topic):
                wait_until(lambda: has_readings(db_url, "ams"), "MQTT readings")
            calls = iam.calls()
        finally:
            hub.send_signal(signal.SIGTERM)
            out, err = hub.communicate(timeout=120)
    assert hub.returncode == 0, err
    assert "from " in out and "2 meters, 1 MQTT sources" in out
    assert out.rstrip().endswith("meterhub stopped")
    tries = out.split("Try, in another shell (each line works as printed):\n", 1)[1].split("Stop with", 1)[0]
    lines = [line.strip() for line in tries.splitlines()]
    assert lines[0] == f"cd {os.getcwd()}" and "|" not in tries
    environment = {name: value for name, value in os.environ.items() if not name.startswith("METERHUB_")}
    for line in lines[1:]:  # as printed, in a new shell elsewhere, against the stopped hub's database
        shell = subprocess.run(["bash", "-c", f"{lines[0]} && {line}"], cwd="/", env=environment,
                               capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert shell.returncode == 0 and shell.stdout.strip(), (line, shell.stderr)
    assert any(line.endswith(f"--database-url {db_url} meters list") for line in lines)
    assert info["password"] not in out + err
    assert calls["/api/v1/user/login"] == 1


def test_a_literal_secret_in_the_config_is_refused(run: Run, tmp_path: Path) -> None:
    config = tmp_path / "meterhub.toml"
    config.write_text('[[meters]]\nid = "a"\nvendor = "iammeter"\noptions = { password = "hunter2" }\n')
    result = run("serve", "--config", str(config), ok=False)
    assert result.exit_code == 1
    assert "option 'password' must be a reference like env:VARIABLE_NAME" in result.stderr
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[hub]\n", "unknown section(s) hub"),
        ("meters = 3\n", "meters must be an array of tables"),
        ('[[meters]]\nvendor = "iammeter"\n', "id must be a non-empty string"),
        ('[[meters]]\nid = "a"\nvendor = "x"\ncolour = "red"\n', "unknown field(s) colour"),
        ('[[meters]]\nid = "a"\nvendor = "x"\ntz = "Mars/Base"\n', "unknown time zone"),
        ('[[meters]]\nid = "a"\nvendor = "x"\n[[meters]]\nid = "a"\nvendor = "y"\n', "declared twice: a"),
        ("[poller]\nspeed = 3\n", "unknown [poller] setting(s) speed"),
        ("[poller]\nmax_concurrent_polls = 2.5\n", "must be whole numbers >= 1"),
        ('[[mqtt]]\ntopic = "ams"\n', "needs a meter_id or a devices mapping"),
        ('[[mqtt]]\ntopic = "a"\nmeter_id = "m"\npassword_ref = "pw"\n', "password_ref must be a reference"),
        ("not toml [", "is not valid TOML"),
    ],
)
def test_config_mistakes_are_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "meterhub.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value)


def test_config_reads_meters_sources_and_settings() -> None:
    config = parse_config(
        {
            "poller": {"backoff_cap_s": 600, "max_concurrent_polls": 50},
            "meters": [
                {
                    "id": "house",
                    "vendor": "UMeter",
                    "tz": "Europe/Amsterdam",
                    "interval_s": 900,
                    "options": {"ean": "8716", "username": "me@example.org", "password": "env:UM_PW"},
                }
            ],
            "mqtt": [{"topic": "ams/+", "devices": {"ams/a": "a", "ams/b": "b"}, "port": 1884}],
        }
    )
    (meter,) = config.meters
    assert (meter.id, meter.vendor, meter.interval_s) == ("house", "umeter", 900)
    assert meter.options["password"] == "env:UM_PW"
    (source,) = config.mqtt
    assert (source.host, source.port, source.topic, source.meter_id) == ("127.0.0.1", 1884, "ams/+", None)
    assert config.poller.backoff_cap_s == 600 and config.poller.max_concurrent_polls == 50
