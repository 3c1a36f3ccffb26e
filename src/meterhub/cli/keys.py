"""``meterhub keys``: API keys. A key is printed once, when made; afterwards only its prefix."""

from __future__ import annotations

import click

from meterhub.api import security
from meterhub.cli.common import emit, format_option, opened_store

__all__ = ["keys"]


def _hand_over(key_id: str, user: str, text: str) -> None:
    click.echo(f"API key {key_id} for {user} (shown only now; store it safely):")
    click.echo(text)


@click.group()
def keys() -> None:
    """Create, list, rotate and revoke API keys."""


@keys.command("create")
@click.argument("user")
@click.option("--name", default="", help="A label, such as the program that uses the key.")
def create(user: str, name: str) -> None:
    """Create a key acting as USER and print it once."""
    with opened_store() as store:
        record, text = security.issue_api_key(store, user, name)
    _hand_over(record.key_id, record.user, text)


@keys.command("list")
@click.option("--user", default=None, help="Only this user's keys.")
@format_option
def list_(user: str | None, fmt: str) -> None:
    """List keys by prefix, with their user, last use and whether revoked."""
    with opened_store() as store:
        rows = [
            (k.key_id, k.prefix, k.user, k.name, k.created_at, k.last_used_at, k.revoked)
            for k in store.list_api_keys(user)
        ]
    emit(["id", "prefix", "user", "name", "created", "last_used", "revoked"], rows, fmt, title="API keys")


@keys.command("rotate")
@click.argument("key_id", metavar="ID")
def rotate(key_id: str) -> None:
    """Replace a key by a new one (same user and name), revoke the old one, print the new one once."""
    with opened_store() as store:
        record, text = security.rotate_api_key(store, key_id)
    click.echo(f"revoked {key_id}")
    _hand_over(record.key_id, record.user, text)


@keys.command("revoke")
@click.argument("key_id", metavar="ID")
def revoke(key_id: str) -> None:
    """Revoke a key; it stops working at once (within seconds on a running hub)."""
    with opened_store() as store:
        store.revoke_api_key(key_id)
    click.echo(f"revoked {key_id}")
