"""The root ``meterhub`` group; every verb is registered at the bottom of this module."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from meterhub import __version__
from meterhub.errors import MeterhubError
from meterhub.redact import redact_text

__all__ = ["main"]


class _Group(click.Group):
    """A click group that turns every MeterhubError into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MeterhubError as exc:
            click.echo(f"error: {redact_text(str(exc))}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("METERHUB_DEBUG"):
                raise
            click.echo(
                f"error: unexpected failure ({type(exc).__name__}: {redact_text(str(exc))}); "
                "set METERHUB_DEBUG=1 to see the details",
                err=True,
            )
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="meterhub")
@click.option(
    "--database-url",
    envvar="METERHUB_DATABASE_URL",
    default=None,
    help="sqlite:///path.db (default ./meterhub.db) or postgresql://...; also METERHUB_DATABASE_URL.",
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """meterhub: collect, store and analyse electricity-meter data."""
    # httpx logs whole request URLs at INFO, and some vendors (smart-MAC) take secrets in the
    # query string: keep it at WARNING so no secret reaches a log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    ctx.obj = {"database_url": database_url}


# Verbs register here, one line each.
from meterhub.cli.data import export, import_, latest, readings  # noqa: E402
from meterhub.cli.db import db  # noqa: E402
from meterhub.cli.demo import demo  # noqa: E402
from meterhub.cli.meters import meters  # noqa: E402
from meterhub.cli.serve import serve  # noqa: E402

for _command in (meters, import_, export, readings, latest, db, serve, demo):
    main.add_command(_command)
from meterhub.cli.simulate import simulate  # noqa: E402

main.add_command(simulate)
from meterhub.cli.poll import backfill, poll  # noqa: E402
from meterhub.cli.relay import relay  # noqa: E402

for _command in (backfill, poll, relay):
    main.add_command(_command)
from meterhub.cli.analytics import analyze, capacity, cost, energy  # noqa: E402
from meterhub.cli.places import places, prices  # noqa: E402

for _command in (places, prices, energy, cost, capacity, analyze):
    main.add_command(_command)
from meterhub.cli.keys import keys  # noqa: E402
from meterhub.cli.users import users  # noqa: E402

for _command in (users, keys):
    main.add_command(_command)
from meterhub.cli.status import status  # noqa: E402

main.add_command(status)
from meterhub.cli.settings import settings  # noqa: E402

main.add_command(settings)
from meterhub.cli.series import series  # noqa: E402

main.add_command(series)
