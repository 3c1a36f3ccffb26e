"""The benchmark harness runs in quick mode and writes results.json in the documented shape.

Timing goals are not asserted here: a missed goal is a report, not a test failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIO_KEYS = {
    "name", "unit", "value", "reference", "reference_is", "ratio", "goal", "pass", "min", "max",
}


@pytest.mark.slow
def test_quick_bench_writes_the_documented_shape(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "latest_all,offline_year",
         "--rounds", "3", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    document = json.loads(output.read_text())
    assert set(document) == {"python", "sqlite", "rounds", "scenarios"}
    assert isinstance(document["python"], str)
    assert isinstance(document["sqlite"], str)
    assert document["rounds"] == 3
    assert [s["name"] for s in document["scenarios"]] == ["latest_all", "offline_year"]
    for scenario in document["scenarios"]:
        assert set(scenario) == SCENARIO_KEYS
        assert isinstance(scenario["pass"], bool)
        assert isinstance(scenario["unit"], str) and isinstance(scenario["goal"], str)
        assert isinstance(scenario["reference_is"], str) and scenario["reference_is"]
        for key in ("value", "reference", "ratio", "min", "max"):
            assert isinstance(scenario[key], int | float) and scenario[key] > 0, key
        assert scenario["min"] <= scenario["ratio"] <= scenario["max"]
    assert "latest_all" in completed.stdout


def test_unknown_scenarios_are_refused() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "no_such_scenario"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert completed.returncode == 2
    assert "unknown scenario no_such_scenario" in completed.stderr


@pytest.mark.slow
def test_quick_poll_many_reports_the_ratio_and_the_cpu_per_poll(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "poll_many", "--rounds", "1",
         "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    (scenario,) = json.loads(output.read_text())["scenarios"]
    assert set(scenario) == SCENARIO_KEYS
    assert scenario["name"] == "poll_many" and scenario["unit"] == "polls/s"
    assert scenario["ratio"] > 0 and scenario["value"] > 0 and scenario["reference"] > 0
    printed = " ".join(completed.stdout.split())
    assert "throughput ratio ours/reference" in printed and "CPU per poll ours" in printed
    assert "one reading per meter (400)" in printed


DASHBOARD_SCENARIOS = "dashboard_year,dashboard_year_energy,live_latency"


@pytest.mark.slow
def test_quick_dashboard_scenarios_check_their_answers(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", DASHBOARD_SCENARIOS,
         "--rounds", "1", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    scenarios = json.loads(output.read_text())["scenarios"]
    assert [s["name"] for s in scenarios] == ["dashboard_year", "dashboard_year_energy", "live_latency"]
    for scenario in scenarios:
        assert set(scenario) == SCENARIO_KEYS
        for key in ("value", "reference", "ratio", "min", "max"):
            assert isinstance(scenario[key], int | float) and scenario[key] > 0, key
    year, energy, live = scenarios
    assert energy["unit"] == "ms" and "period_sums" in energy["reference_is"]
    assert year["unit"] == "ms" and year["goal"] == "<= 1.5"
    assert live["unit"] == "s" and live["goal"] == "<= 1 s"
    printed = " ".join(completed.stdout.split())
    assert "equal to period_power's rounded to 0.1 W" in printed
    assert "12 monthly import bars equal to period_sums'" in printed
    assert "arriving once as a 'readings' event with the stored values" in printed
    assert "commit to event p50" in printed
