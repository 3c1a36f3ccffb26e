"""A vendor simulator, an HTTP client on it, and a real SQLite store for a connector's tokens and quotas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette

from meterhub.store.sqlite import SQLiteStore


@dataclass
class SimulatorRig:
    """What a connector under test talks to, and the simulator's own controls."""

    app: Starlette
    http: httpx.AsyncClient
    store: SQLiteStore
    base_url: str

    async def calls(self) -> dict[str, int]:
        """Return how often the simulator was called, per path."""
        return dict((await self.http.get(f"{self.base_url}/_sim/calls")).json())

    async def faults(self, **faults: Any) -> None:
        """Switch the simulator's faults."""
        answer = await self.http.post(f"{self.base_url}/_sim/faults", json=faults)
        assert answer.status_code == 200, answer.text
