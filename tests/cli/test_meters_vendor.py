"""``meterhub meters add|discover|list``, ``poll`` and ``relay`` against the simulators on loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meterhub.store import open_store
from tests.cli.conftest import Run
from tests.simservers import Sim, simulator


def stored_meter_options(db_url: str, meter_id: str) -> dict[str, str]:
    store = open_store(db_url)
    try:
        return dict(store.get_meter(meter_id).options)
    finally:
        store.close()


def listed(run: Run) -> dict[str, dict[str, Any]]:
    return {m["id"]: m for m in json.loads(run("meters", "list", "--format", "json").stdout)}


def test_add_keeps_connection_options_and_only_references_to_secrets(
    run: Run, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_SECRET_PIN", "4711-very-secret")
    result = run(
        "meters", "add", "sm", "--vendor", "smartmac", "--phases", "3", "--tz", "Europe/Oslo",
        "--base-url", "http://10.0.0.7", "--devid", "1728053249", "--devpass-env", "T_SECRET_PIN",
        "--rate-class", "extended",
    )  # fmt: skip
    assert result.stdout.strip() == "added meter sm (smartmac, 3-phase, Europe/Oslo, every 6 s)"  # extended
    assert stored_meter_options(db_url, "sm") == {
        "base_url": "http://10.0.0.7",
        "devid": "1728053249",
        "devpass": "env:T_SECRET_PIN",
        "rate_class": "extended",
    }
    run(
        "meters", "add", "iam", "--vendor", "iammeter", "--sn", "3FE34ABE", "--place-id", "2393",
        "--username-env", "T_USER", "--password-env", "T_PASSWORD", "--option", "timeout_s=5",
    )  # fmt: skip
    assert stored_meter_options(db_url, "iam") == {
        "sn": "3FE34ABE",
        "place_id": "2393",
        "username": "env:T_USER",
        "password": "env:T_PASSWORD",
        "timeout_s": "5",
    }
    umeter = ("--vendor", "umeter", "--ean", "8716", "--username", "u", "--password-env", "P")
    run("meters", "add", "um", *umeter)
    run("meters", "add", "im", "--vendor", "intellimeter", "--point", "meter1", "--key-env", "K")
    run("meters", "add", "ams", "--vendor", "amsreader", "--host", "ams.local")
    assert stored_meter_options(db_url, "um") == {"ean": "8716", "username": "u", "password": "env:P"}
    assert b"4711-very-secret" not in b"".join(p.read_bytes() for p in tmp_path.glob("cli.db*"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--option", "password=hunter2"), "option 'password' must be a reference like env:"),
        (("--password-env", "not a name"), "--password-env takes the NAME of an environment variable"),
        (("--option", "novalue"), "--option takes KEY=VALUE"),
    ],
)
def test_add_refuses_secrets_in_the_clear(run: Run, args: tuple[str, ...], message: str) -> None:
    result = run("meters", "add", "x", "--vendor", "iammeter", *args, ok=False)
    assert result.exit_code == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--vendor", "iammeter", "--sn", "3FE34ABE"),
         "iammeter meters need the options sn, username, password; missing: username, password"),
        (("--vendor", "iammeter", "--option", "source=device"),
         "iammeter meters need the options base_url; missing: base_url"),
        (("--vendor", "smartmac", "--devid", "1728053249"),
         "smartmac meters need the options devid, devpass; missing: devpass"),
        (("--vendor", "intellimeter", "--key-env", "K"),
         "intellimeter meters need the options point or point_id; missing: point"),
        (("--vendor", "intellimeter", "--point", "p1", "--username", "u"),
         "need the options key or stored_key or username, password; missing: key"),
        (("--vendor", "amsreader",), "amsreader meters need the options host or base_url; missing: host"),
        (("--vendor", "umeter", "--ean", "8716"), "missing: username, password"),
    ],
)
def test_add_refuses_a_meter_without_the_options_its_vendor_needs(
    run: Run, db_url: str, args: tuple[str, ...], message: str
) -> None:
    result = run("meters", "add", "m", *args, ok=False)
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert listed(run) == {}


def test_add_refuses_an_unknown_vendor(run: Run) -> None:
    result = run("meters", "add", "x", "--vendor", "acme", ok=False)
    assert result.stderr.startswith("error: unknown vendor 'acme'; choose one of iammeter, ")


DISCOVER: dict[str, tuple[str, ...]] = {
    "iammeter": ("--username", "test", "--password-env", "T_PASSWORD", "--tz", "Europe/Oslo"),
    "intellimeter": ("--username", "test", "--password-env", "T_PASSWORD", "--tz", "America/Toronto"),
    "umeter": ("--username-env", "T_USER", "--password-env", "T_PASSWORD"),
    "smartmac": ("--devid", "1728053249", "--devpass-env", "T_PASSWORD"),
    "amsreader": (),
}


def _discover_secrets(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    info = sim.info()
    secrets = {
        "iammeter": lambda: info["password"],
        "intellimeter": lambda: info["login"]["password"],
        "umeter": lambda: info["credentials"]["password"],
        "smartmac": lambda: info["devpass"],
        "amsreader": lambda: "",
    }
    monkeypatch.setenv("T_PASSWORD", secrets[sim.vendor]())
    if sim.vendor == "umeter":
        monkeypatch.setenv("T_USER", info["credentials"]["username"])


@pytest.mark.parametrize("vendor", list(DISCOVER))
def test_discover_lists_what_an_account_holds_and_adds_it(
    vendor: str, run: Run, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulator(vendor) as sim:
        _discover_secrets(sim, monkeypatch)
        args = ("meters", "discover", vendor, "--base-url", sim.base_url, *DISCOVER[vendor])
        result = run(*args, "--add", "--format", "json")
        found = json.loads(result.stdout)
        ids = [item["id"] for item in found]
        polled = json.loads(run("poll", ids[0], "--format", "json", ok=vendor != "smartmac").stdout)
        calls = sim.calls()
    assert found and all(item["vendor"] == vendor for item in found)
    assert sorted(listed(run)) == sorted(ids)
    assert all(f"added meter {meter_id}" in result.stderr for meter_id in ids)
    if vendor == "smartmac":  # the device answers once a minute: discovery just asked
        assert polled[0]["error"].startswith("QuotaHeld: ")  # our own ledger said no
        assert calls == {"/": 1}
    else:
        assert polled[0]["ok"] is True
    options = stored_meter_options(db_url, ids[0])
    assert all(v.startswith("env:") for k, v in options.items() if k in {"password", "devpass", "key"})
    if vendor == "iammeter":
        assert {item["id"] for item in found} >= {"iammeter-3fe34abe", "iammeter-da2bed94"}


def test_discover_without_add_adds_nothing_and_again_keeps_what_exists(run: Run) -> None:
    with simulator("amsreader") as sim:
        args = ("meters", "discover", "amsreader", "--base-url", sim.base_url)
        found = run(*args, "--format", "csv").stdout.splitlines()
        assert listed(run) == {}
        run(*args, "--add")
        kept = run(*args, "--add")
    assert found[0] == "id,vendor,phases,tz,name,place,options" and len(found) == 2
    meter_id = found[1].split(",")[0]
    assert list(listed(run)) == [meter_id]
    assert f"kept meter {meter_id} (it exists already)" in kept.stdout


def test_discover_again_uses_the_kept_answer_and_fresh_honours_the_vendor_quota(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulator("iammeter") as sim:
        _discover_secrets(sim, monkeypatch)
        args = ("meters", "discover", "iammeter", "--base-url", sim.base_url, *DISCOVER["iammeter"])
        first = run(*args, "--format", "json")
        added = run(*args, "--add", "--format", "json")
        fresh = run(*args, "--fresh", ok=False)
        calls = sim.calls()
    assert json.loads(added.stdout) == json.loads(first.stdout)
    assert "kept for its quota window; --fresh asks again" in added.stderr
    assert "kept for its quota window" not in first.stderr
    assert all(f"added meter {item['id']}" in added.stderr for item in json.loads(first.stdout))
    assert fresh.exit_code == 1
    assert fresh.stderr.startswith("error: iammeter allows 1 metersdata calls per 5 minutes")
    assert calls["/api/v1/site/metersdata"] == 1  # neither the kept answer nor the refused call reached it


def test_add_without_a_zone_takes_the_one_the_vendor_tells(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    run("settings", "set", "default-tz", "America/Toronto")
    with simulator("iammeter") as sim:  # the user discovers, then adds one meter: one metersdata call
        _discover_secrets(sim, monkeypatch)
        account = ("--base-url", sim.base_url, "--username", "test", "--password-env", "T_PASSWORD")
        found = json.loads(run("meters", "discover", "iammeter", *account, "--format", "json").stdout)
        iam_tz, sn = found[0]["tz"], sim.info()["meters"][0]["sn"]
        iam = run("meters", "add", "iam", "--vendor", "iammeter", "--sn", sn, *account)
        assert sim.calls()["/api/v1/site/metersdata"] == 1
    with simulator("amsreader") as sim:
        ams = run("meters", "add", "ams", "--vendor", "amsreader", "--base-url", sim.base_url)
        ams_tz = json.loads(run("meters", "discover", "amsreader", "--base-url", sim.base_url, "--format",
                                "json").stdout)[0]["tz"]  # fmt: skip
    with simulator("smartmac") as sim:
        _discover_secrets(sim, monkeypatch)
        devid = sim.info()["devid"]
        sm = run("meters", "add", "sm", "--vendor", "smartmac", "--base-url", sim.base_url,
                 "--devid", devid, "--devpass-env", "T_PASSWORD")  # fmt: skip
        calls = sim.calls()
    meters = listed(run)
    assert iam_tz != "America/Toronto" and ams_tz != "America/Toronto"
    assert meters["iam"]["tz"] == iam_tz and f"; zone {iam_tz} as iammeter tells" in iam.stdout
    assert meters["ams"]["tz"] == ams_tz and f"; zone {ams_tz} as amsreader tells" in ams.stdout
    assert meters["sm"]["tz"] == "America/Toronto"  # a smart-MAC device tells no zone: it is not asked
    assert "zone America/Toronto is the hub's default zone" in sm.stdout and sum(calls.values()) == 0


def test_add_when_the_vendor_cannot_be_asked_takes_the_default_and_says_why(run: Run) -> None:
    with simulator("amsreader") as sim:
        base_url = sim.base_url
    result = run("meters", "add", "ams", "--vendor", "amsreader", "--base-url", base_url)  # closed now
    tz = listed(run)["ams"]["tz"]
    assert result.stdout.startswith(f"added meter ams (amsreader, 1-phase, {tz}, every ")
    assert "amsreader could not be asked (" in result.stdout
    assert "Traceback" not in result.stderr


def test_list_shows_health_after_polls(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    with simulator("amsreader") as sim:
        run("meters", "add", "ams", "--vendor", "amsreader", "--phases", "3", "--base-url", sim.base_url)
        assert listed(run)["ams"]["online"] is None  # never polled
        run("poll", "ams")
        healthy = listed(run)["ams"]
        sim.faults(offline=True)
        failed = run("poll", "ams", ok=False)  # it waits for the reader's next 2 s slot itself
        broken = listed(run)["ams"]
    assert healthy["online"] is True and healthy["failures"] == 0 and healthy["last_error"] is None
    assert healthy["last_success"] is not None and healthy["last_reading"] is not None
    assert failed.exit_code == 1 and "VendorUnavailable" in failed.stdout
    assert broken["online"] is False and broken["failures"] == 1
    assert broken["last_error"].startswith("VendorUnavailable: ")
    assert broken["last_success"] == healthy["last_success"]


def test_relay_switches_and_the_device_reports_the_state(
    run: Run, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulator("smartmac", extended=True) as sim:
        info = sim.info()
        monkeypatch.setenv("T_PIN", info["devpass"])
        run(
            "meters", "add", "sm", "--vendor", "smartmac", "--phases", "3", "--base-url", sim.base_url,
            "--devid", info["devid"], "--devpass-env", "T_PIN", "--rate-class", "extended",
        )  # fmt: skip
        assert info["relay_on"] is False
        on = run("relay", "sm", "on")
        assert sim.info()["relay_on"] is True
        off = run("relay", "sm", "off")  # waits out the device's 6 s pace
        assert sim.info()["relay_on"] is False
    assert on.stdout.startswith("relay of sm is on (as the device reports, live at ")
    assert off.stdout.startswith("relay of sm is off (as the device reports, live at ")
    assert "its answer is stored as the meter's poll" in off.stdout
    assert "waiting" in off.stderr
    store = open_store(db_url)
    try:
        from datetime import UTC, datetime, timedelta

        now = datetime.now(UTC)
        states = [e.value for e in store.extras("sm", "relay_on", now - timedelta(minutes=5), now)]
    finally:
        store.close()
    assert states[-2:] == [1.0, 0.0]


def test_relay_of_a_meter_without_one_is_refused(run: Run) -> None:
    run("meters", "add", "iam", "--vendor", "iammeter", "--sn", "X", "--username", "u", "--password-env", "P")
    result = run("relay", "iam", "on", ok=False)
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: meter 'iam': IAMMETER offers no relay control"
