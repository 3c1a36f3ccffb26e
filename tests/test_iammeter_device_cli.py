"""An IAMMETER meter on the local network through the CLI: discovered, added, polled every 2 s, and
a wrong password shown as a failed poll with a message a person can act on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from meterhub.cli import main
from meterhub.store import open_store
from tests.simservers import Sim, simulator


@pytest.fixture
def sim() -> Iterator[Sim]:
    with simulator("iammeter") as served:
        yield served


def run(db_url: str, *args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(main, ["--database-url", db_url, *args])
    assert (result.exit_code == 0) == ok, (result.stdout, result.stderr, result.exception)
    return result


def test_a_device_is_discovered_added_and_polled(
    sim: Sim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_url = f"sqlite:///{tmp_path / 'cli.db'}"
    added = run(db_url, "meters", "discover", "iammeter", "--base-url", sim.base_url,
                "--option", "source=device", "--tz", "Europe/Oslo", "--add", "--format", "json")
    [found] = json.loads(added.stdout)
    assert (found["id"], found["phases"]) == ("iammeter-3fe34abe", 3)
    polled = json.loads(run(db_url, "poll", "iammeter-3fe34abe", "--format", "json").stdout)
    assert polled[0]["ok"] is True
    store = open_store(db_url)
    try:
        meter = store.get_meter("iammeter-3fe34abe")
        latest = store.latest(["iammeter-3fe34abe"], phase=None)
    finally:
        store.close()
    assert (meter.interval_s, dict(meter.options)) == (2, {"source": "device", "base_url": sim.base_url})
    assert {r.phase for r in latest} == {0, 1, 2, 3}

    monkeypatch.setenv("IAM_DEVICE_PW", "wrong")
    run(db_url, "meters", "add", "wrong-pw", "--vendor", "iammeter", "--phases", "3",
        "--base-url", sim.base_url, "--option", "source=device", "--password-env", "IAM_DEVICE_PW")
    failed = json.loads(run(db_url, "poll", "wrong-pw", "--format", "json", ok=False).stdout)
    assert failed[0]["ok"] is False
    assert failed[0]["error"] == (
        "VendorAuthError: IAMMETER device 127.0.0.1 refused the user 'admin' or its password (HTTP 401); "
        "the factory login is admin/admin"
    )
