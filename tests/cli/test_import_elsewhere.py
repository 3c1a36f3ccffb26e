"""``meterhub import`` of files made elsewhere, through the real CLI in a subprocess.

A Home Assistant history CSV, any CSV through ``--map``, and local times read in ``--tz``: each
row is stored or rejected with its line and reason; a file whose header or maps do not fit is
refused before anything is written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HA_FILE = """entity_id,state,last_changed
sensor.house_power,1200.5,2026-06-01T10:00:00.000Z
sensor.house_power,unavailable,2026-06-01T10:01:00.000Z
sensor.house_power,1300,2026-06-01T10:02:00.000Z
sensor.house_power,unknown,2026-06-01T10:03:00.000Z
sensor.house_voltage,231.25,2026-06-01T10:00:30.000Z
sensor.house_energy_import,1234.567,2026-06-01T10:00:40.000Z
sensor.outdoor_temperature,12.3,2026-06-01T10:00:40.000Z
sensor.house_power,on,2026-06-01T10:04:00.000Z
"""


def meterhub(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI against the SQLite file ``db``."""
    env = {**os.environ, "METERHUB_DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run(
        [sys.executable, "-m", "meterhub", *args], capture_output=True, text=True, env=env, timeout=120
    )


def exported(db: Path) -> list[dict[str, object]]:
    """Return every stored reading as the NDJSON export gives it."""
    out = meterhub(db, "export", "--start", "2000-01-01", "--end", "2100-01-01", "--format", "ndjson")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_a_home_assistant_history_maps_sensors_by_their_ids(tmp_path: Path) -> None:
    db, path = tmp_path / "hub.db", tmp_path / "history.csv"
    path.write_text(HA_FILE)
    out = meterhub(db, "import", str(path), "--meter", "house")
    assert out.returncode == 0, out.stderr
    assert "rows read: 8, stored: 4, duplicates: 0, rejected: 4" in out.stdout
    assert "line 3: state unavailable: sensor.house_power had no value" in out.stdout
    assert "line 5: state unknown: sensor.house_power had no value" in out.stdout
    assert "line 8: entity not mapped: sensor.outdoor_temperature" in out.stdout
    assert "line 9: power_w is not a number: 'on'" in out.stdout
    rows = {
        (r["ts"], k): v for r in exported(db) for k, v in r.items() if k.endswith(("_w", "_v", "_kwh")) and v
    }
    assert rows == {
        ("2026-06-01T10:00:00+00:00", "power_w"): 1200.5,
        ("2026-06-01T10:02:00+00:00", "power_w"): 1300.0,
        ("2026-06-01T10:00:30+00:00", "voltage_v"): 231.25,
        ("2026-06-01T10:00:40+00:00", "energy_import_kwh"): 1234.567,
    }


def test_explicit_maps_put_entities_on_their_meters(tmp_path: Path) -> None:
    db, path = tmp_path / "hub.db", tmp_path / "history.csv"
    path.write_text(HA_FILE)
    out = meterhub(
        db,
        "import",
        str(path),
        "--map",
        "house/power_w=sensor.house_power",
        "--map",
        "garage/voltage_v=sensor.house_voltage",
    )
    assert out.returncode == 0, out.stderr
    assert "stored: 3" in out.stdout
    meters = {(r["meter"], r["ts"]) for r in exported(db)}
    assert meters == {
        ("house", "2026-06-01T10:00:00+00:00"),
        ("house", "2026-06-01T10:02:00+00:00"),
        ("garage", "2026-06-01T10:00:30+00:00"),
    }


def test_two_sensors_filling_one_quantity_refuse_the_file_before_writing(tmp_path: Path) -> None:
    db, path = tmp_path / "hub.db", tmp_path / "history.csv"
    path.write_text(HA_FILE + "sensor.heat_pump_power,500,2026-06-01T10:05:00Z\n")
    out = meterhub(db, "import", str(path), "--meter", "house")
    assert out.returncode != 0
    assert "sensor.heat_pump_power and sensor.house_power both fill power_w of meter house" in out.stderr
    assert "Traceback" not in out.stderr
    assert exported(db) == []


