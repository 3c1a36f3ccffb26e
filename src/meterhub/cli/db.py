"""``meterhub db``: schema migrations, and copying a hub into another database."""

from __future__ import annotations

import click

from meterhub.cli.common import database_url, opened_store
from meterhub.redact import redact_url

__all__ = ["db"]


@click.group()
def db() -> None:
    """Manage the database schema, and copy the whole hub into another database."""


@db.command()
def migrate() -> None:
    """Apply pending schema migrations; data is kept."""
    with opened_store(migrate=False) as store:
        applied = store.migrate()
        names = store.migrations_applied()
    target = redact_url(database_url())
    if applied:
        click.echo(f"{target}: applied {', '.join(applied)}")
    else:
        click.echo(f"{target}: up to date ({names[-1] if names else 'empty'})")


@db.command()
@click.option(
    "--to",
    "target_url",
    required=True,
    metavar="URL",
    help="The database to copy the hub into: postgresql://user@host/db (empty, or this copy's own).",
)
@click.option(
    "--batch-rows",
    type=click.IntRange(min=1),
    default=20_000,
    show_default=True,
    help="Rows written per committed batch.",
)
@click.option(
    "--max-batches",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many batches; run the command again to continue.",
)
def copy(target_url: str, batch_rows: int, max_batches: int | None) -> None:
    """Copy the whole hub into another database, resumably, and verify the copy.

    Meters with every setting, places, tariffs, prices, users, API keys, shares, readings,
    intervals, extras, tokens, backfill progress, hub settings and the quota ledger. An
    interrupted copy continues where it stopped when run again. Afterwards counts per table and
    energy per local day of every meter are compared; a difference is an error (exit code 1).
    Progress goes to stderr, the report to stdout.
    """
    from meterhub.errors import StoreError
    from meterhub.hubcopy import HubCopy

    run = HubCopy(
        database_url(),
        target_url,
        batch_rows=batch_rows,
        max_batches=max_batches,
        progress=lambda text: click.echo(text, err=True),
    )
    outcome = run.run()
    if not outcome.complete:
        click.echo(
            f"paused after {outcome.batches} batches ({outcome.rows} rows written); "
            f"next: {outcome.left}. Run the same command again to continue."
        )
        return
    assert outcome.report is not None
    for line in outcome.report.lines():
        click.echo(line)
    if not outcome.report.ok:
        raise StoreError(
            f"the copy differs from its source ({len(outcome.report.problems)} mismatches, listed above); "
            "stop the hub, so its data stays still, and run the same command again: it sends the "
            "meters concerned again"
        )
