"""``meterhub serve``: run the hub."""

from __future__ import annotations

import socket

import click
import uvicorn

from meterhub.api.app import create_app
from meterhub.cli.common import database_url
from meterhub.errors import ConfigError
from meterhub.store import open_store
from meterhub.store.factory import redact_url

__all__ = ["serve"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8700, show_default=True)
def serve(host: str, port: int) -> None:
    """Run the hub: HTTP API with /healthz on HOST:PORT."""
    url = database_url()
    open_store(url).close()  # fail fast, with one line, on a database that cannot be opened
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    click.echo(
        f"meterhub serving on http://{host}:{port} (health: /healthz, database: {redact_url(url)})"
    )
    click.echo(
        "Try, in another shell: meterhub meters list | meterhub latest | "
        "meterhub readings METER --start now-1d --end now | meterhub --help"
    )
    uvicorn.run(create_app(url), host=host, port=port, log_level="warning")