def test_any_csv_through_a_column_map_with_local_times(tmp_path: Path) -> None:
    db, path = tmp_path / "hub.db", tmp_path / "logger.csv"
    path.write_text(
        "Time;Device;Power (W);Comment\n"
        "2026-03-29 01:30;barn;1,5;before the jump\n"
        "2026-03-29 02:30;barn;2;skipped by the clocks\n"
        "2026-03-29 03:30;barn;2,25;after the jump\n"
        "2026-10-25 02:30;barn;3;happens twice\n"
        "2026-10-25 03:30;barn;4;after the fall back\n"
        "2026-10-25 03:40+01:00;barn;5;its own offset\n"
    )
    out = meterhub(
        db, "import", str(path), "--map", "ts=Time", "--map", "meter=Device",
        "--map", "power_w=Power (W)", "--tz", "Europe/Oslo",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "rows read: 6, stored: 4, duplicates: 0, rejected: 2" in out.stdout
    assert "line 3: bad ts '2026-03-29 02:30': local time 2026-03-29 02:30:00 does not exist" in out.stdout
    assert "line 5: bad ts '2026-10-25 02:30': local time 2026-10-25 02:30:00 happens twice" in out.stdout
    assert [(r["ts"], r["power_w"]) for r in exported(db)] == [
        ("2026-03-29T00:30:00+00:00", 1.5),
        ("2026-03-29T01:30:00+00:00", 2.25),
        ("2026-10-25T02:30:00+00:00", 4.0),
        ("2026-10-25T02:40:00+00:00", 5.0),
    ]


def test_canonical_files_read_local_times_in_tz_by_columns(tmp_path: Path) -> None:
    db, path = tmp_path / "hub.db", tmp_path / "canonical.csv"
    lines = ["meter,ts,power_w"]
    lines += [f"m,2026-10-25T{h:02d}:{m:02d}:00,{h * 60 + m}" for h in range(4) for m in range(0, 60, 15)]
    path.write_text("\n".join(lines) + "\n")
    out = meterhub(db, "import", str(path), "--tz", "Europe/Paris")
    assert out.returncode == 0, out.stderr
    # 02:00..02:45 happen twice in Paris that night: four rows rejected, each with its line.
    assert "rows read: 16, stored: 12, duplicates: 0, rejected: 4" in out.stdout
    for line in (10, 11, 12, 13):
        assert f"line {line}: bad ts" in out.stdout
    stored = [r["ts"] for r in exported(db)]
    assert stored[0] == "2026-10-24T22:00:00+00:00"  # midnight in Paris, summer time
    assert stored[-1] == "2026-10-25T02:45:00+00:00"  # 03:45 in Paris, winter time


def test_a_time_without_offset_and_without_tz_is_refused_with_a_hint(tmp_path: Path) -> None:
    db, path = tmp_path / "hub.db", tmp_path / "naive.csv"
    path.write_text("meter,ts,power_w\nm,2026-06-01T12:00:00,1\n")
    out = meterhub(db, "import", str(path))
    assert out.returncode != 0
    assert "line 2: bad ts '2026-06-01T12:00:00': timestamp '2026-06-01T12:00:00' has no UTC" in out.stdout
    assert "--tz ZONE" in out.stdout


@pytest.mark.parametrize(
    ("maps", "message"),
    [
        (["--map", "power_w=Watts"], "the header has no column 'Watts' (found: Time, Power)"),
        (["--map", "power_w=Power"], "no time column: add --map ts=COLUMN"),
        (["--map", "ts=Time"], "no quantity is mapped"),
        (["--map", "watts=Power"], "unknown quantity 'watts'"),
        (["--map", "power_w"], "write QUANTITY=SOURCE"),
        (["--map", "ts=Time", "--map", "power_w=Power", "--tz", "Mars/Olympus"], "--tz: unknown time zone"),
    ],
)
def test_maps_that_do_not_fit_refuse_the_file_before_writing(
    tmp_path: Path, maps: list[str], message: str
) -> None:
    db, path = tmp_path / "hub.db", tmp_path / "any.csv"
    path.write_text("Time,Power\n2026-06-01T12:00:00Z,5\n")
    out = meterhub(db, "import", str(path), "--meter", "m", *maps)
    assert out.returncode != 0
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert exported(db) == []


def test_a_factor_turns_kilowatts_into_watts(tmp_path: Path) -> None:
    db, path, history = tmp_path / "hub.db", tmp_path / "kw.csv", tmp_path / "history.csv"
    path.write_text("Time;Power (kW)\n2026-06-01T10:00:00Z;1,25\n2026-06-01T10:01:00Z;-0,5\n")
    maps = ("--meter", "m", "--map", "ts=Time", "--map")
    out = meterhub(db, "import", str(path), *maps, "power_w=Power (kW)*1000")
    assert out.returncode == 0, out.stderr
    history.write_text("entity_id,state,last_changed\nsensor.pv_power_kw,2.5,2026-06-01T10:02:00Z\n")
    out = meterhub(db, "import", str(history), "--map", "m/power_w=sensor.pv_power_kw*1000")
    assert out.returncode == 0, out.stderr
    assert [r["power_w"] for r in exported(db)] == [1250.0, -500.0, 2500.0]
    zero = meterhub(db, "import", str(path), *maps, "power_w=Power (kW)*0")
    assert zero.returncode != 0 and "the factor must be a finite number other than 0" in zero.stderr
