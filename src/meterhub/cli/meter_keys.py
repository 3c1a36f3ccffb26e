"""``meterhub meters rotate-key ID``: rotate a meter's vendor API key; show what changed, never a key."""

from __future__ import annotations

import click

from meterhub.cli.common import opened_store

__all__ = ["rotate_key"]


@click.command("rotate-key")
@click.argument("meter_id")
def rotate_key(meter_id: str) -> None:
    """Rotate the vendor API key of METER_ID (Intellimeter) for every meter of its account.

    The new key is kept in the hub's store and the meters name it as
    stored_key=store:intellimeter-key/NAME; no key is ever printed. When the vendor fails, the
    meters keep their old key reference.
    """
    import anyio

    from meterhub.vendorkeys import rotate_meter_key  # the vendor stack only where it is used

    with opened_store() as store:
        rotation = anyio.run(rotate_meter_key, store, meter_id)
    for line in rotation.lines():
        click.echo(line)
