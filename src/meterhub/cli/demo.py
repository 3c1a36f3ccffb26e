"""``meterhub demo``: a hub with real data, ready to explore."""

from __future__ import annotations

import click

from meterhub.cli.common import opened_store
from meterhub.cli.serve import serve
from meterhub.datasets import UCI_HOUSEHOLD, bundled, uci_readings
from meterhub.errors import UnknownMeterError
from meterhub.ingest import Ingestor
from meterhub.model import Meter

__all__ = ["demo"]

DEMO_METER = "uci-household"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8700, show_default=True)
@click.pass_context
def demo(ctx: click.Context, host: str, port: int) -> None:
    """Load a real household's two days of readings, then serve the hub."""
    with opened_store() as store:
        try:
            store.get_meter(DEMO_METER)
        except UnknownMeterError:
            store.add_meter(
                Meter(DEMO_METER, "file", 1, "Europe/Paris", 60, "UCI household, Sceaux")
            )
        report = Ingestor(store).ingest(uci_readings(bundled(UCI_HOUSEHOLD), DEMO_METER))
    click.echo(
        f"demo data: meter {DEMO_METER}, {report.stored} new readings "
        f"({report.duplicates} already there)"
    )
    click.echo(
        "Explore: meterhub latest | meterhub meters list | "
        f"meterhub readings {DEMO_METER} --start 2007-02-01 --end 2007-02-03 --bucket 1h | "
        f"meterhub export --start 2007-02-01 --end 2007-02-02 --meter {DEMO_METER} | head"
    )
    click.echo("Stop with Ctrl-C.")
    ctx.invoke(serve, host=host, port=port)
