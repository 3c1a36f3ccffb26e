"""``meterhub series``: list a meter's device series and read one, in the meter's local time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from meterhub.model import Extra, Meter
from meterhub.store import open_store
from tests.cli.conftest import Run
from tests.simservers import simulator

T0 = datetime(2026, 3, 2, tzinfo=UTC)
"""00:00 UTC is 01:00 in Oslo (UTC+1 in March)."""


@pytest.fixture
def seeded(db_url: str) -> str:
    store = open_store(db_url)
    try:
        store.add_meter(Meter("box", "file", tz="Europe/Oslo"))
        store.add_meter(Meter("bare", "file", tz="Europe/Oslo"))
        minutes = [(0, 20.0), (10, 22.0), (20, 24.0), (65, 10.0), (110, 30.0)]
        store.write_extras(
            [Extra("box", T0 + timedelta(minutes=m), "temperature_c", v) for m, v in minutes]
            + [Extra("box", T0 + timedelta(minutes=3), "relay_on", 1.0)]
        )
    finally:
        store.close()
    return db_url


def test_the_list_shows_units_counts_and_local_times(run: Run, seeded: str) -> None:
    rows = json.loads(run("series", "box", "--format", "json").stdout)
    assert [(r["name"], r["unit"], r["count"]) for r in rows] == [
        ("relay_on", "on/off", 1),
        ("temperature_c", "°C", 5),
    ]
    relay, temperature = rows
    assert relay["last_value"] == "on" and relay["label"] == "Relay"
    # 00:00 and 01:50 UTC are 01:00 and 02:50 in Oslo.
    assert temperature["first"] == "2026-03-02T01:00:00+01:00"
    assert temperature["last"] == "2026-03-02T02:50:00+01:00"
    assert temperature["last_value"] == 30.0
    assert temperature["age"].endswith(" d")  # March is long past
    table = run("series", "box").stdout
    assert table.startswith("box series (Europe/Oslo)") and "°C" in table
    assert json.loads(run("series", "bare", "--format", "json").stdout) == []


def test_one_series_as_values_and_as_buckets(run: Run, seeded: str) -> None:
    # Local 01:00-01:30 is 00:00-00:30 UTC.
    values = run("series", "box", "temperature_c", "--start", "2026-03-02T01:00", "--end", "2026-03-02T01:30",
                 "--format", "csv").stdout  # fmt: skip
    assert values.splitlines() == [
        "ts,value",
        "2026-03-02T01:00:00+01:00,20.0",
        "2026-03-02T01:10:00+01:00,22.0",
        "2026-03-02T01:20:00+01:00,24.0",
    ]
    day = ("--start", "2026-03-02", "--end", "2026-03-03")
    hours = json.loads(
        run("series", "box", "temperature_c", *day, "--bucket", "1h", "--format", "json").stdout
    )
    # 01:00-02:00 local holds 20, 22, 24; 02:00-03:00 local holds 10, 30.
    assert hours == [
        {"start": "2026-03-02T01:00:00+01:00", "end": "2026-03-02T02:00:00+01:00",
         "count": 3, "min": 20.0, "avg": 22.0, "max": 24.0},
        {"start": "2026-03-02T02:00:00+01:00", "end": "2026-03-02T03:00:00+01:00",
         "count": 2, "min": 10.0, "avg": 20.0, "max": 30.0},
    ]  # fmt: skip
    relay = run(
        "series", "box", "relay_on", "--start", "2026-03-02", "--end", "2026-03-03", "--format", "csv"
    )
    assert relay.stdout.splitlines() == ["ts,value", "2026-03-02T01:03:00+01:00,on"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("box", "humidity_pct"),
            "error: meter 'box' has no series 'humidity_pct'; its series are relay_on, ",
        ),
        (
            ("bare", "temperature_c"),
            "error: meter 'bare' has no series 'temperature_c'; it has no device series",
        ),
        (("ghost",), "error: "),
        (("box", "--start", "now-2d"), "error: --start, --end and --bucket read one series: name it"),
        (("box", "temperature_c", "--start", "tomorrowish"), "error: "),
        (("box", "temperature_c", "--start", "2026-03-03", "--end", "2026-03-02"), "must be after"),
    ],
)
def test_mistakes_are_one_line_errors(run: Run, seeded: str, args: tuple[str, ...], message: str) -> None:
    result = run("series", *args, ok=False)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_an_unknown_bucket_is_refused_by_the_option(run: Run, seeded: str) -> None:
    result = run("series", "box", "temperature_c", "--bucket", "2h", ok=False)
    assert result.exit_code == 2 and "'2h' is not one of" in result.stderr


def test_a_polled_ams_reader_lists_rssi_temperature_supply_and_uptime(run: Run, db_url: str) -> None:
    with simulator("amsreader", temperature_sensor=True) as sim:
        run("meters", "add", "ams", "--vendor", "amsreader", "--phases", "3", "--base-url", sim.base_url)
        run("poll", "ams")
    rows = {r["name"]: r for r in json.loads(run("series", "ams", "--format", "json").stdout)}
    units = {name: rows[name]["unit"] for name in ("rssi_dbm", "temperature_c", "vcc_v", "uptime_s")}
    assert units == {"rssi_dbm": "dBm", "temperature_c": "°C", "vcc_v": "V", "uptime_s": "s"}
    assert all(row["count"] == 1 for row in rows.values())
    store = open_store(db_url)
    try:
        stored = store.extras(
            "ams", "rssi_dbm", datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
        )
    finally:
        store.close()
    assert [e.value for e in stored] == [rows["rssi_dbm"]["last_value"]]
    assert -100 < rows["rssi_dbm"]["last_value"] < 0  # a Wi-Fi signal in dBm
