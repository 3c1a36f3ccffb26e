"""``meterhub settings``: the hub-wide settings kept in the database (the default time zone)."""

from __future__ import annotations

import click

from meterhub.cli.common import emit, format_option, opened_store
from meterhub.hubzone import default_zone, set_default_zone

__all__ = ["settings"]

NAMES = ("default-tz",)


@click.group()
def settings() -> None:
    """Show and change hub-wide settings."""


@settings.command("show")
@format_option
def show(fmt: str) -> None:
    """Show each setting, its value and where the value comes from."""
    with opened_store() as store:
        zone = default_zone(store)
    emit(("setting", "value", "source"), [("default-tz", zone.tz, zone.source)], fmt, title="settings")


@settings.command("set")
@click.argument("name", type=click.Choice(NAMES))
@click.argument("value")
def set_(name: str, value: str) -> None:
    """Set a setting: default-tz is the zone of meters and places added without one."""
    with opened_store() as store:
        zone = set_default_zone(store, value)
    click.echo(f"default-tz is {zone.tz} ({zone.source}); meters added from now on without --tz take it")


@settings.command("unset")
@click.argument("name", type=click.Choice(NAMES))
def unset(name: str) -> None:
    """Forget a setting, so the next rule applies."""
    with opened_store() as store:
        zone = set_default_zone(store, None)
    click.echo(f"default-tz is now {zone.tz} ({zone.source})")
