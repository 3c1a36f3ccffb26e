"""``meterhub demo`` as a user runs it: a subprocess on free ports, stopped by its PID."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from meterhub.store import open_store
from tests.waiting import wait_until

STOP_DEADLINE_S = 120.0
"""A deadline for stopping, far beyond any plausible delay: how fast it stops is not asserted."""
DEMO_METERS = (
    "demo-iammeter",
    "demo-smartmac",
    "demo-intellimeter",
    "demo-amsreader",
    "demo-umeter",
    "demo-farm-grid",
    "demo-farm-solar",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def serving(demo: subprocess.Popen[str], port: int) -> bool:
    """Tell whether the demo answers /healthz; fail at once if it has exited instead."""
    if demo.poll() is not None:
        out, err = demo.communicate()
        pytest.fail(f"the demo exited with {demo.returncode}: {out[-500:]} {err[-2000:]}")
    return healthy(port)


def terminate(demo: subprocess.Popen[str]) -> tuple[str, str]:
    """Send SIGTERM and return the demo's output once it has exited (however long a busy box takes)."""
    os.kill(demo.pid, signal.SIGTERM)
    try:
        return demo.communicate(timeout=STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        demo.kill()
        out, err = demo.communicate()
        pytest.fail(f"no exit {STOP_DEADLINE_S:g} s after SIGTERM: {out[-500:]} {err[-2000:]}")


def meters_with_data(db_url: str) -> set[str]:
    """Return the demo meters that hold readings (or, for interval-only vendors, intervals)."""
    store = open_store(db_url)
    try:
        now = datetime.now(UTC)
        return {
            meter_id
            for meter_id in DEMO_METERS
            if store.latest([meter_id]) or store.intervals(meter_id, now - timedelta(days=2), now)
        }
    finally:
        store.close()


@pytest.mark.slow
def test_demo_serves_five_simulated_vendors_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    db_url = f"sqlite:///{tmp_path / 'demo.db'}"
    command = [sys.executable, "-m", "meterhub", "--database-url", db_url, "demo", "--port", str(port)]
    demo = subprocess.Popen(
        [*command, "--history-h", "3"],
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    early: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:  # the sign-in lines come first, before the simulators start
            early.append(line)
            if line.startswith("API key for the demo: "):
                break
        key = early[-1].split(": ", 1)[1].strip()
        for line in demo.stdout:  # then the simulators, and the commands to try in another shell
            early.append(line)
            if line.startswith("Stop with Ctrl-C."):
                break
        wait_until(partial(serving, demo, port), "the demo to answer /healthz")
        latest = httpx.get(f"http://127.0.0.1:{port}/api/v1/latest", headers={"X-API-Key": key}, timeout=10)
        assert latest.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/latest", timeout=10).status_code == 401
        wait_until(lambda: meters_with_data(db_url) == set(DEMO_METERS), "data from every demo meter")
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=60).json()
        dashboard = next(line for line in early if line.startswith("Dashboard: "))
        overview = signed_in_overview(port, dashboard.rsplit("password ", 1)[1].rstrip(")\n"))
        place = demo_place_figures(port, key)
        wait_until(lambda: meters_with_data(db_url) == set(DEMO_METERS), "data from every demo meter")
        explored = run_explore_commands("".join(early), tmp_path)
    finally:
        out, err = terminate(demo)
    out = "".join(early) + out
    assert demo.returncode == 0, err
    assert dashboard.startswith(f"Dashboard: http://127.0.0.1:{port}/  (sign in as admin, password ")
    assert all(f'data-meter="{meter_id}"' in overview for meter_id in (*DEMO_METERS, "uci-household"))
    roles = "grid demo-farm-grid, solar demo-farm-solar, special load demo-smartmac"
    assert f"demo place demo-farm: {roles}" in out
    energy, cost, capacity = place
    assert energy["consumption_kwh"] > 0 and energy["self_sufficiency_ratio"] is not None
    assert cost["currency"] == "NOK" and cost["total_cost"] > 0
    assert capacity["hours"] > 0 and capacity["month_value_kwh"] > 0 and capacity["step_kwh"] is not None
    assert health["status"] == "ok" and health["meters"] >= 6  # five vendors and the household
    assert f"http://127.0.0.1:{port}/healthz" in out
    assert "Stop with Ctrl-C." in out
    assert "demo data: meter uci-household" in out
    assert all(meter_id in out for meter_id in DEMO_METERS)
    assert out.rstrip().endswith("meterhub demo stopped")
    assert "Traceback" not in err
    assert [command.split()[-2:] for command, _ in explored][-1] == ["demo-smartmac", "on"]
    for command, answer in explored:
        assert answer.returncode == 0, f"{command}: {answer.stderr}"
        assert answer.stdout.strip() and "error" not in answer.stderr, command
    relay = explored[-1][1].stdout
    assert "demo-smartmac" in relay and "on" in relay


def run_explore_commands(out: str, demo_dir: Path) -> list[tuple[str, subprocess.CompletedProcess[str]]]:
    """Run each command the demo printed, as printed, in a new shell elsewhere with none of the
    demo's environment: its ``cd`` line first, then each meterhub command on its own."""
    block = out.split("Explore, in another shell (each line works as printed):\n", 1)[1]
    lines = [line.strip() for line in block.split("Stop with Ctrl-C.", 1)[0].splitlines() if line.strip()]
    assert lines[0] == f"cd {demo_dir}" and len(lines) >= 5, lines
    environment = {name: value for name, value in os.environ.items() if not name.startswith("METERHUB_")}
    environment["COLUMNS"] = "200"
    assert "|" not in " ".join(lines)
    return [
        (
            command,
            subprocess.run(
                ["bash", "-c", f"{lines[0]} && {command}"],
                cwd="/",
                env=environment,
                capture_output=True,
                text=True,
                timeout=STOP_DEADLINE_S,
                check=False,
            ),
        )
        for command in lines[1:]
    ]


def demo_place_figures(port: int, key: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Return the demo place's energy and cost of the last three hours, and its capacity month."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1/places/demo-farm", timeout=60) as client:
        headers = {"X-API-Key": key}
        span = {"start": "now-3h", "end": "now", "groupby": "month"}
        energy = client.get("/energy", params=span, headers=headers)
        cost = client.get("/cost", params=span, headers=headers)
        capacity = client.get("/capacity", headers=headers)
    for answer in (energy, cost, capacity):
        assert answer.status_code == 200, answer.text
    return energy.json()["data"][-1], cost.json(), capacity.json()


def signed_in_overview(port: int, password: str) -> str:
    """Sign in on the dashboard's form as the demo's admin and return the overview page."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60, follow_redirects=True) as client:
        form = client.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token is not None, form
        fields = {"username": "admin", "password": password, "csrf_token": token.group(1), "next": "/"}
        page = client.post("/login", data=fields)
        assert page.status_code == 200 and page.url.path == "/", page.text
        return page.text


def test_demo_stopped_while_backfilling_stops_cleanly_without_finishing_it(tmp_path: Path) -> None:
    port = free_port()
    db_url = f"sqlite:///{tmp_path / 'demo.db'}"
    command = [sys.executable, "-m", "meterhub", "--database-url", db_url, "demo", "--port", str(port)]
    demo = subprocess.Popen(
        [*command, "--history-h", "240"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(partial(serving, demo, port), "the demo to answer /healthz")
    finally:
        out, err = terminate(demo)
    assert demo.returncode == 0, err
    assert "Polling live." not in out  # stopped in the midst of ten days of backfill, not after it
    assert out.rstrip().endswith("meterhub demo stopped")
    assert "Traceback" not in err
