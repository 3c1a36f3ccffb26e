"""``POST /api/v1/meters/{id}/rotate-key`` over loopback: the hub's API, the simulator, a SQLite file."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from meterhub.cli import main
from meterhub.config import Settings
from meterhub.model import Meter, UserRole
from tests.api.conftest import ApiServer
from tests.simservers import Sim, simulator

KEY_ENV = "T_IM_API_ROTATE_KEY"
STORED = f"store:intellimeter-key/{KEY_ENV}"
TZ = "America/Toronto"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[ApiServer]:
    database_url = f"sqlite:///{tmp_path / 'hub.db'}"
    server = ApiServer(database_url, Settings(database_url=database_url, api_rate_per_s=0)).start()
    yield server
    server.stop()


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    with simulator("intellimeter") as served:
        monkeypatch.setenv(KEY_ENV, account_key(served))
        yield served


def account_key(sim: Sim) -> str:
    with httpx.Client(base_url=sim.base_url, timeout=10) as client:
        client.put("/session", data={"username": "test", "password": sim.info()["login"]["password"]})
        key: str = client.get("/key").json()["key"]
    return key


def add_meter(hub: ApiServer, sim: Sim, meter_id: str, point: str) -> None:
    options = {"base_url": sim.base_url, "key": f"env:{KEY_ENV}", "point": point}
    hub.store.add_meter(Meter(meter_id, "intellimeter", 1, TZ, 300, "", options))


def poll(hub: ApiServer, *meter_ids: str) -> list[bool]:
    result = CliRunner().invoke(
        main, ["--database-url", hub.database_url, "poll", *meter_ids, "--format", "json"]
    )
    return [row["ok"] for row in json.loads(result.stdout)]


def test_an_admin_rotates_the_key_of_every_meter_of_the_account(
    hub: ApiServer, sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    add_meter(hub, sim, "im1", "meter1")
    add_meter(hub, sim, "im2", "meter2")
    old_key = account_key(sim)
    answer = hub.client(hub.admin_key).post("/api/v1/meters/im1/rotate-key")
    assert answer.status_code == 200, answer.text
    new_key = account_key(sim)
    assert new_key != old_key
    body = answer.json()
    assert (body["meter"], body["previous"], body["reference"]) == ("im1", f"env:{KEY_ENV}", STORED)
    assert body["meters"] == body["switched"] == ["im1", "im2"]
    shown = hub.client(hub.admin_key).get("/api/v1/meters/im2").json()
    assert shown["options"]["stored_key"] == STORED and "key" not in shown["secret_options"]
    assert poll(hub, "im1", "im2") == [True, True]
    assert old_key not in answer.text + caplog.text and new_key not in answer.text + caplog.text


@pytest.mark.parametrize("role", [UserRole.MEMBER, UserRole.VIEWER])
def test_only_admins_may_rotate(hub: ApiServer, sim: Sim, role: UserRole) -> None:
    add_meter(hub, sim, "im1", "meter1")
    key = account_key(sim)
    client = hub.user(f"someone-{role.value}", role, shares=[("meter", "im1")])
    assert client.post("/api/v1/meters/im1/rotate-key").status_code == 403
    assert account_key(sim) == key


def test_a_vendor_failure_is_a_502_that_keeps_the_old_key(hub: ApiServer, sim: Sim) -> None:
    add_meter(hub, sim, "im1", "meter1")
    key = account_key(sim)
    sim.faults(error_status=503, error_every=1)
    answer = hub.client(hub.admin_key).post("/api/v1/meters/im1/rotate-key")
    sim.faults()
    assert answer.status_code == 502
    assert f"the meters keep env:{KEY_ENV}" in answer.json()["detail"]
    assert account_key(sim) == key
    assert hub.store.get_meter("im1").options["key"] == f"env:{KEY_ENV}"
    assert hub.client(hub.admin_key).post("/api/v1/meters/nope/rotate-key").status_code == 404
