"""The ENTSO-E simulator on loopback for price tests, and the CLI as a subprocess against it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from meterhub.pricefeeds.simulator import DEFAULT_TOKEN, Market, create_app
from tests.simservers import served

__all__ = ["EntsoeSim", "entsoe_simulator", "meterhub"]


@dataclass
class EntsoeSim:
    """A served ENTSO-E simulator: its API URL, its market and its ``/_sim`` routes."""

    base_url: str
    app: Any

    @property
    def api_url(self) -> str:
        """Return the A44 endpoint, as ``--base-url`` and ``base_url`` take it."""
        return f"{self.base_url}/api"

    @property
    def market(self) -> Market:
        """Return the simulator's price generator (the truth stored prices are checked against)."""
        market: Market = self.app.state.market
        return market

    def control(self, method: str, path: str, body: object = None) -> Any:
        """Call a ``/_sim`` route and return its JSON."""
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            answer = client.request(method, path, json=body)
        answer.raise_for_status()
        return answer.json()

    def set_clock(self, now: datetime, speed: float | None = None) -> None:
        """Move the simulated clock (and set its speed)."""
        body: dict[str, Any] = {"now": now.isoformat()}
        if speed is not None:
            body["speed"] = speed
        self.control("POST", "/_sim/clock", body)

    def variants(self, **switches: bool) -> None:
        """Switch variants on or off (``late_publication=True``)."""
        self.control("POST", "/_sim/variants", {k.replace("_", "-"): v for k, v in switches.items()})

    def api_calls(self) -> int:
        """Return how many A44 requests were made."""
        calls: dict[str, int] = self.control("GET", "/_sim/calls")
        return calls.get("/api", 0)


@contextmanager
def entsoe_simulator(now: datetime, speed: float = 0.0) -> Iterator[EntsoeSim]:
    """Serve the simulator with its clock at ``now`` (standing still unless ``speed`` > 0)."""
    app = create_app(seed=1, speed=speed, start=now)
    with served(app) as base_url:
        yield EntsoeSim(base_url, app)


def meterhub(
    db_url: str, *args: str, token: str | None = DEFAULT_TOKEN, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``meterhub ARGS`` as a subprocess with ENTSOE_TOKEN set (unless None) and return it."""
    env = {k: v for k, v in os.environ.items() if k != "ENTSOE_TOKEN"}
    if token is not None:
        env["ENTSOE_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "meterhub", "--database-url", db_url, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout_s,
        check=False,
    )
