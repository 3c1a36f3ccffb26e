"""``/api/v1/meters/{id}/series`` over HTTP: the list, one series as values or buckets, errors.

The values are written straight into the hub's database; every expected figure is worked out
by hand beside it. One test goes end to end: the smart-MAC simulator, a poll, the API and the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from click.testing import CliRunner

from meterhub.cli import main
from meterhub.model import Extra, Meter
from tests.api.conftest import ApiServer
from tests.api.formats import csv_rows, problem, xml_root
from tests.simservers import Sim, simulator

OSLO = "Europe/Oslo"
T0 = datetime(2026, 3, 2, tzinfo=UTC)
"""A Monday, 00:00 UTC (01:00 in Oslo)."""
DAY = {"start": T0.isoformat(), "end": (T0 + timedelta(days=1)).isoformat()}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def hub(api: ApiServer) -> ApiServer:
    """A hub with meter ``box`` (Oslo) holding temperature, RSSI and relay values, and ``empty``."""
    api.store.add_meter(Meter("box", "file", tz=OSLO, name="Fuse box"))
    api.store.add_meter(Meter("empty", "file", tz=OSLO))
    temperatures = [(0, 20.0), (10, 22.0), (20, 24.0), (65, 10.0), (110, 30.0)]
    api.store.write_extras(
        [Extra("box", at(m), "temperature_c", v) for m, v in temperatures]
        + [Extra("box", at(5), "rssi_dbm", -71.0), Extra("box", at(6), "rssi_dbm", -65.0)]
        + [Extra("box", at(1), "relay_on", 1.0), Extra("box", at(90), "relay_on", 0.0)]
    )
    return api


def test_the_list_names_each_series_with_unit_count_and_last_value(
    hub: ApiServer, admin: httpx.Client
) -> None:
    answer = admin.get("/api/v1/meters/box/series")
    assert answer.status_code == 200, answer.text
    rows = answer.json()
    assert [r["name"] for r in rows] == ["relay_on", "rssi_dbm", "temperature_c"]
    relay, rssi, temperature = rows
    assert {k: temperature[k] for k in ("unit", "kind", "count", "first", "last", "last_value")} == {
        "unit": "°C",
        "kind": "number",
        "count": 5,
        "first": "2026-03-02T00:00:00+00:00",
        "last": "2026-03-02T01:50:00+00:00",
        "last_value": 30.0,
    }
    assert (rssi["unit"], rssi["count"], rssi["last_value"], rssi["label"]) == (
        "dBm",
        2,
        -65.0,
        "Wi-Fi signal (RSSI)",
    )
    assert (relay["unit"], relay["kind"], relay["last_value"]) == ("on/off", "state", 0.0)
    # The values are from March; the answer is later than that.
    assert temperature["age_s"] > 0
    assert admin.get("/api/v1/meters/empty/series").json() == []
    table = csv_rows(admin.get("/api/v1/meters/box/series", params={"format": "csv"}))
    assert [(r["name"], r["count"], r["unit"]) for r in table] == [
        ("relay_on", "2", "on/off"),
        ("rssi_dbm", "2", "dBm"),
        ("temperature_c", "5", "°C"),
    ]


def test_a_short_range_answers_the_values_themselves(hub: ApiServer, admin: httpx.Client) -> None:
    # Local times are Oslo's (UTC+1 in March): 01:00-01:30 local is 00:00-00:30 UTC.
    params = {"start": "2026-03-02T01:00", "end": "2026-03-02T01:30"}
    body = admin.get("/api/v1/meters/box/series/temperature_c", params=params).json()
    assert (body["bucket"], body["bucket_s"], body["unit"]) == ("raw", None, "°C")
    assert body["start"] == "2026-03-02T00:00:00+00:00" and body["end"] == "2026-03-02T00:30:00+00:00"
    assert body["data"] == [
        {"ts": "2026-03-02T00:00:00+00:00", "value": 20.0},
        {"ts": "2026-03-02T00:10:00+00:00", "value": 22.0},
        {"ts": "2026-03-02T00:20:00+00:00", "value": 24.0},
    ]
    root = xml_root(admin.get("/api/v1/meters/box/series/temperature_c", params={**params, "format": "xml"}))
    assert root.tag == "series" and root.findtext("name") == "temperature_c"
    rows = csv_rows(admin.get("/api/v1/meters/box/series/relay_on", params={**DAY, "format": "csv"}))
    assert rows == [
        {"ts": "2026-03-02T00:01:00+00:00", "value": "1.0"},
        {"ts": "2026-03-02T01:30:00+00:00", "value": "0.0"},
    ]


def test_hour_and_local_day_buckets(hub: ApiServer, admin: httpx.Client) -> None:
    hours = admin.get("/api/v1/meters/box/series/temperature_c", params={**DAY, "bucket": "1h"}).json()
    assert hours["bucket"] == "1h" and hours["bucket_s"] == 3600
    # 00:00-01:00 UTC: 20, 22, 24; 01:00-02:00 UTC: 10, 30.
    assert hours["data"] == [
        {"start": "2026-03-02T00:00:00+00:00", "end": "2026-03-02T01:00:00+00:00",
         "count": 3, "min": 20.0, "avg": 22.0, "max": 24.0},
        {"start": "2026-03-02T01:00:00+00:00", "end": "2026-03-02T02:00:00+00:00",
         "count": 2, "min": 10.0, "avg": 20.0, "max": 30.0},
    ]  # fmt: skip
    days = admin.get("/api/v1/meters/box/series/temperature_c", params={**DAY, "bucket": "1d"}).json()
    # One local day, 2 March in Oslo: 23:00 UTC on 1 March to 23:00 UTC on 2 March; all five values,
    # sum 106, mean 21.2.
    assert days["data"] == [
        {"start": "2026-03-01T23:00:00+00:00", "end": "2026-03-02T23:00:00+00:00",
         "count": 5, "min": 10.0, "avg": 21.2, "max": 30.0},
    ]  # fmt: skip


def test_many_values_come_back_as_round_buckets(hub: ApiServer, admin: httpx.Client) -> None:
    # 3000 values 10 s apart, value i at T0 + 10 i s: more than the 2000 answered as they are.
    hub.store.write_extras(
        [Extra("box", T0 + timedelta(seconds=10 * i), "uptime_s", float(i)) for i in range(3000)]
    )
    params = {"start": T0.isoformat(), "end": (T0 + timedelta(seconds=30_000)).isoformat()}
    body = admin.get("/api/v1/meters/box/series/uptime_s", params=params).json()
    # 30000 s in at most 1000 buckets: 30 s each, three values per bucket (3k, 3k+1, 3k+2).
    assert (body["bucket"], body["bucket_s"], len(body["data"])) == ("auto", 30, 1000)
    assert body["data"][0] == {
        "start": "2026-03-02T00:00:00+00:00", "end": "2026-03-02T00:00:30+00:00",
        "count": 3, "min": 0.0, "avg": 1.0, "max": 2.0,
    }  # fmt: skip
    assert body["data"][-1]["min"] == 2997.0 and body["data"][-1]["avg"] == 2998.0
    raw = admin.get("/api/v1/meters/box/series/uptime_s", params={**params, "bucket": "raw"}).json()
    assert raw["bucket"] == "raw" and len(raw["data"]) == 3000


def test_a_year_is_answered_in_buckets_from_the_rollup(hub: ApiServer, admin: httpx.Client) -> None:
    # One value a day at noon UTC for a year: day d holds d.
    hub.store.write_extras(
        [
            Extra("box", datetime(2025, 1, 1, 12, tzinfo=UTC) + timedelta(days=d), "vcc_v", float(d))
            for d in range(365)
        ]
    )
    params = {"start": "2025-01-01T00:00:00+00:00", "end": "2026-01-01T00:00:00+00:00"}
    body = admin.get("/api/v1/meters/box/series/vcc_v", params=params).json()
    # 365 values fit the 2000 answered as they are.
    assert body["bucket"] == "raw" and len(body["data"]) == 365
    days = admin.get("/api/v1/meters/box/series/vcc_v", params={**params, "bucket": "1d", "tz": "UTC"}).json()
    assert len(days["data"]) == 365
    assert days["data"][100] == {
        "start": "2025-04-11T00:00:00+00:00", "end": "2025-04-12T00:00:00+00:00",
        "count": 1, "min": 100.0, "avg": 100.0, "max": 100.0,
    }  # fmt: skip
    six_hours = admin.get("/api/v1/meters/box/series/vcc_v", params={**params, "bucket": "6h"}).json()
    # Every value is at noon: one 6-hour bucket (12:00-18:00) per day.
    assert len(six_hours["data"]) == 365 and six_hours["data"][0]["start"] == "2025-01-01T12:00:00+00:00"


def test_unknown_series_and_bad_parameters_are_clear_problems(hub: ApiServer, admin: httpx.Client) -> None:
    missing = problem(admin.get("/api/v1/meters/box/series/humidity_pct", params=DAY), 404)
    assert missing["detail"] == (
        "meter 'box' has no series 'humidity_pct'; its series are relay_on, rssi_dbm, temperature_c"
    )
    none_yet = problem(admin.get("/api/v1/meters/empty/series/temperature_c"), 404)
    assert "it has no device series yet" in none_yet["detail"]
    problem(admin.get("/api/v1/meters/ghost/series"), 404)
    problem(admin.get("/api/v1/meters/ghost/series/temperature_c"), 404)
    bucket = problem(admin.get("/api/v1/meters/box/series/temperature_c", params={"bucket": "2h"}), 422)
    assert "bucket" in json.dumps(bucket)
    backwards = {"start": "2026-03-03", "end": "2026-03-02"}
    assert (
        "must be after"
        in problem(admin.get("/api/v1/meters/box/series/rssi_dbm", params=backwards), 422)["detail"]
    )
    too_many = {"start": "2000-01-01", "end": "2199-12-31", "bucket": "1m"}
    assert (
        "choose a wider bucket"
        in problem(admin.get("/api/v1/meters/box/series/rssi_dbm", params=too_many), 422)["detail"]
    )
    problem(admin.get("/api/v1/meters/box/series/rssi_dbm", params={"format": "pdf"}), 422)


@pytest.mark.parametrize("path", ["/api/v1/meters/box/series", "/api/v1/meters/box/series/rssi_dbm"])
def test_auth_and_shares_as_every_meter_route(hub: ApiServer, anon: httpx.Client, path: str) -> None:
    problem(anon.get(path, params=DAY), 401)
    outsider = hub.user("otto", "member", [("meter", "empty")])
    problem(outsider.get(path, params=DAY), 404)
    viewer = hub.user("vic", "viewer", [("meter", "box")])
    assert viewer.get(path, params=DAY).status_code == 200


@pytest.fixture
def device(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    """Serve one smart-MAC device of newer firmware with its relay on and a 3500 W limit."""
    with simulator("smartmac", extended=True, newer_firmware=True, relay_on=True, power_limit_w=3500) as sim:
        monkeypatch.setenv("T_SMARTMAC_PIN", sim.info()["devpass"])
        yield sim


def test_a_polled_device_serves_its_series_through_the_api_and_the_cli(
    api: ApiServer, admin: httpx.Client, device: Sim
) -> None:
    options = {
        "base_url": device.base_url,
        "devid": device.info()["devid"],
        "devpass": "env:T_SMARTMAC_PIN",
        "rate_class": "extended",
    }
    added = admin.post(
        "/api/v1/meters", json={"id": "sm", "vendor": "smartmac", "phases": 3, "options": options}
    )
    assert added.status_code == 201, added.text
    runner = CliRunner()
    polled = runner.invoke(main, ["--database-url", api.database_url, "poll", "sm", "--format", "json"])
    assert polled.exit_code == 0, (polled.stdout, polled.stderr)
    assert json.loads(polled.stdout)[0]["ok"] is True
    series = {row["name"]: row for row in admin.get("/api/v1/meters/sm/series").json()}
    # The device reports T (temperature), its relay (pout) and, on newer firmware, powset.
    assert sorted(series) == ["power_limit_w", "relay_on", "temperature_c"]
    assert series["relay_on"]["last_value"] == 1.0 and series["relay_on"]["count"] == 1
    assert series["power_limit_w"]["last_value"] == 3500.0 and series["power_limit_w"]["unit"] == "W"
    temperature = series["temperature_c"]
    assert temperature["unit"] == "°C" and temperature["count"] == 1
    assert temperature["first"] == temperature["last"]
    stored = hub_extras(api, "sm", "temperature_c")
    assert [e.value for e in stored] == [temperature["last_value"]]
    one = admin.get("/api/v1/meters/sm/series/temperature_c", params={"start": "now-1h"}).json()
    assert one["data"] == [{"ts": temperature["last"], "value": temperature["last_value"]}]
    listed = runner.invoke(main, ["--database-url", api.database_url, "series", "sm", "--format", "json"])
    assert listed.exit_code == 0, (listed.stdout, listed.stderr)
    cli_rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert cli_rows["temperature_c"]["last_value"] == temperature["last_value"]
    assert cli_rows["relay_on"]["last_value"] == "on"


def hub_extras(api: ApiServer, meter_id: str, name: str) -> list[Extra]:
    """Return what the store holds of one extra, read the way the poller's writes are read back."""
    return api.store.extras(
        meter_id, name, datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    )


def test_values_and_bucket_figures_are_rounded_to_their_unit(api: ApiServer, admin: httpx.Client) -> None:
    api.store.add_meter(Meter("noisy", "file", tz=OSLO))
    api.store.write_extras(
        [
            Extra("noisy", at(0), "temperature_c", 0.1 + 0.2),
            Extra("noisy", at(1), "temperature_c", 22.099999999999998),
            Extra("noisy", at(0), "rssi_dbm", -70.04999999),
            Extra("noisy", at(0), "board_figure", 1 / 3),
        ]
    )
    raw = admin.get("/api/v1/meters/noisy/series/temperature_c", params=DAY | {"bucket": "raw"}).json()
    assert [row["value"] for row in raw["data"]] == [0.3, 22.1]
    hour = admin.get("/api/v1/meters/noisy/series/temperature_c", params=DAY | {"bucket": "1h"}).json()
    assert {k: hour["data"][0][k] for k in ("min", "avg", "max")} == {"min": 0.3, "avg": 11.2, "max": 22.1}
    listed = {row["name"]: row["last_value"] for row in admin.get("/api/v1/meters/noisy/series").json()}
    assert listed == {"board_figure": 0.333, "rssi_dbm": -70.0, "temperature_c": 22.1}
