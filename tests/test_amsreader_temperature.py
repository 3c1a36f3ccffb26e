"""An AMS reader's 1-Wire sensors reach the hub as one series each, end to end.

The simulated reader has three sensors on its 1-Wire bus: 21.5 °C, -3.2 °C and one that does not
answer (-127). It is discovered with ``meterhub meters discover amsreader --add``, polled by the
poller on stepped time (the simulator frozen), and read back with ``meterhub series`` and
``GET /api/v1/meters/{id}/series``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from click.testing import CliRunner

from meterhub.cli import main
from meterhub.config import Settings
from meterhub.poller import Poller, PollerSettings
from meterhub.store import Store, open_store
from tests.api.conftest import ApiServer
from tests.simservers import Sim, simulator
from tests.steppedtime import running, stepped

START = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)
METER = "amsreader-ams-sim"
SENSORS = (("28FF6A2B91160412", 21.5), ("28AA0102030405F1", -3.2), ("28BB000000000001", -127.0))
WARM = "temperature_28ff6a2b91160412_c"
COLD = "temperature_28aa0102030405f1_c"
DEAD = "temperature_28bb000000000001_c"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.close()


@pytest.fixture
def sim() -> Iterator[Sim]:
    with simulator("amsreader", speed=0.0, start=START, temperature_sensors=SENSORS) as served:
        yield served


@pytest.fixture
def api(db_url: str) -> Iterator[ApiServer]:
    server = ApiServer(db_url, Settings(database_url=db_url, api_rate_per_s=0)).start()
    yield server
    server.stop()


def discover(db_url: str, sim: Sim) -> list[dict[str, Any]]:
    args = ["--database-url", db_url, "meters", "discover", "amsreader", "--base-url", sim.base_url]
    result = CliRunner().invoke(main, [*args, "--add", "--format", "json"])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    found: list[dict[str, Any]] = json.loads(result.stdout)
    sim._control("DELETE", "/_sim/calls")  # count only what polling asks from here on
    # The command took the reader's 2 s slots on the real clock, after the stepped March days
    # the poller runs on; those slots would hold that past.
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        db.execute("DELETE FROM quota_ledger")
    return found


def served(sim: Sim, route: str) -> Any:
    with httpx.Client(base_url=sim.base_url, timeout=10) as client:
        answer = client.get(route)
    answer.raise_for_status()
    return answer.json()


async def poll_for(store: Store, sim: Sim, start: datetime, span: timedelta) -> None:
    """Run the poller on stepped time from ``start`` for ``span``, the meter polled every minute."""
    meter = replace(store.get_meter(METER), interval_s=60)
    async with stepped(start, sim.base_url) as (driver, client):
        settings = PollerSettings(jitter_ratio=0.0, startup_spread_s=0.0)
        poller = Poller(store, client, clock=driver.clock, settings=settings, meters=[meter])
        async with running(poller, driver):
            await driver.run_until(start + span)
        assert poller.stats.failures == 0


def cli_series(db_url: str) -> dict[str, dict[str, Any]]:
    result = CliRunner().invoke(main, ["--database-url", db_url, "series", METER, "--format", "json"])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return {row["name"]: row for row in json.loads(result.stdout)}


def test_the_simulator_serves_temperature_json_in_the_firmwares_shape(sim: Sim) -> None:
    assert served(sim, "/temperature.json") == {
        "c": 3,
        "s": [
            {"i": 0, "a": "28FF6A2B91160412", "n": "", "c": 1, "v": 21.5},
            {"i": 1, "a": "28AA0102030405F1", "n": "", "c": 1, "v": -3.2},
            {"i": 2, "a": "28BB000000000001", "n": "", "c": 1, "v": -127.0},
        ],
    }
    # data.json's t is the average of the sensors that answer: (21.5 - 3.2) / 2
    assert served(sim, "/data.json")["t"] == 9.15


@pytest.mark.anyio
async def test_each_sensor_becomes_a_series_read_every_five_minutes_across_a_restart(
    db_url: str, store: Store, sim: Sim, api: ApiServer
) -> None:
    await anyio.to_thread.run_sync(discover, db_url, sim)
    assert store.get_meter(METER).options["temperature_sensors"] == "true"

    await poll_for(store, sim, START, timedelta(minutes=14, seconds=30))
    first_run = sim.calls()
    await poll_for(store, sim, START + timedelta(minutes=15, seconds=30), timedelta(seconds=30))
    after_restart = sim.calls()
    await poll_for(store, sim, START + timedelta(minutes=20), timedelta(seconds=30))
    once_due = sim.calls()

    # Polls every minute from 10:30 to 10:44: prices (firmware v2.3.9: energyprice.json) at
    # 10:30, the peaks at 10:31, and the sensors at 10:32, 10:37 and 10:42 (every 5 minutes):
    # at most one call besides data.json per poll.
    assert first_run == {"/data.json": 15, "/energyprice.json": 1, "/tariff.json": 1, "/temperature.json": 3}
    # Restarted at 10:45:30, the poller polls at once; it knows the sensors were read at 10:42
    # and does not read them again. Started again at 10:50, it finds them due.
    assert (after_restart["/data.json"], after_restart["/temperature.json"]) == (16, 3)
    assert (once_due["/data.json"], once_due["/temperature.json"]) == (17, 4)

    listed = cli_series(db_url)
    assert (listed[WARM]["count"], listed[WARM]["last_value"], listed[WARM]["unit"]) == (4, 21.5, "°C")
    assert (listed[COLD]["count"], listed[COLD]["last_value"], listed[COLD]["unit"]) == (4, -3.2, "°C")
    assert DEAD not in listed  # -127: the sensor did not answer
    assert listed["temperature_c"]["last_value"] == 9.15

    answer = api.client(api.admin_key).get(f"/api/v1/meters/{METER}/series")
    assert answer.status_code == 200, answer.text
    by_name = {row["name"]: row for row in answer.json()}
    assert (by_name[WARM]["last_value"], by_name[WARM]["count"], by_name[WARM]["unit"]) == (21.5, 4, "°C")
    assert (by_name[COLD]["last_value"], by_name[COLD]["count"], by_name[COLD]["unit"]) == (-3.2, 4, "°C")
    assert DEAD not in by_name


@pytest.mark.anyio
async def test_a_reader_without_sensors_gets_no_option_and_no_sensor_series(
    db_url: str, store: Store, api: ApiServer
) -> None:
    with simulator("amsreader", speed=0.0, start=START, temperature_sensors=SENSORS) as sim:
        sim._control("POST", "/_sim/variants", {"no_temperature_sensor": True})
        assert served(sim, "/temperature.json") == {"c": 0, "s": []}
        assert served(sim, "/data.json")["t"] == -127
        await anyio.to_thread.run_sync(discover, db_url, sim)
        await poll_for(store, sim, START, timedelta(minutes=14, seconds=30))
        calls = sim.calls()
    assert "temperature_sensors" not in store.get_meter(METER).options
    # The polls that read the sensors on a reader with sensors read nothing besides data.json.
    assert calls == {"/data.json": 15, "/energyprice.json": 1, "/tariff.json": 1}
    names = {row["name"] for row in api.client(api.admin_key).get(f"/api/v1/meters/{METER}/series").json()}
    assert "rssi_dbm" in names  # the meter was polled and its extras stored
    assert not {name for name in names if name.startswith("temperature")}
