"""``meterhub demo`` as a user runs it: a subprocess on free ports, stopped by its PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from meterhub.store import open_store

DEMO_METERS = ("demo-iammeter", "demo-smartmac", "demo-intellimeter", "demo-amsreader", "demo-umeter")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


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
        deadline = time.monotonic() + 60
        while not healthy(port) and time.monotonic() < deadline:
            assert demo.poll() is None, demo.communicate()
            time.sleep(0.2)
        assert healthy(port)
        latest = httpx.get(f"http://127.0.0.1:{port}/api/v1/latest", headers={"X-API-Key": key}, timeout=10)
        assert latest.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/latest", timeout=10).status_code == 401
        seen: set[str] = set()
        while seen != set(DEMO_METERS) and time.monotonic() < deadline + 30:
            time.sleep(0.5)
            seen = meters_with_data(db_url)
        assert seen == set(DEMO_METERS)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
    finally:
        os.kill(demo.pid, signal.SIGTERM)
        try:
            out, err = demo.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()
            out, err = demo.communicate()
            pytest.fail(f"the demo did not stop within 30 s of SIGTERM: {out[-500:]} {err[-2000:]}")
    out = "".join(early) + out
    assert demo.returncode == 0, err
    assert any(line.startswith("API sign-in for the demo: user admin, password ") for line in early)
    assert health["status"] == "ok" and health["meters"] >= 6  # five vendors and the household
    assert f"http://127.0.0.1:{port}/healthz" in out
    assert "Stop with Ctrl-C." in out
    assert "demo data: meter uci-household" in out
    assert all(meter_id in out for meter_id in DEMO_METERS)
    assert out.rstrip().endswith("meterhub demo stopped")
    assert "Traceback" not in err


def test_demo_stopped_while_backfilling_stops_at_once(tmp_path: Path) -> None:
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
        deadline = time.monotonic() + 60
        while not healthy(port) and time.monotonic() < deadline:
            assert demo.poll() is None, demo.communicate()
            time.sleep(0.1)
    finally:
        os.kill(demo.pid, signal.SIGTERM)
        stopping = time.monotonic()
        try:
            out, err = demo.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()
            out, err = demo.communicate()
            pytest.fail(f"the demo did not stop within 30 s of SIGTERM: {err[-2000:]}")
    assert demo.returncode == 0, err
    assert time.monotonic() - stopping < 15
    assert out.rstrip().endswith("meterhub demo stopped")
