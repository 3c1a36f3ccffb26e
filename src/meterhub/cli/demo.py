"""``meterhub demo``: five simulated vendors, one meter each, polled live; plus a real household."""

from __future__ import annotations

import secrets
import socket

import anyio
import anyio.to_thread
import click
import httpx

from meterhub.api import security
from meterhub.cli.common import database_url, opened_store
from meterhub.cli.demo_place import DEMO_PRICE_SERIES, demo_place_meters, setup_demo_place
from meterhub.cli.demo_setup import (
    DemoSimulator,
    backfill_recent,
    demo_meter,
    start_simulators,
    upsert_meter,
)
from meterhub.cli.invocation import try_lines
from meterhub.cli.serve import configure_logging
from meterhub.datasets import UCI_HOUSEHOLD, bundled, uci_readings
from meterhub.errors import NotFoundError, UnknownMeterError
from meterhub.ingest import Ingestor
from meterhub.model import Meter, UserRole
from meterhub.poller.connectors import ConnectorFactory
from meterhub.poller.hub import Hub, bind_socket, stop_on_signals
from meterhub.store import Store, open_store

__all__ = ["demo"]

DEMO_METER = "uci-household"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the hub's HTTP API.")
@click.option("--port", type=click.IntRange(1, 65535), default=8700, show_default=True)
@click.option(
    "--sim-port",
    type=click.IntRange(0, 65531),
    default=0,
    show_default=True,
    help="Port of the first simulator, the others following; 0 picks free ports.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Simulated household seed.")
@click.option(
    "--history-h",
    type=click.FloatRange(0, 24 * 30),
    default=24.0,
    show_default=True,
    help="Hours of recent history to backfill from the simulators before polling live.",
)
def demo(host: str, port: int, sim_port: int, seed: int, history_h: float) -> None:
    """Serve five vendor simulators and a hub polling one meter of each; load a real household."""
    _load_household()
    hub_sock = bind_socket(host, port)
    _demo_admin(host, port)
    try:
        anyio.run(_run, hub_sock, host, port, sim_port, seed, history_h * 3600)
    finally:
        hub_sock.close()
    click.echo("meterhub demo stopped")


def _load_household() -> None:
    with opened_store() as store:
        try:
            store.get_meter(DEMO_METER)
        except UnknownMeterError:
            store.add_meter(Meter(DEMO_METER, "file", 1, "Europe/Paris", 60, "UCI household, Sceaux"))
        report = Ingestor(store).ingest(uci_readings(bundled(UCI_HOUSEHOLD), DEMO_METER))
    click.echo(
        f"demo data: meter {DEMO_METER}, {report.stored} new readings ({report.duplicates} already there)"
    )


DEMO_ADMIN = "admin"


def _demo_admin(host: str, port: int) -> None:
    """Give the demo an admin with a fresh password and API key, and print both (demo data only)."""
    password = secrets.token_urlsafe(12)
    with opened_store() as store:
        try:
            store.get_user(DEMO_ADMIN)
        except NotFoundError:
            security.create_user(store, DEMO_ADMIN, UserRole.ADMIN, password)
        else:
            security.change_password(store, DEMO_ADMIN, password)
        _, key = security.issue_api_key(store, DEMO_ADMIN, "demo")
    click.echo(f"Dashboard: http://{host}:{port}/  (sign in as {DEMO_ADMIN}, password {password})")
    click.echo("API sign-in for the demo: the same user and password, or the key below; docs at /docs")
    click.echo(f"API key for the demo: {key}")
    click.echo(f"  e.g. curl -H 'X-API-Key: {key}' http://{host}:{port}/api/v1/latest")


