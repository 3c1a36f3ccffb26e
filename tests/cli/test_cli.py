"""The data CLI end to end on a real SQLite file."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import Run

CSV_TEXT = """meter,ts,phase,voltage_v,current_a,power_w,energy_import_kwh,energy_export_kwh
house,2026-03-29T00:00:00+01:00,0,230.1,4.35,1000.5,10.0,0.5
house,2026-03-29T00:01:00+01:00,0,229.9,4.4,1012.25,10.016675,0.5
house,2026-03-29T00:02:00+01:00,0,231.0,4.3,990,10.033,0.5
house,2026-03-29T00:02:00+01:00,1,231.0,4.3,990,,
house,1774738980,0,230,4,980,10.049,0.5
"""


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "in.csv"
    path.write_text(CSV_TEXT)
    return path


def test_meters_add_list_remove(run: Run) -> None:
    run(
        "meters",
        "add",
        "m1",
        "--vendor",
        "file",
        "--phases",
        "3",
        "--tz",
        "Europe/Oslo",
        "--interval-s",
        "10",
        "--name",
        "Main fuse",
    )
    listed = json.loads(run("meters", "list", "--format", "json").stdout)
    assert listed == [
        {
            "id": "m1",
            "vendor": "file",
            "phases": 3,
            "tz": "Europe/Oslo",
            "interval_s": 10,
            "name": "Main fuse",
            "last_reading": None,
            "power_w": None,
            "online": None,
            "last_success": None,
            "last_error": None,
            "failures": None,
        }
    ]
    again = run("meters", "add", "m1", "--vendor", "file", ok=False)
    assert again.exit_code == 1
    assert again.stderr.strip() == "error: meter 'm1' exists already"
    assert "removed meter m1" in run("meters", "remove", "m1").stdout
    assert json.loads(run("meters", "list", "--format", "json").stdout) == []


def test_import_twice_stores_nothing_new(run: Run, csv_file: Path) -> None:
    first = run("import", str(csv_file))
    assert "rows read: 5, stored: 5, duplicates: 0, rejected: 0" in first.stdout
    second = run("import", str(csv_file))
    assert "rows read: 5, stored: 0, duplicates: 5, rejected: 0" in second.stdout
    meters = json.loads(run("meters", "list", "--format", "json").stdout)
    assert [(m["id"], m["vendor"]) for m in meters] == [("house", "file")]


def test_import_reports_each_rejected_row_and_keeps_the_rest(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_text(
        '{"meter": "a", "ts": "2026-01-01T00:00:00Z", "power_w": 10}\n'
        '{"meter": "a", "ts": "2026-01-01T00:01:00Z", "voltage_v": 1200}\n'
        '{"meter": "a", "ts": "2026-01-01T00:02:00Z", "power_w": 2e7}\n'
        '{"meter": "a", "ts": "2026-01-01T00:03:00Z", "power_factor": 1.5}\n'
        '{"meter": "a", "ts": "2099-01-01T00:03:00Z", "power_w": 1}\n'
        '{"meter": "a", "ts": "2026-01-01T00:04:00", "power_w": 1}\n'
        "not json\n"
        '{"meter": "a", "ts": "2026-01-01T00:05:00Z", "power_w": "abc"}\n'
        '{"meter": "a", "ts": "2026-01-01T00:06:00Z", "power_w": 20}\n'
    )
    out = run("import", str(path)).stdout
    assert "rows read: 9, stored: 2, duplicates: 0, rejected: 7" in out
    for expected in (
        "line 2: voltage 1200.0 V outside 0..1000 V",
        "line 3: power 20000000.0 W beyond",
        "line 4: power factor 1.5 outside -1..1",
        "line 5: timestamp 2099-01-01T00:03:00+00:00 is more",
        "line 6: bad ts",
        "has no UTC offset",
        "line 7: not JSON",
        "line 8: power_w is not a number",
    ):
        assert expected in out


def test_export_csv_imports_again_unchanged(run: Run, csv_file: Path, tmp_path: Path, db_url: str) -> None:
    run("import", str(csv_file))
    exported = run("export", "--start", "2026-03-28", "--end", "2026-03-30").stdout
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert len(rows) == 5
    assert rows[0]["ts"] == "2026-03-28T23:00:00+00:00"
    assert rows[0]["voltage_v"] == "230.1" and rows[0]["power_w"] == "1000.5"
    assert rows[1]["energy_import_kwh"] == "10.016675"
    again = tmp_path / "again.csv"
    again.write_text(exported)
    assert "stored: 0, duplicates: 5" in run("import", str(again)).stdout
    other = tmp_path / "other.db"
    from click.testing import CliRunner

    from meterhub.cli import main

    url = f"sqlite:///{other}"
    CliRunner().invoke(main, ["--database-url", url, "import", str(again)])
    reexported = (
        CliRunner()
        .invoke(main, ["--database-url", url, "export", "--start", "2026-03-28", "--end", "2026-03-30"])
        .stdout
    )
    assert reexported == exported
    ndjson = run("export", "--start", "2026-03-28", "--end", "2026-03-30", "--format", "ndjson").stdout
    assert [json.loads(line)["phase"] for line in ndjson.splitlines()] == [0, 0, 0, 1, 0]
    array = json.loads(
        run("export", "--start", "2026-03-28", "--end", "2026-03-30", "--format", "json").stdout
    )
    assert array[2]["power_w"] == 990.0 and array[3]["energy_import_kwh"] is None


def test_readings_from_rollups_and_raw(run: Run, csv_file: Path) -> None:
    run("import", str(csv_file))
    hourly = json.loads(
        run(
            "readings",
            "house",
            "--start",
            "2026-03-28T23:00:00Z",
            "--end",
            "2026-03-29T01:00:00Z",
            "--bucket",
            "1h",
            "--format",
            "json",
        ).stdout
    )
    assert len(hourly) == 1
    assert hourly[0]["count"] == 4
    assert hourly[0]["power_max_w"] == 1012.25 and hourly[0]["power_min_w"] == 980
    assert hourly[0]["energy_import_kwh"] == pytest.approx(0.049)
    per_minute = json.loads(
        run(
            "readings",
            "house",
            "--start",
            "2026-03-28T23:00:00Z",
            "--end",
            "2026-03-28T23:04:00Z",
            "--points",
            "4",
            "--format",
            "json",
        ).stdout
    )
    assert [b["count"] for b in per_minute] == [1, 1, 1, 1]
    assert per_minute[0]["voltage_avg_v"] == 230.1
    phase1 = json.loads(
        run(
            "readings",
            "house",
            "--start",
            "2026-03-28T23:00:00Z",
            "--end",
            "2026-03-29T00:00:00Z",
            "--bucket",
            "15m",
            "--phase",
            "1",
            "--format",
            "json",
        ).stdout
    )
    assert [b["count"] for b in phase1] == [1]
    table = run("readings", "house", "--start", "2026-03-28", "--end", "2026-03-30", "--bucket", "1d").stdout
    assert "house phase 0" in table
    as_csv = run(
        "readings",
        "house",
        "--start",
        "2026-03-28",
        "--end",
        "2026-03-30",
        "--bucket",
        "1d",
        "--format",
        "csv",
    ).stdout
    assert as_csv.splitlines()[0].startswith("start,count,power_avg_w")


def test_latest(run: Run, csv_file: Path) -> None:
    run("import", str(csv_file))
    latest = json.loads(run("latest", "--format", "json").stdout)
    assert latest == [
        {
            "meter": "house",
            "ts": "2026-03-28T23:03:00+00:00",
            "power_w": 980.0,
            "voltage_v": 230.0,
            "current_a": 4.0,
            "power_factor": None,
            "frequency_hz": None,
            "energy_import_kwh": 10.049,
            "energy_export_kwh": 0.5,
        }
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("readings", "ghost", "--start", "2026-01-01", "--end", "2026-01-02"),
            "unknown meter 'ghost'",
        ),
        (
            ("export", "--start", "yesterday-ish", "--end", "now"),
            "cannot read time 'yesterday-ish'",
        ),
        (("import", "/nonexistent/file.csv"), "file /nonexistent/file.csv not found"),
        (
            ("meters", "add", "x", "--vendor", "file", "--tz", "Mars/Olympus"),
            "unknown time zone 'Mars/Olympus'",
        ),
        (("export", "--start", "2026-01-02", "--end", "2026-01-01"), "--end must be after --start"),
    ],
)
def test_errors_are_one_line(run: Run, args: tuple[str, ...], message: str) -> None:
    result = run(*args, ok=False)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_bad_file_is_one_line(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("when,watts\n1,2\n")
    result = run("import", str(path), ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the header has no ts column")


def test_unreachable_database_is_one_line_without_password(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "meterhub",
            "--database-url",
            "postgresql://meter:s3cret@127.0.0.1:9/nowhere",
            "latest",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr
    missing_dir = subprocess.run(
        [
            sys.executable,
            "-m",
            "meterhub",
            "--database-url",
            f"sqlite:///{tmp_path}/no/such/dir/x.db",
            "latest",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing_dir.returncode == 1
    assert missing_dir.stderr.startswith("error: cannot open SQLite database")


def test_db_migrate_reports_state(run: Run) -> None:
    assert (
        "applied 0001_core, 0002_rollups_and_gaps, 0003_kv_intervals_extras, 0004_places_prices_health, "
        "0005_users_keys_shares, 0006_coarse_rollups, 0007_extra_rollups, 0008_work_leases, "
        "0009_compact_pg_readings, 0010_compact_rollups" in run("db", "migrate").stdout
    )
    assert "up to date (0010_compact_rollups)" in run("db", "migrate").stdout
