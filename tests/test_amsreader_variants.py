"""Each real-world variant of the AMS reader, switched on in the simulator, stored right by the hub.

Simulator (variant on through ``POST /_sim/variants``) → ``meterhub meters add`` and ``meterhub
poll`` (the connector) → the SQLite store → ``meterhub readings``. The simulator stands still at
``START`` with a temperature sensor fitted, so each variant changes exactly one thing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from meterhub.cli import main
from meterhub.model import Extra, Reading
from meterhub.store import open_store
from tests.simservers import Sim, simulator

START = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)
METER = "ams"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture
def sim() -> Iterator[Sim]:
    with simulator("amsreader", speed=0.0, start=START, temperature_sensor=True) as served:
        yield served


def cli(db_url: str, *args: str) -> Result:
    result = CliRunner().invoke(main, ["--database-url", db_url, *args])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def poll_with(db_url: str, sim: Sim, variant: str | None) -> tuple[datetime, datetime]:
    """Switch ``variant`` on, add the reader and poll it once; return the real instants around the poll."""
    if variant is not None:
        switched = sim._control("POST", "/_sim/variants", {variant: True})
        assert switched[variant]["on"] is True
    cli(db_url, "meters", "add", METER, "--vendor", "amsreader", "--phases", "3", "--base-url", sim.base_url)
    before = datetime.now(UTC)
    cli(db_url, "poll", METER)
    return before, datetime.now(UTC)


def readings_cli(db_url: str, phase: int, start: datetime, end: datetime) -> list[dict[str, Any]]:
    args = ["readings", METER, "--start", start.isoformat(), "--end", end.isoformat(), "--phase", str(phase)]
    rows: list[dict[str, Any]] = json.loads(cli(db_url, *args, "--format", "json").stdout)
    return [row for row in rows if row["count"]]


def stored(db_url: str) -> tuple[dict[int, Reading], dict[str, Extra]]:
    store = open_store(db_url)
    try:
        latest = {reading.phase: reading for reading in store.latest([METER], phase=None)}
        extras = {
            extra.name: extra
            for name in ("temperature_c", "uptime_s")
            for extra in store.extras(METER, name, START - timedelta(days=400), START + timedelta(days=400))
        }
    finally:
        store.close()
    return latest, extras


def test_the_reader_as_simulated_by_default(db_url: str, sim: Sim) -> None:
    poll_with(db_url, sim, None)
    latest, extras = stored(db_url)
    [total] = readings_cli(db_url, 0, START, START + timedelta(minutes=1))
    [l2] = readings_cli(db_url, 2, START, START + timedelta(minutes=1))
    # NTP set: stamped by the reader's clock; a list-4 meter: per-phase power and registers.
    assert total["start"].startswith("2026-03-04T10:30") and latest[0].energy_import_kwh is not None
    assert l2["current_avg_a"] is not None and l2["power_avg_w"] is not None
    assert latest[1].power_factor is not None and latest[0].ts == START
    assert "temperature_c" in extras


def test_unset_clock_is_stamped_when_received(db_url: str, sim: Sim) -> None:
    before, after = poll_with(db_url, sim, "unset_clock")
    data = sim._control("GET", "/data.json")
    latest, _ = stored(db_url)
    # The reader's clock counts seconds since boot (the simulator booted at START and stands
    # still there): 0, before 2020, so the hub stamps the reading when it arrived.
    assert data["c"] == data["u"] == 0
    assert before <= latest[0].ts <= after
    assert readings_cli(db_url, 0, START - timedelta(hours=1), START + timedelta(hours=1)) == []
    assert len(readings_cli(db_url, 0, before - timedelta(minutes=1), after + timedelta(minutes=1))) == 1


def test_old_layout_has_no_per_phase_power(db_url: str, sim: Sim) -> None:
    poll_with(db_url, sim, "old_layout")
    data = sim._control("GET", "/data.json")
    sysinfo = sim._control("GET", "/sysinfo.json")
    latest, _ = stored(db_url)
    [l1] = readings_cli(db_url, 1, START, START + timedelta(minutes=1))
    assert sysinfo["version"] == "v2.2.28" and "l1" not in data and "u1" in data
    # Flat data.json: voltage, current and power factor per phase, no per-phase power at all.
    assert l1["voltage_avg_v"] == data["u1"] and l1["current_avg_a"] == data["i1"]
    assert l1["power_avg_w"] is None and latest[1].power_w is None
    assert latest[1].power_factor == data["f1"]


def test_kaifa_it_list2_keeps_only_what_the_meter_sends(db_url: str, sim: Sim) -> None:
    poll_with(db_url, sim, "kaifa_it_list2")
    data = sim._control("GET", "/data.json")
    latest, _ = stored(db_url)
    [total] = readings_cli(db_url, 0, START, START + timedelta(minutes=1))
    [l2] = readings_cli(db_url, 2, START, START + timedelta(minutes=1))
    assert data["l2"]["e"] is True and data["ds"] == 1 and data["mt"] == 2
    assert data["ic"] == 0.0 and data["l1"]["p"] == 0 and data["f"] == 0.0
    # L2 current missing; per-phase power, power factors and the 0.000 registers are not readings.
    assert l2["current_avg_a"] is None and l2["voltage_avg_v"] == data["l2"]["u"]
    assert l2["power_avg_w"] is None
    assert total["power_avg_w"] == data["i"] - data["e"]
    assert latest[0].energy_import_kwh is None and latest[0].power_factor is None
    assert latest[1].power_w is None and latest[1].power_factor is None
    assert latest[1].current_a == data["l1"]["i"]


def test_no_temperature_sensor_stores_no_temperature(db_url: str, sim: Sim) -> None:
    poll_with(db_url, sim, "no_temperature_sensor")
    data = sim._control("GET", "/data.json")
    _, extras = stored(db_url)
    assert data["t"] == -127.0
    assert "temperature_c" not in extras and "uptime_s" in extras


def test_an_unknown_variant_is_refused_naming_the_known_ones(sim: Sim) -> None:
    answer = sim._control("GET", "/_sim/variants")
    assert sorted(answer) == ["kaifa_it_list2", "no_temperature_sensor", "old_layout", "unset_clock"]
    assert all(not state["on"] and state["about"] for state in answer.values())
