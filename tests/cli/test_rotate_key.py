"""``meterhub meters rotate-key`` against the Intellimeter simulator on loopback."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from meterhub.store import open_store
from tests.cli.conftest import Run
from tests.simservers import Sim, simulator

KEY_ENV = "T_IM_ROTATE_KEY"
PASSWORD_ENV = "T_IM_ROTATE_PASSWORD"
STORED = f"store:intellimeter-key/{KEY_ENV}"


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    with simulator("intellimeter") as served:
        monkeypatch.setenv(PASSWORD_ENV, served.info()["login"]["password"])
        monkeypatch.setenv(KEY_ENV, account_key(served))
        yield served


def account_key(sim: Sim) -> str:
    """Return the account's current key, as the vendor shows it to a password login."""
    with httpx.Client(base_url=sim.base_url, timeout=10) as client:
        login = client.put("/session", data={"username": "test", "password": sim.info()["login"]["password"]})
        assert login.status_code == 200
        key: str = client.get("/key").json()["key"]
    return key


def key_opens_a_session(sim: Sim, key: str) -> bool:
    with httpx.Client(base_url=sim.base_url, timeout=10) as client:
        status = client.put("/session", data={"key": key}).status_code
    assert status in (200, 401)
    return status == 200


def options_of(db_url: str) -> dict[str, dict[str, str]]:
    store = open_store(db_url)
    try:
        return {meter.id: dict(meter.options) for meter in store.list_meters()}
    finally:
        store.close()


def add_meters(run: Run, sim: Sim) -> None:
    """Two meters of the account logging in with its key, one with its password."""
    common = ("--vendor", "intellimeter", "--tz", "America/Toronto", "--base-url", sim.base_url)
    run("meters", "add", "im1", *common, "--key-env", KEY_ENV, "--point", "meter1")
    run("meters", "add", "im2", *common, "--key-env", KEY_ENV, "--point", "meter2")
    run(
        "meters",
        "add",
        "im3",
        *common,
        "--username",
        "test",
        "--password-env",
        PASSWORD_ENV,
        "--point",
        "meter3",
    )


def polled_ok(run: Run, *meter_ids: str) -> list[bool]:
    return [row["ok"] for row in json.loads(run("poll", *meter_ids, "--format", "json").stdout)]


def test_rotate_key_switches_every_meter_of_the_account_and_never_shows_a_key(
    run: Run, sim: Sim, db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    add_meters(run, sim)
    old_key = account_key(sim)
    assert polled_ok(run, "im1", "im2") == [True, True]
    logins_before = sim.calls()["/session"]
    rotated = run("meters", "rotate-key", "im1")
    new_key = account_key(sim)
    assert new_key != old_key
    assert rotated.stdout.splitlines() == [
        "rotated the Intellimeter API key of meter im1; the old key no longer works",
        f"the new key is kept in the hub's store as {STORED}",
        f"meter im1: now logs in with {STORED} (was env:{KEY_ENV})",
        f"meter im2: now logs in with {STORED} (was env:{KEY_ENV})",
    ]
    options = options_of(db_url)
    assert options["im1"]["stored_key"] == options["im2"]["stored_key"] == STORED
    assert "key" not in options["im1"] and "key" not in options["im2"]
    assert options["im3"]["password"] == f"env:{PASSWORD_ENV}" and "stored_key" not in options["im3"]
    assert key_opens_a_session(sim, new_key) and not key_opens_a_session(sim, old_key)
    assert polled_ok(run, "im1", "im2", "im3") == [True, True, True]
    assert sim.calls()["/session"] > logins_before + 2  # the key meters logged in again, with the new key
    again = run("meters", "rotate-key", "im2")  # the stored key is replaced in place
    newest_key = account_key(sim)
    assert newest_key not in (new_key, old_key)
    assert f"meter im1: logs in with {STORED}" in again.stdout
    assert polled_ok(run, "im1", "im2") == [True, True]
    shown = rotated.stdout + rotated.stderr + again.stdout + again.stderr + caplog.text
    assert all(key not in shown for key in (old_key, new_key, newest_key))
    status = run("status", "--format", "json").stdout + run("meters", "list", "--format", "json").stdout
    assert all(key not in status for key in (old_key, new_key, newest_key))


def test_a_vendor_failure_keeps_the_old_key_and_says_so(
    run: Run, sim: Sim, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    add_meters(run, sim)
    old_key = account_key(sim)
    assert polled_ok(run, "im1") == [True]  # a session is open; the rotation's call itself fails
    sim.faults(error_status=503, error_every=1)
    failed = run("meters", "rotate-key", "im1", ok=False)
    sim.faults()
    assert failed.exit_code == 1
    assert failed.stderr.startswith("error: Intellimeter failed POST /key with HTTP 503")
    assert failed.stderr.rstrip().endswith(f"the key was not rotated here and the meters keep env:{KEY_ENV}")
    assert account_key(sim) == old_key
    assert options_of(db_url)["im1"]["key"] == f"env:{KEY_ENV}"
    assert polled_ok(run, "im1", "im2") == [True, True]
    assert old_key not in failed.stdout + failed.stderr + caplog.text


@pytest.mark.parametrize(
    ("meter_id", "message"),
    [
        ("im3", "error: meter 'im3' logs in with a user name and password, not an API key"),
        ("ams", "error: meter 'ams' (amsreader) has no API key the hub can rotate"),
        ("nope", "error: "),
    ],
)
def test_meters_without_a_key_are_refused_in_one_line(
    run: Run, sim: Sim, meter_id: str, message: str
) -> None:
    add_meters(run, sim)
    run("meters", "add", "ams", "--vendor", "amsreader", "--base-url", "http://127.0.0.1:9")
    key = account_key(sim)
    refused = run("meters", "rotate-key", meter_id, ok=False)
    assert refused.exit_code == 1
    assert refused.stderr.startswith(message) and len(refused.stderr.strip().splitlines()) == 1
    assert account_key(sim) == key  # the vendor was not asked
