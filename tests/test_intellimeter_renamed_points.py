"""End to end on loopback: a renamed Intellimeter point keeps being collected; a removed one fails.

The simulator (frozen, stepped by hand) is served over real HTTP; the CLI polls into a real
SQLite file, and the hub's API, served on the same file, shows what was stored and the health.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from click.testing import CliRunner, Result

from meterhub.cli import main
from meterhub.config import Settings
from tests.api.conftest import ApiServer
from tests.simservers import Sim, simulator

TZ = "America/Toronto"
PASSWORD_ENV = "T_IM_RENAME_PASSWORD"
Run = Callable[..., Result]


def five_minutes_before(ts: datetime) -> datetime:
    return ts.replace(minute=ts.minute - ts.minute % 5, second=0, microsecond=0)


# The simulator stands still half an hour ago on a 5-minute boundary, so its rows are recent.
T0 = five_minutes_before(datetime.now(UTC)) - timedelta(minutes=30)
T1 = T0 + timedelta(minutes=5)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[ApiServer]:
    database_url = f"sqlite:///{tmp_path / 'hub.db'}"
    server = ApiServer(database_url, Settings(database_url=database_url, api_rate_per_s=0)).start()
    yield server
    server.stop()


@pytest.fixture
def run(hub: ApiServer) -> Run:
    def invoke(*args: str, ok: bool = True) -> Result:
        result = CliRunner().invoke(main, ["--database-url", hub.database_url, *args])
        if ok:
            assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result

    return invoke


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    with simulator("intellimeter", speed=0.0, start=T0) as served:
        monkeypatch.setenv(PASSWORD_ENV, served.info()["login"]["password"])
        yield served


def add_meter(run: Run, sim: Sim) -> None:
    run(
        "meters", "add", "im", "--vendor", "intellimeter", "--tz", TZ, "--base-url", sim.base_url,
        "--username", "test", "--password-env", PASSWORD_ENV, "--point", "meter1",
    )  # fmt: skip


def vendor_row(sim: Sim, path: str, name: str) -> dict[str, Any]:
    """Return the simulator's own row of point ``name``, asked in a session of our own."""
    with httpx.Client(base_url=sim.base_url, timeout=10) as client:
        client.put("/session", data={"username": "test", "password": sim.info()["login"]["password"]})
        rows: list[dict[str, Any]] = client.get(path).json()
    [row] = [row for row in rows if row["MeterParam"] == name]
    return row


def local(ts: datetime) -> str:
    return ts.astimezone(ZoneInfo(TZ)).strftime("%Y-%m-%d %H:%M:%S")


def test_a_renamed_point_keeps_being_collected_end_to_end(run: Run, sim: Sim, hub: ApiServer) -> None:
    add_meter(run, sim)
    run("poll", "im")
    sim._control("POST", "/_sim/variants", {"renamed_point": True})
    sim._control("POST", "/_sim/clock", {"now": T1.isoformat()})
    [polled] = json.loads(run("poll", "im", "--format", "json").stdout)
    data = vendor_row(sim, "/data", "meter1-renamed")
    interval = vendor_row(sim, "/interval", "meter1-renamed")
    assert polled["ok"] is True and polled["error"] is None
    assert (data["TimeStamping"], interval["TimeStamping"]) == (local(T1), local(T1))
    stored = list(hub.store.iter_readings(["im"], T0, T1 + timedelta(minutes=1), phase=0))
    assert [reading.ts for reading in stored] == [T0, T1]  # before the rename, and after it
    assert stored[-1].energy_import_kwh == data["value"]
    admin = hub.client(hub.admin_key)
    answer = admin.get(
        "/api/v1/meters/im/intervals",
        params={"start": T0.isoformat(), "end": (T1 + timedelta(minutes=1)).isoformat()},
    )
    assert answer.status_code == 200, answer.text
    by_end = {datetime.fromisoformat(item["end"]): item["energy_import_kwh"] for item in answer.json()}
    assert by_end[T1] == interval["value"]
    [status] = json.loads(run("status", "im", "--format", "json").stdout)
    assert status["online"] is True and status["last_error"] is None
    [shown] = json.loads(run("latest", "--format", "json").stdout)
    assert (shown["meter"], shown["ts"], shown["energy_import_kwh"]) == ("im", T1.isoformat(), data["value"])


def test_a_removed_point_fails_the_poll_with_the_reason_in_status(run: Run, sim: Sim, hub: ApiServer) -> None:
    add_meter(run, sim)
    run("poll", "im")
    sim._control("POST", "/_sim/variants", {"removed_point": True})
    sim._control("POST", "/_sim/clock", {"now": T1.isoformat()})
    failed = run("poll", "im", ok=False)
    reason = (
        "PayloadError: Intellimeter no longer has metering point 'meter1' (id 1) of meter 'im': it was "
        "removed from the account; nothing can be collected for it"
    )
    assert failed.exit_code == 1
    [status] = json.loads(run("status", "im", "--format", "json").stdout)
    assert (status["online"], status["last_error"]) == (False, reason)
    answer = hub.client(hub.admin_key).get("/api/v1/status")
    [im] = [item for item in answer.json() if item["meter_id"] == "im"]
    assert (im["online"], im["consecutive_failures"], im["last_error"]) == (False, 1, reason)
