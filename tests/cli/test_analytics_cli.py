"""Places, prices, energy, cost, capacity and analysis verbs end to end on a real SQLite file."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from meterhub.model import Meter, Reading
from meterhub.store.sqlite import SQLiteStore
from tests.cli.conftest import Run

OSLO = "Europe/Oslo"
DAY = datetime(2026, 3, 28, 23, tzinfo=UTC)  # 2026-03-29 00:00 in Oslo: a 23-hour day


@pytest.fixture
def filled(db_url: str, run: Run) -> Run:
    """Two meters over Oslo's spring-forward day: grid at 1 kW (export 1 kW 10-14 UTC), solar 2 kW by day."""
    store = SQLiteStore(db_url.removeprefix("sqlite:///"))
    try:
        store.add_meter(Meter("grid", "file", tz=OSLO, interval_s=60))
        store.add_meter(Meter("pv", "file", tz=OSLO, interval_s=60))
        readings: list[Reading] = []
        imp = exp = pv = 0.0
        for minute in range(0, 23 * 60 + 1):
            ts = DAY + timedelta(minutes=minute)
            power_w = -1000.0 if 10 <= ts.hour < 14 else 1000.0
            pv_w = 2000.0 if 8 <= ts.hour < 16 else 0.0
            if not 4 * 60 < minute < 6 * 60:  # silent 03:00-05:00 UTC
                registers = {"energy_import_kwh": round(imp, 6), "energy_export_kwh": round(exp, 6)}
                readings.append(Reading("grid", ts, power_w=power_w, **registers))
                readings.append(Reading("pv", ts, power_w=pv_w, energy_import_kwh=round(pv, 6)))
            imp += max(power_w, 0) / 60_000
            exp += max(-power_w, 0) / 60_000
            pv += pv_w / 60_000
        store.write_readings(sorted(readings, key=lambda r: (r.meter, r.ts)))
    finally:
        store.close()
    run("places", "add", "home", "--tz", OSLO, "--name", "Home")
    run("places", "attach", "home", "grid", "--role", "grid")
    run("places", "attach", "home", "pv", "--role", "solar")
    return run


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_places_add_attach_list_detach(filled: Run) -> None:
    listed = json.loads(filled("places", "list", "--format", "json").stdout)
    assert listed == [
        {"id": "home", "tz": OSLO, "name": "Home", "meters": "grid:grid solar:pv", "tariff": ""}
    ]
    filled("places", "detach", "home", "pv")
    assert json.loads(filled("places", "list", "--format", "json").stdout)[0]["meters"] == "grid:grid"
    error = filled("places", "detach", "home", "pv", ok=False)
    assert error.exit_code == 1
    assert error.stderr == "error: meter 'pv' is not in place 'home'\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("places", "add", "x", "--tz", "Mars/Base"), "unknown time zone 'Mars/Base'"),
        (("places", "add", "home", "--tz", OSLO), "exists already"),
        (("places", "attach", "nowhere", "grid", "--role", "grid"), "unknown place 'nowhere'"),
        (("places", "attach", "home", "ghost", "--role", "grid"), "unknown meter 'ghost'"),
        (("places", "tariff", "home", "--price", "1"), "needs a currency"),
        (("places", "tariff", "home", "--currency", "NOK", "--peak-hours", "7to23"), "--peak-hours"),
        (("energy", "grid", "--place", "home", "--start", "2026-03-29", "--end", "2026-03-30"), "not both"),
        (("energy", "grid", "--start", "yesterday-ish", "--end", "now"), "cannot read time"),
        (("cost", "--place", "home", "--start", "2026-03-29", "--end", "2026-03-30"), "has no tariff"),
        (("capacity", "home", "--month", "March"), "YYYY-MM"),
        (("analyze", "power", "ghost", "--start", "2026-03-29", "--end", "2026-03-30"), "unknown meter"),
    ],
)
def test_errors_are_one_line(filled: Run, args: tuple[str, ...], message: str) -> None:
    result = filled(*args, ok=False)
    assert result.exit_code in (1, 2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_energy_of_a_meter_and_a_place(filled: Run) -> None:
    hours = json.loads(
        filled(
            "energy",
            "grid",
            "--start",
            "2026-03-29",
            "--end",
            "2026-03-30",
            "--groupby",
            "hour",
            "--format",
            "json",
        ).stdout
    )
    assert len(hours) == 23
    assert hours[0]["start"] == "2026-03-29T00:00:00+01:00"
    assert hours[3]["start"] == "2026-03-29T04:00:00+02:00"
    assert {h["source"] for h in hours} == {"registers", "estimated"}
    assert [h["estimated"] for h in hours].count(True) == 2
    assert all(h["energy_import_kwh"] >= 0 for h in hours)
    (day,) = rows(
        filled(
            "energy", "--place", "home", "--start", "2026-03-29", "--end", "2026-03-30", "--format", "csv"
        ).stdout
    )
    assert float(day["yield_kwh"]) == pytest.approx(16.0)
    assert float(day["to_grid_kwh"]) == pytest.approx(4.0)
    assert float(day["from_grid_kwh"]) == pytest.approx(19.0)
    assert float(day["self_use_kwh"]) == pytest.approx(12.0)
    assert float(day["consumption_kwh"]) == pytest.approx(31.0)
    assert float(day["self_sufficiency_ratio"]) == pytest.approx(12 / 31, abs=5e-5)  # to 0.0001
    assert (day["source"], day["estimated"]) == ("registers+estimated", "True")
    utc_days = json.loads(
        filled(
            "energy",
            "grid",
            "--start",
            "2026-03-29T00:00Z",
            "--end",
            "2026-03-29T01:00Z",
            "--tz",
            "UTC",
            "--format",
            "json",
        ).stdout
    )
    assert utc_days[0]["start"] == "2026-03-29T00:00:00+00:00"
    table = filled("energy", "grid", "--start", "2026-03-29", "--end", "2026-03-30").stdout
    assert "energy of grid per 1d (Europe/Oslo)" in table and "True" in table


def test_prices_import_list_and_cost(filled: Run, tmp_path: Path) -> None:
    lines = ["start,resolution,price,currency"]
    lines += [f"{(DAY + k * timedelta(minutes=15)).isoformat()},15m,{1 + (k % 4)},NOK" for k in range(92)]
    prices = tmp_path / "spot.csv"
    prices.write_text("\n".join(lines) + "\n")
    imported = filled("prices", "import", str(prices), "--series", "spot").stdout
    assert imported.startswith("series spot: 92 slots read, 92 stored, 0 unchanged")
    assert json.loads(filled("prices", "list", "--format", "json").stdout) == [
        {
            "series": "spot",
            "direction": "import",
            "currency": "NOK",
            "slots": 92,
            "start": "2026-03-28T23:00:00+00:00",
            "end": "2026-03-29T22:00:00+00:00",
        }
    ]
    changed = filled(
        "places",
        "tariff",
        "home",
        "--currency",
        "nok",
        "--series",
        "spot",
        "--export-price",
        "0.5",
        "--fee-day",
        "10",
    ).stdout
    assert changed == "home: currency=NOK export_per_kwh=0.5 fee_per_day=10.0 import_series=spot\n"
    assert filled("places", "tariff", "home").stdout == changed
    hourly = json.loads(
        filled(
            "cost",
            "--place",
            "home",
            "--start",
            "2026-03-29",
            "--end",
            "2026-03-30",
            "--groupby",
            "hour",
            "--format",
            "json",
        ).stdout
    )
    assert len(hourly) == 23
    first = hourly[0]
    # 1 kW in each quarter of the first hour at 1, 2, 3 and 4 NOK/kWh: 0.25 kWh x 10 NOK.
    assert first["import_cost"] == pytest.approx(2.5)
    assert first["fees"] == pytest.approx(10 / 23, abs=5e-6)  # money to 0.00001
    noon = next(h for h in hourly if h["start"] == "2026-03-29T12:00:00+02:00")
    assert (noon["energy_export_kwh"], noon["export_credit"]) == (pytest.approx(1.0), pytest.approx(0.5))
    (meter_day,) = json.loads(
        filled("cost", "grid", "--start", "2026-03-29", "--end", "2026-03-30", "--format", "json").stdout
    )
    assert meter_day["total_cost"] == pytest.approx(sum(h["total_cost"] for h in hourly), abs=5e-4)
    assert meter_day["currency"] == "NOK"
    switched = filled("places", "tariff", "home", "--price", "2").stdout
    assert "import_series" not in switched and "import_per_kwh=2.0" in switched


def test_capacity_of_the_place(filled: Run) -> None:
    figures = json.loads(filled("capacity", "home", "--month", "2026-03", "--format", "json").stdout)
    assert figures["month"] == "2026-03"
    assert figures["hours"] == 23
    assert [p["day"] for p in figures["peaks"]] == ["2026-03-29"]
    assert figures["peaks"][0]["energy_kwh"] == pytest.approx(1.0)
    assert (figures["step_kwh"], figures["next_threshold_kwh"]) == (5.0, 10.0)
    custom = rows(
        filled(
            "capacity",
            "home",
            "--month",
            "2026-03",
            "--thresholds",
            "0.5,2",
            "--peaks",
            "1",
            "--format",
            "csv",
        ).stdout
    )
    assert (custom[0]["step_kwh"], custom[0]["next_threshold_kwh"]) == ("2.0", "")
    assert "capacity of home in 2026-03" in filled("capacity", "home", "--month", "2026-03").stdout


def test_analyze_power_and_offline(filled: Run) -> None:
    (power,) = json.loads(
        filled(
            "analyze", "power", "grid", "--start", "2026-03-29", "--end", "2026-03-30", "--format", "json"
        ).stdout
    )
    assert (power["min_w"], power["max_w"]) == (-1000.0, 1000.0)
    offline = json.loads(
        filled(
            "analyze", "offline", "grid", "--start", "2026-03-29", "--end", "2026-03-30", "--format", "json"
        ).stdout
    )
    assert offline["gaps"] == 1
    assert offline["offline_min"] == pytest.approx(120.0)
    assert offline["list"][0]["start"] == "2026-03-29T05:00:00+02:00"
    assert offline["list"][0]["duration_min"] == pytest.approx(120.0)  # the API's names
    table = filled("analyze", "offline", "grid", "--start", "2026-03-29", "--end", "2026-03-30").stdout
    assert "1 gaps, 120.0 minutes offline" in table


def test_tariff_changes_keep_the_rest_and_switch_pricing_whole(filled: Run) -> None:
    filled("places", "tariff", "home", "--currency", "EUR", "--price", "0.3", "--fee-month", "5")
    tou = filled(
        "places",
        "tariff",
        "home",
        "--peak-price",
        "0.4",
        "--offpeak-price",
        "0.2",
        "--peak-hours",
        "8-20",
        "--peak-days",
        "all",
    ).stdout
    assert "import_per_kwh" not in tou and "fee_per_month=5.0" in tou
    again = filled("places", "tariff", "home", "--peak-price", "0.5").stdout
    assert again == (
        "home: currency=EUR fee_per_month=5.0 offpeak_per_kwh=0.2 peak_end_hour=20 peak_per_kwh=0.5 "
        "peak_start_hour=8 peak_weekdays_only=False\n"
    )
    cleared = filled(
        "places", "tariff", "home", "--clear", "--capacity-thresholds", "2,5,10", "--capacity-peaks", "2"
    ).stdout
    assert cleared == "home: capacity_peak_days=2 capacity_thresholds_kwh=2.0,5.0,10.0\n"
    figures = json.loads(filled("capacity", "home", "--month", "2026-03", "--format", "json").stdout)
    assert figures["thresholds_kwh"] == [2.0, 5.0, 10.0]
