"""``meterhub simulate``: one clear error line, and real simulators on loopback ports."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from meterhub.cli import main
from meterhub.vendors.registry import SIMULATORS, load_factory, vendor_names
from tests.waiting import wait_until


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_unknown_vendor_is_one_line() -> None:
    result = CliRunner().invoke(main, ["simulate", "acme"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: unknown vendor 'acme'; choose one of "
        "iammeter, smartmac, intellimeter, amsreader, umeter or all"
    ]


def test_busy_port_is_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["simulate", "umeter", "--port", str(port)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is busy; choose another with --port"
    ]


def test_registry_names_the_five_vendors() -> None:
    assert vendor_names() == ("iammeter", "smartmac", "intellimeter", "amsreader", "umeter")
    assert all(target.endswith(".simulator:create_app") for _, target in SIMULATORS)
    assert callable(load_factory("umeter"))


@pytest.fixture
def umeter_process() -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", "from meterhub.cli import main; main()", "simulate", "umeter",
         "--port", str(port), "--seed", "7", "--speed", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def sim_info(port: int) -> dict[str, Any] | None:
    try:
        info: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/_sim/info", timeout=10).json()
    except httpx.TransportError:
        return None
    return info


def test_simulate_serves_until_interrupted(
    umeter_process: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = umeter_process
    wait_until(lambda: sim_info(port) is not None, "the simulator to answer")
    info = sim_info(port)
    assert info is not None and info["vendor"] == "umeter" and info["speed"] == 60.0
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert stdout.splitlines()[0] == f"umeter: http://127.0.0.1:{port}"
    assert '"eans"' in stdout
