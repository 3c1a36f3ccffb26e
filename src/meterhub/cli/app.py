"""The root ``meterhub`` group; every verb is registered in ``VERBS`` at the bottom of this module.

A verb's module is imported only when that verb runs (or its own help is asked for), so a
command never pays for the web server, the charts or the poller unless it uses them.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, NamedTuple

import click

from meterhub import __version__
from meterhub.errors import MeterhubError

__all__ = ["VERBS", "Verb", "main"]

# meterhub does no floating-point linear algebra: one OpenBLAS thread spares every command
# numpy's start of a BLAS thread per core at import (tens of ms of a short command's life).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


class Verb(NamedTuple):
    """Where a verb lives (``module:attribute``) and its short help for ``meterhub --help``."""

    target: str
    short_help: str


class _Group(click.Group):
    """A click group that turns every MeterhubError into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MeterhubError as exc:
            from meterhub.redact import redact_text

            click.echo(f"error: {redact_text(str(exc))}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            # The reader of a pipe stopped (``meterhub readings … | head``): nothing is wrong,
            # so no error; stdout goes to /dev/null so Python's final flush stays quiet.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(141)  # as a shell reports a command ended by SIGPIPE
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("METERHUB_DEBUG"):
                raise
            from meterhub.redact import redact_text

            click.echo(
                f"error: unexpected failure ({type(exc).__name__}: {redact_text(str(exc))}); "
                "set METERHUB_DEBUG=1 to see the details",
                err=True,
            )
            sys.exit(2)


class _LazyGroup(_Group):
    """The root group: verbs come from ``VERBS`` and their modules load on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*VERBS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is not None:
            return command
        verb = VERBS.get(cmd_name)
        if verb is None:
            return None
        module_name, _, attribute = verb.target.partition(":")
        loaded = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(loaded, click.Command):
            raise TypeError(f"{verb.target} is not a click command")
        self.commands[cmd_name] = loaded
        return loaded

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List every verb with the short help from ``VERBS``, importing none of them."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            verb = VERBS.get(name)
            if verb is not None:
                rows.append((name, click.Command(name, help=verb.short_help).get_short_help_str(limit)))
                continue
            command = self.commands[name]
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    ctx.obj = {"database_url": database_url}


# Verbs register here, one line each: name -> where it lives and its short help (the first
# sentence of its docstring; tests/cli/test_cli_imports.py checks that the two agree).
VERBS: dict[str, Verb] = {
    "analyze": Verb(
        "meterhub.cli.analytics:analyze", "Power and offline analysis of one meter over a range."
    ),
    "backfill": Verb(
        "meterhub.cli.poll:backfill",
        "Fetch a meter's history from its vendor, within quotas; resumes where it stopped.",
    ),
    "capacity": Verb(
        "meterhub.cli.analytics:capacity",
        "Show the capacity tariff: top hourly peaks on distinct days, month value, step and next threshold.",
    ),
    "cost": Verb(
        "meterhub.cli.analytics:cost",
        "Show what energy cost per period under the place's tariff, each price on its own interval.",
    ),
    "db": Verb(
        "meterhub.cli.db:db", "Manage the database schema, and copy the whole hub into another database."
    ),
    "demo": Verb(
        "meterhub.cli.demo:demo",
        "Serve five vendor simulators and a hub polling one meter of each; load a real household.",
    ),
    "energy": Verb(
        "meterhub.cli.analytics:energy",
        "Show energy per 15 minutes, hour, day, week, month or year of a meter or a place, "
        "with its sources.",
    ),
    "export": Verb("meterhub.cli.data:export", "Stream raw readings in the canonical columns."),
    "homeassistant": Verb(
        "meterhub.cli.homeassistant:homeassistant",
        "Publish meters to Home Assistant over MQTT discovery: show, publish, unpublish.",
    ),
    "import": Verb(
        "meterhub.cli.data:import_",
        "Import readings: canonical CSV or NDJSON, a Home Assistant history CSV, or any CSV with --map.",
    ),
    "keys": Verb("meterhub.cli.keys:keys", "Create, list, rotate and revoke API keys."),
    "latest": Verb("meterhub.cli.data:latest", "Show the newest whole-meter reading of every meter."),
    "meters": Verb("meterhub.cli.meters:meters", "Add, discover, list and remove meters."),
    "places": Verb(
        "meterhub.cli.places:places", "Add places, put meters in them by role, and set their tariffs."
    ),
    "poll": Verb(
        "meterhub.cli.poll:poll",
        "Poll meters once now (all polled meters without METER_IDS) and show the outcome.",
    ),
    "prices": Verb("meterhub.cli.places:prices", "Import, fetch and list dynamic price series."),
    "readings": Verb(
        "meterhub.cli.data:readings",
        "Show downsampled history: avg/min/max power, avg voltage and current per bucket.",
    ),
    "relay": Verb(
        "meterhub.cli.relay:relay",
        "Switch the relay of METER_ID on or off and show what the device reports.",
    ),
    "series": Verb(
        "meterhub.cli.series:series",
        "List a meter's device series, or show one (NAME) over a range, in the meter's local time.",
    ),
    "serve": Verb(
        "meterhub.cli.serve:serve",
        "Run the hub: poll every meter, ingest MQTT, serve the HTTP API on HOST:PORT.",
    ),
    "settings": Verb("meterhub.cli.settings:settings", "Show and change hub-wide settings."),
    "simulate": Verb(
        "meterhub.cli.simulate:simulate",
        "Serve the simulator of VENDOR (or of every vendor with 'all') until interrupted.",
    ),
    "status": Verb(
        "meterhub.cli.status:status",
        "Show, per meter, its poll cadence, health, newest data, vendor quota left and backfill; "
        "per price feed, its last fetch, newest stored slot, last error and next try.",
    ),
    "users": Verb(
        "meterhub.cli.users:users",
        "Add users of the API, set their roles and passwords, and share meters and places.",
    ),
}
