"""``meterhub simulate``: serve the vendor API simulators over HTTP on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import signal
import socket
from collections.abc import Generator
from importlib import import_module
from typing import Any

import click
import httpx
import uvicorn

from meterhub.errors import ConfigError, InputError
from meterhub.vendors.registry import load_factory, vendor_names
from meterhub.vendors.simkit import SimulatedOffline

__all__ = ["simulate"]

DEFAULT_PORT = 8801
PRICE_SIMULATORS = {"entsoe": "meterhub.pricefeeds.simulator:create_app"}
"""Simulated price platforms, served by name only (``all`` means the meter vendors)."""


@click.command()
@click.argument("vendor", metavar="VENDOR|all")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port of the first simulator; with 'all' the others follow consecutively.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Household seed.")
@click.option(
    "--speed",
    type=click.FloatRange(min=0.0),
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second.",
)
@click.option(
    "--variant",
    "variants",
    multiple=True,
    metavar="NAME",
    help="Switch on a real-world variant (repeatable); GET /_sim/variants lists each one's.",
)
def simulate(vendor: str, host: str, port: int, seed: int, speed: float, variants: tuple[str, ...]) -> None:
    """Serve the simulator of VENDOR (or of every vendor with 'all') until interrupted.

    'entsoe' serves the ENTSO-E transparency platform's day-ahead price API.

    Each simulator prints its URL and its /_sim/info (credentials, ids, simulated time).
    With 'all', a --variant applies to every simulator that has it.
    """
    names = vendor_names() if vendor == "all" else (vendor,)
    if port + len(names) - 1 > 65535:
        raise InputError(f"ports {port}..{port + len(names) - 1} go past 65535; lower --port")
    chosen = []  # (name, port, factory); with 'all' each vendor keeps its registry position
    for offset, name in enumerate(names):
        try:
            chosen.append((name, port + offset, _price_factory(name) or load_factory(name)))
        except InputError as exc:
            if vendor != "all":
                raise
            click.echo(f"warning: skipping {name}: {exc}", err=True)
    if not chosen:
        raise InputError("no simulator is available")
    sockets = _bind_all(host, [port for _, port, _ in chosen])
    try:
        apps = [factory(seed=seed, speed=speed) for _, _, factory in chosen]
        _switch_variants(apps, variants, every=vendor == "all")
        for (name, app_port, _), app in zip(chosen, apps, strict=True):
            click.echo(f"{name}: http://{_url_host(host)}:{app_port}")
            click.echo(json.dumps(asyncio.run(_sim_info(app)), indent=2, default=str))
        _quiet_simulated_offline()
        asyncio.run(_serve_all(apps, sockets))
    finally:
        for sock in sockets:
            sock.close()


def _price_factory(name: str) -> Any:
    """Return the factory of a simulated price platform, or None when ``name`` is none."""
    module_name, _, attribute = PRICE_SIMULATORS.get(name, "").partition(":")
    return getattr(import_module(module_name), attribute) if module_name else None


def _bind_all(host: str, ports: list[int]) -> list[socket.socket]:
    """Bind one listening socket per simulator, or raise ConfigError naming the busy port."""
    bound: list[socket.socket] = []
    try:
        for port in ports:
            bound.append(_bind(host, port))
    except ConfigError:
        for sock in bound:
            sock.close()
        raise
    return bound


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve --host {host!r}: {exc.strerror}") from exc
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = "is busy" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
        raise ConfigError(f"port {port} on {host} {reason}; choose another with --port") from exc
    sock.setblocking(False)
    return sock


def _switch_variants(apps: list[Any], variants: tuple[str, ...], every: bool) -> None:
    """Switch ``variants`` on in the simulators that have them; raise InputError for one none has."""
    kits = [kit for kit in (getattr(app.state, "kit", None) for app in apps) if kit is not None]
    for name in variants:
        having = [kit for kit in kits if name in kit.variants_about]
        if not having or (not every and len(having) < len(kits)):
            known = sorted({v for kit in kits for v in kit.variants_about}) or ["none"]
            raise InputError(f"no simulator here has the variant {name!r} (known: {', '.join(known)})")
        for kit in having:
            kit.set_variant(name, True)


async def _sim_info(app: Any) -> Any:
    """Return the app's ``GET /_sim/info`` JSON, asked in process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://simulator") as client:
        response = await client.get("/_sim/info")
    if response.status_code != 200:
        return {"info": f"/_sim/info answered HTTP {response.status_code}"}
    return response.json()


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to :func:`_serve_all`, which stops all at once."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def _serve_all(apps: list[Any], sockets: list[socket.socket]) -> None:
    servers = [_Server(uvicorn.Config(app, log_level="warning", access_log=False)) for app in apps]

    def stop_all() -> None:
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_all)
    await asyncio.gather(
        *(server.serve(sockets=[sock]) for server, sock in zip(servers, sockets, strict=True))
    )


class _DropSimulatedOffline(logging.Filter):
    """Hide the traceback uvicorn logs when a simulator drops a connection on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, SimulatedOffline)


def _quiet_simulated_offline() -> None:
    logging.getLogger("uvicorn.error").addFilter(_DropSimulatedOffline())


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
