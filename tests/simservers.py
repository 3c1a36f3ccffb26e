"""Serve vendor simulators over real loopback HTTP for tests, and talk to their /_sim routes."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import uvicorn

from meterhub.poller import Clock
from meterhub.poller.hub import QuietServer, bind_socket
from meterhub.vendors.registry import load_factory
from meterhub.vendors.simkit import SimulatedOffline
from tests.waiting import DEADLINE_S, wait_until


class _DropSimulatedOffline(logging.Filter):
    """Hide the traceback uvicorn logs when a simulator drops a connection on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, SimulatedOffline)


@contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve an ASGI app on a free loopback port in a thread; yield its base URL."""
    logging.getLogger("uvicorn.error").addFilter(_DropSimulatedOffline())
    sock = bind_socket("127.0.0.1", 0)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = QuietServer(config)
    thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[sock]),), daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), "a simulator to start serving")
    assert server.started, "the simulator's server thread ended before it served"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        server.force_exit = True  # answers still held back by a latency fault are not waited for
        thread.join(DEADLINE_S)
        sock.close()


@contextmanager
def simulator(vendor: str, speed: float = 1.0, **options: Any) -> Iterator[Sim]:
    """Serve one vendor's simulator on loopback and yield a handle on it."""
    app = load_factory(vendor)(seed=1, speed=speed, **options)
    with served(app) as base_url:
        yield Sim(vendor, base_url, app, speed)


class Sim:
    """A served simulator: its address and its ``/_sim`` control routes."""

    def __init__(self, vendor: str, base_url: str, app: Any, speed: float) -> None:
        self.vendor = vendor
        self.base_url = base_url
        self.app = app
        self.speed = speed

    def _control(self, method: str, path: str, body: object = None) -> Any:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            answer = client.request(method, path, json=body)
        answer.raise_for_status()
        return answer.json()

    def info(self) -> dict[str, Any]:
        """Return ``GET /_sim/info``."""
        info: dict[str, Any] = self._control("GET", "/_sim/info")
        return info

    def calls(self) -> dict[str, int]:
        """Return ``GET /_sim/calls``: requests per route."""
        calls: dict[str, int] = self._control("GET", "/_sim/calls")
        return calls

    def call_times(self) -> dict[str, list[datetime]]:
        """Return ``GET /_sim/calls?times=true``: the simulated instant of every call, per route."""
        times: dict[str, list[str]] = self._control("GET", "/_sim/calls?times=true")
        return {path: [datetime.fromisoformat(at) for at in ats] for path, ats in times.items()}

    def faults(self, **faults: Any) -> None:
        """Set faults with ``POST /_sim/faults`` (no arguments clears them)."""
        self._control("POST", "/_sim/faults", faults)

    def now(self) -> datetime:
        """Return the simulated time."""
        return datetime.fromisoformat(self.info()["now"])

    def clock(self) -> Clock:
        """Return a hub clock that runs with the simulator's (to within half a round trip)."""
        return self.clock_and_round_trip()[0]

    def clock_and_round_trip(self) -> tuple[Clock, float]:
        """Return :meth:`clock` and the real seconds the round trip took (the clock's error bound)."""
        before_s = time.monotonic()
        now = self.now()
        after_s = time.monotonic()
        middle_s = (before_s + after_s) / 2
        clock = Clock(now + timedelta(seconds=(time.monotonic() - middle_s) * self.speed), self.speed)
        return clock, after_s - before_s
