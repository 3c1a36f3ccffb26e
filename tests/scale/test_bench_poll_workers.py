"""``python -m bench --quick --only poll_workers``: one and three poller workers on the same meters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends import require_postgres

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.postgres
def test_quick_poll_workers_reports_cpu_per_poll_with_one_and_three_workers(tmp_path: Path) -> None:
    require_postgres()
    output = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "poll_workers", "--rounds", "1",
         "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    (scenario,) = json.loads(output.read_text())["scenarios"]
    assert scenario["name"] == "poll_workers" and scenario["unit"] == "ms CPU/poll"
    assert scenario["value"] > 0 and scenario["reference"] > 0
    ratio = scenario["value"] / scenario["reference"]
    assert scenario["ratio"] == pytest.approx(ratio, rel=0.01)  # results.json rounds its figures
    assert scenario["goal"] == "<= 1.2"
    printed = " ".join(completed.stdout.split())
    assert "every worker held its even share (40 of 120 with three)" in printed
    assert "exactly one meterdata2 call per meter and round (482 with both hubs' login polls)" in printed
    assert "polls/s: three workers" in printed
