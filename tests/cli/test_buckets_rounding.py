"""Bucket names, ISO weeks through a DST change, and rounded numbers, through the CLI in a subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from meterhub.model import Meter, Reading
from meterhub.store import open_store

OSLO = "Europe/Oslo"
FIRST = datetime(2026, 3, 15, 23, tzinfo=UTC)  # Monday 16 March 2026, local midnight
HOURS = 3 * 168 - 1  # three ISO weeks; the second is an hour short (29 March springs forward)


def meterhub(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "METERHUB_DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run(
        [sys.executable, "-m", "meterhub", *args], capture_output=True, text=True, env=env, timeout=120
    )


def json_of(db: Path, *args: str) -> Any:
    out = meterhub(db, *args, "--format", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A meter in Oslo with hourly readings over three weeks: 1 kWh an hour, powers 1, 2, 2 W."""
    path = tmp_path / "hub.db"
    store = open_store(f"sqlite:///{path}")
    store.add_meter(Meter("oslo", "file", tz=OSLO, interval_s=3600))
    store.write_readings(
        [
            Reading("oslo", FIRST + timedelta(hours=k), power_w=(1.0, 2.0, 2.0)[k % 3], energy_import_kwh=k)
            for k in range(HOURS + 1)
        ]
    )
    store.close()
    return path


WEEK_STARTS = ["2026-03-16T00:00:00+01:00", "2026-03-23T00:00:00+01:00", "2026-03-30T00:00:00+02:00"]


def test_energy_per_iso_week_through_the_spring_change(db: Path) -> None:
    weeks = json_of(db, "energy", "oslo", "--start", "2026-03-16", "--end", "2026-04-06", "--bucket", "1w")
    assert isinstance(weeks, list)
    assert [w["start"] for w in weeks] == WEEK_STARTS
    assert [w["energy_import_kwh"] for w in weeks] == [168.0, 167.0, 168.0]
    # The former option and word give the same answer.
    span = ("--start", "2026-03-16", "--end", "2026-04-06")
    assert json_of(db, "energy", "oslo", *span, "--groupby", "week") == weeks
    months = json_of(db, "energy", "oslo", "--start", "2026-03-16", "--end", "2026-04-06", "--bucket", "1mo")
    assert months == json_of(
        db, "energy", "oslo", "--start", "2026-03-16", "--end", "2026-04-06", "--groupby", "month"
    )
    assert [m["start"] for m in months] == ["2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00"]


def test_readings_per_iso_week_label_mondays_local_midnight(db: Path) -> None:
    weeks = json_of(db, "readings", "oslo", "--start", "2026-03-16", "--end", "2026-04-06", "--bucket", "1w")
    assert isinstance(weeks, list)
    assert [w["start"] for w in weeks] == [
        "2026-03-15T23:00:00+00:00", "2026-03-22T23:00:00+00:00", "2026-03-29T22:00:00+00:00"
    ]  # fmt: skip
    assert [w["count"] for w in weeks] == [168, 167, 168]
    assert json_of(
        db, "readings", "oslo", "--start", "2026-03-16", "--end", "2026-04-06", "--bucket", "week"
    ) == weeks
    table = meterhub(db, "readings", "oslo", "--start", "2026-03-16", "--end", "2026-04-06", "--bucket", "1w")
    assert "2026-03-30 00:00:00+02:00 Europe/Oslo" in table.stdout


def test_help_names_the_buckets_and_the_accepted_former_words(db: Path) -> None:
    for verb in ("energy", "cost", "readings"):
        text = " ".join(meterhub(db, verb, "--help").stdout.split())
        assert "15m, 1h, 1d, 1w, 1mo, 1y" in text, verb
        assert "hour, day, week, month, year are accepted" in text, verb
    wrong = meterhub(db, "energy", "oslo", "--start", "2026-03-16", "--bucket", "fortnight")
    assert wrong.returncode != 0 and "fortnight" in wrong.stderr and "Traceback" not in wrong.stderr
    clash = meterhub(db, "energy", "oslo", "--start", "2026-03-16", "--bucket", "1d", "--groupby", "month")
    assert clash.returncode != 0 and "--bucket and --groupby name different periods" in clash.stderr


def test_every_format_and_the_table_show_the_same_rounded_numbers(db: Path) -> None:
    span = ("--start", "2026-03-16", "--end", "2026-03-17", "--bucket", "1d")
    (day,) = json_of(db, "readings", "oslo", *span)
    assert day["power_avg_w"] == 1.67  # (1 + 2 + 2) / 3, to the hundredth of a watt
    (row,) = csv.DictReader(io.StringIO(meterhub(db, "readings", "oslo", *span, "--format", "csv").stdout))
    assert row["power_avg_w"] == "1.67"
    table = meterhub(db, "readings", "oslo", *span).stdout
    assert " 1.67 " in table and "1.666" not in table
    exported = meterhub(db, "export", "--start", "2026-03-16", "--end", "2026-03-17", "--format", "ndjson")
    for line in exported.stdout.splitlines():
        record = json.loads(line)
        assert record["energy_import_kwh"] == round(record["energy_import_kwh"], 6)