async def _run(
    hub_sock: socket.socket, host: str, port: int, sim_port: int, seed: int, history_s: float
) -> None:
    url = database_url()
    simulators = await start_simulators("127.0.0.1", sim_port, seed)
    hub = Hub(url)
    setup = anyio.CancelScope()
    hub_started = False

    def stop_simulators() -> None:
        for simulator in simulators:
            simulator.server.should_exit = True

    def stop_all() -> None:
        setup.cancel()
        hub.stop()  # the simulators stop once the hub has, so its last polls still find them
        if not hub_started:
            stop_simulators()

    async def run_hub() -> None:
        try:
            await hub.run(hub_sock)
        finally:
            stop_simulators()

    configure_logging()
    try:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(stop_on_signals, stop_all)
            for simulator in simulators:
                task_group.start_soon(_serve_simulator, simulator)
            with setup:
                store = await anyio.to_thread.run_sync(open_store, url)
                try:
                    meters = await _add_meters(store, simulators)
                    _announce(simulators, meters, host, port)
                    farm = await _add_place(store, simulators, meters)
                    hub_started = True
                    task_group.start_soon(run_hub)
                    await _backfill_all(store, [*meters, *farm], history_s)
                    click.echo(f"Polling live. Dashboard: http://{host}:{port}/ ; stop with Ctrl-C.")
                finally:
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(store.close)
    finally:
        for simulator in simulators:
            simulator.sock.close()


async def _serve_simulator(simulator: DemoSimulator) -> None:
    await simulator.server.serve(sockets=[simulator.sock])


async def _add_meters(store: Store, simulators: list[DemoSimulator]) -> list[Meter]:
    async with httpx.AsyncClient() as client:
        factory = ConnectorFactory(store, client)
        meters = [demo_meter(simulator, factory) for simulator in simulators]
    for meter in meters:
        await anyio.to_thread.run_sync(upsert_meter, store, meter)
    return meters


async def _add_place(store: Store, simulators: list[DemoSimulator], meters: list[Meter]) -> list[Meter]:
    """Add the farm's grid and solar meters and the demo place; return the two meters."""
    iammeter = next(s for s in simulators if s.vendor == "iammeter")
    grid, solar = demo_place_meters(iammeter)
    special = next(m for m in meters if m.vendor == "smartmac")
    for meter in (grid, solar):
        await anyio.to_thread.run_sync(upsert_meter, store, meter)
    place = await anyio.to_thread.run_sync(setup_demo_place, store, grid, solar, special)
    click.echo(
        f"demo place {place.id}: grid {grid.id}, solar {solar.id}, special load {special.id}; "
        f"priced by the series {DEMO_PRICE_SERIES} and a capacity tariff"
    )
    return [grid, solar]


def _announce(simulators: list[DemoSimulator], meters: list[Meter], host: str, port: int) -> None:
    click.echo("simulated vendors (credentials in files of meterhub-demo-secrets/, beside the database):")
    for simulator, meter in zip(simulators, meters, strict=True):
        click.echo(f"  {simulator.vendor:<13} {simulator.base_url:<24} meter {meter.id}")
    click.echo(f"meterhub dashboard and API on http://{host}:{port}/ (health: http://{host}:{port}/healthz)")
    click.echo("Explore, in another shell (each line works as printed):")
    for line in explore_commands():
        click.echo(f"  {line}")
    click.echo("Stop with Ctrl-C.")


def explore_commands() -> list[str]:
    """Return the lines a user can paste in another shell: a ``cd``, then meterhub commands."""
    return try_lines(
        database_url(),
        [
            "meters list",
            "latest",
            "readings demo-iammeter --start now-1d --bucket 1h",
            f"readings {DEMO_METER} --start 2007-02-01 --end 2007-02-03 --bucket 1h",
            "status",
            "relay demo-smartmac on",
        ],
    )


async def _backfill_all(store: Store, meters: list[Meter], history_s: float) -> None:
    if history_s <= 0:
        return
    lines: list[str] = []

    async def one(meter: Meter) -> None:
        lines.append(await backfill_recent(store, meter, history_s))

    async with anyio.create_task_group() as task_group:
        for meter in meters:
            task_group.start_soon(one, meter)
    for line in sorted(lines):
        click.echo(line)
