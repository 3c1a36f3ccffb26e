"""``meterhub serve``: run the hub: poller, MQTT subscribers and the HTTP API, in one process.

``--role`` picks the parts (``all``, ``poller`` or ``api``) so several processes can share one
PostgreSQL database: pollers divide the meters among themselves through leases, API replicas
poll nothing. ``--worker-id`` names the process in leases, ``/healthz`` and the metrics.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import anyio
import click

from meterhub.cli.common import database_url
from meterhub.cli.invocation import try_lines
from meterhub.poller.config import HubConfig, load_config
from meterhub.poller.hub import Hub, bind_socket, stop_on_signals
from meterhub.poller.work import ROLES
from meterhub.redact import RedactingFormatter, redact_url
from meterhub.store import open_store
from meterhub.store.sqlite import SQLiteStore

__all__ = ["LOG_FORMAT", "configure_logging", "run_hub", "serve"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(verbose: bool = False) -> None:
    """Log meterhub's own messages to stderr, with connection secrets hidden; keep libraries quiet."""
    logging.basicConfig(format=LOG_FORMAT, level=logging.WARNING)
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler:  # ours, not a host's (such as a test's capture)
            handler.setFormatter(RedactingFormatter(LOG_FORMAT))
    logging.getLogger("meterhub").setLevel(logging.INFO if verbose else logging.WARNING)


def run_hub(hub: Hub, sock: socket.socket) -> None:
    """Serve ``hub`` on a bound socket until Ctrl-C or SIGTERM."""

    async def main() -> None:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(stop_on_signals, hub.stop)
            await hub.run(sock)
            task_group.cancel_scope.cancel()

    try:
        anyio.run(main)
    finally:
        sock.close()
    click.echo("meterhub stopped")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8700, show_default=True)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A meterhub.toml declaring meters, MQTT sources and poller settings.",
)
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default="all",
    show_default=True,
    help="all: poller, MQTT and API; poller: poller and MQTT (shares the meters with other "
    "pollers on the same PostgreSQL database); api: the HTTP API only.",
)
@click.option(
    "--worker-id",
    default=None,
    help="This process's name in leases, /healthz and metrics  [default: hostname-pid]",
)
@click.option("--verbose", "-v", is_flag=True, help="Log every poll problem and backfill.")
def serve(
    host: str, port: int, config_file: Path | None, role: str, worker_id: str | None, verbose: bool
) -> None:
    """Run the hub: poll every meter, ingest MQTT, serve the HTTP API on HOST:PORT."""
    url = database_url()
    config = load_config(config_file) if config_file is not None else HubConfig()
    store = open_store(url)  # fail fast, with one line, on a database that cannot be opened
    sqlite_path = store.path if isinstance(store, SQLiteStore) else None
    store.close()
    configure_logging(verbose)
    hub = Hub(url, config, role=role, worker_id=worker_id)
    if sqlite_path is not None:
        hub.lock_database(sqlite_path)  # a second serve on this SQLite file stops here
    sock = bind_socket(host, port)
    click.echo(f"meterhub serving on http://{host}:{port} (health: /healthz, database: {redact_url(url)})")
    click.echo(f"worker {hub.worker_id}, role {role}")
    if config.meters or config.mqtt or config.prices:
        click.echo(
            f"from {config_file}: {len(config.meters)} meters, {len(config.mqtt)} MQTT sources, "
            f"{len(config.prices)} price feeds"
        )
    click.echo("Try, in another shell (each line works as printed):")
    for line in try_lines(url, ["meters list", "latest", "status", "--help"]):
        click.echo(f"  {line}")
    click.echo("Stop with Ctrl-C.")
    run_hub(hub, sock)
