"""``meterhub db``: schema migrations."""

from __future__ import annotations

import click

from meterhub.cli.common import database_url, opened_store
from meterhub.redact import redact_url

__all__ = ["db"]


@click.group()
def db() -> None:
    """Manage the database schema."""


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
