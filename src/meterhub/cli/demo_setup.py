"""What ``meterhub demo`` sets up: the five vendor simulators on loopback and a meter of each.

Each simulator is served in process by uvicorn on its own socket. Its ``/_sim/info`` gives the
credentials, which go into files only their owner may read, in ``meterhub-demo-secrets/`` beside
the database; the demo meters hold only ``file:/path`` references to them, exactly as a real
configuration would, so any shell of the same user can run commands that call a simulated vendor.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from meterhub.backfills import check_keeps_history
from meterhub.errors import InputError, MeterhubError, UnknownMeterError
from meterhub.model import Meter, utc_now
from meterhub.poller.backfill import BackfillLedger, backfill_meter, resume
from meterhub.poller.connectors import HTTP_LIMITS, HTTP_TIMEOUT, ConnectorFactory
from meterhub.poller.hub import QuietServer, bind_socket
from meterhub.store import Store
from meterhub.vendors.registry import load_factory, vendor_names

__all__ = [
    "DemoSimulator",
    "backfill_recent",
    "demo_meter",
    "demo_secrets_dir",
    "secret_reference",
    "start_simulators",
    "upsert_meter",
]


@dataclass(slots=True)
class DemoSimulator:
    """One vendor simulator the demo serves."""

    vendor: str
    app: Any
    sock: socket.socket
    info: Mapping[str, Any]
    server: QuietServer

    @property
    def base_url(self) -> str:
        """Return the simulator's address."""
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}"


async def _sim_info(app: Any) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://simulator") as client:
        answer = await client.get("/_sim/info")
    info: dict[str, Any] = answer.json()
    return info


async def start_simulators(host: str, first_port: int, seed: int) -> list[DemoSimulator]:
    """Bind and build every simulator (ports from ``first_port`` on, or free ones for 0)."""
    simulators: list[DemoSimulator] = []
    try:
        for offset, vendor in enumerate(vendor_names()):
            sock = bind_socket(host, first_port + offset if first_port else 0)
            app = load_factory(vendor)(seed=seed, speed=1.0)
            config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
            simulators.append(DemoSimulator(vendor, app, sock, await _sim_info(app), QuietServer(config)))
    except BaseException:
        for simulator in simulators:
            simulator.sock.close()
        raise
    return simulators


DEMO_SECRETS_DIR = "meterhub-demo-secrets"
"""The folder, beside the demo's SQLite file, holding the simulators' credentials."""


def demo_secrets_dir(database_url: str) -> Path:
    """Return where the demo keeps its simulators' credentials: beside a SQLite file, else here."""
    if database_url.startswith("sqlite:///"):
        database = Path(database_url.removeprefix("sqlite:///").split("?", 1)[0])
        if database.name and database.name != ":memory:":
            return database.resolve().parent / DEMO_SECRETS_DIR
    return Path.cwd().resolve() / DEMO_SECRETS_DIR


def secret_reference(vendor: str, what: str, value: object) -> str:
    """Write a simulator's credential to a file only this user may read; return its reference."""
    from meterhub.cli.common import database_url

    folder = demo_secrets_dir(database_url())
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{vendor}-{what}"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as secret:
        secret.write(str(value))
    path.chmod(0o600)  # a file left by an older demo keeps its mode through O_CREAT
    return f"file:{path}"


def _iammeter(sim: DemoSimulator) -> Meter:
    info = sim.info
    meter = info["meters"][0]
    place = next((p for p in info["places"] if p["grid"] == meter["sn"]), None)
    options = {
        "base_url": sim.base_url,
        "username": info["user_name"],
        "password": secret_reference("iammeter", "password", info["password"]),
        "sn": meter["sn"],
    }
    if place is not None:
        options["place_id"] = str(place["place_id"])
    name = f"IAMMETER {meter['sn']} (simulated)"
    return Meter("demo-iammeter", "iammeter", int(meter["phases"]), info["tz"], 300, name, options)


def _smartmac(sim: DemoSimulator) -> Meter:
    info = sim.info
    options = {
        "base_url": sim.base_url,
        "devid": str(info["devid"]),
        "devpass": secret_reference("smartmac", "devpass", info["devpass"]),
        "rate_class": str(info["rate_class"]),
    }
    name = "smart-MAC device (simulated)"
    return Meter("demo-smartmac", "smartmac", int(info["phases"]), "Europe/Oslo", 60, name, options)


def _intellimeter(sim: DemoSimulator) -> Meter:
    info = sim.info
    options = {
        "base_url": sim.base_url,
        "username": secret_reference("intellimeter", "username", info["login"]["username"]),
        "password": secret_reference("intellimeter", "password", info["login"]["password"]),
        "point": str(info["meters"][0]),
    }
    name = f"Intellimeter {info['meters'][0]} (simulated)"
    return Meter("demo-intellimeter", "intellimeter", 1, info["tz"], 300, name, options)


def _amsreader(sim: DemoSimulator) -> Meter:
    info = sim.info
    options = {"base_url": sim.base_url}
    name = f"AMS reader {info.get('hostname', '')} (simulated)".replace("  ", " ")
    return Meter("demo-amsreader", "amsreader", 3, "Europe/Oslo", 10, name, options)


def _umeter(sim: DemoSimulator) -> Meter:
    info = sim.info
    options = {
        "base_url": sim.base_url,
        "username": secret_reference("umeter", "username", info["credentials"]["username"]),
        "password": secret_reference("umeter", "password", info["credentials"]["password"]),
        "ean": str(info["eans"][0]),
    }
    name = f"UMeter {info['eans'][0]} (simulated)"
    return Meter("demo-umeter", "umeter", 1, str(info["zone"]), 900, name, options)


_METERS: dict[str, Callable[[DemoSimulator], Meter]] = {
    "iammeter": _iammeter,
    "smartmac": _smartmac,
    "intellimeter": _intellimeter,
    "amsreader": _amsreader,
    "umeter": _umeter,
}


def demo_meter(sim: DemoSimulator, factory: ConnectorFactory) -> Meter:
    """Return the demo meter of a simulator, polled no faster than its vendor allows."""
    meter = _METERS[sim.vendor](sim)
    try:
        interval_s = max(meter.interval_s, factory.poll_interval_s(meter))
    except InputError:
        return meter
    return Meter(meter.id, meter.vendor, meter.phases, meter.tz, interval_s, meter.name, meter.options)


def upsert_meter(store: Store, meter: Meter) -> None:
    """Add the meter, or update it (the simulators' ports change from run to run)."""
    try:
        store.get_meter(meter.id)
    except UnknownMeterError:
        store.add_meter(meter)
    else:
        store.update_meter(meter)


async def backfill_recent(store: Store, meter: Meter, history_s: float) -> str:
    """Backfill the meter's recent history without waiting for quotas; return one line."""
    end = utc_now()
    start = end - timedelta(seconds=history_s)
    try:
        check_keeps_history(meter)
        job = resume(await BackfillLedger(store).load(meter.id), meter.id, start, end)
        if job.finished:
            return f"{meter.id}: recent history is stored already"
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=HTTP_LIMITS) as client:
            _, stored = await backfill_meter(store, client, meter, job, max_retries=1)
    except MeterhubError as exc:
        return f"{meter.id}: no backfill ({exc})"
    return (
        f"{meter.id}: backfilled {stored.readings} readings and {stored.intervals} intervals "
        f"of the last {history_s / 3600:g} h"
    )
