"""``meterhub meters``: add, list and remove meters."""

from __future__ import annotations

import click

from meterhub.cli.common import emit, format_option, opened_store
from meterhub.errors import InputError
from meterhub.model import Meter
from meterhub.timeutil import get_zone

__all__ = ["meters"]


@click.group()
def meters() -> None:
    """Add, list and remove meters."""


@meters.command("add")
@click.argument("meter_id")
@click.option(
    "--vendor",
    required=True,
    help="iammeter, smartmac, intellimeter, amsreader, umeter, or file (imports only).",
)
@click.option("--phases", type=click.Choice(["1", "3"]), default="1", show_default=True)
@click.option("--tz", default="UTC", show_default=True, help="IANA time zone of the meter's site.")
@click.option(
    "--interval-s",
    type=click.IntRange(1, 86_400),
    default=60,
    show_default=True,
    help="Expected seconds between readings; gaps longer than twice this are recorded.",
)
@click.option("--name", default="", help="A label for people.")
def add(meter_id: str, vendor: str, phases: str, tz: str, interval_s: int, name: str) -> None:
    """Add a meter."""
    if not meter_id.strip() or any(c.isspace() for c in meter_id):
        raise InputError("a meter id must be non-empty and contain no spaces")
    get_zone(tz)
    with opened_store() as store:
        store.add_meter(Meter(meter_id, vendor.lower(), int(phases), tz, interval_s, name))
    click.echo(f"added meter {meter_id} ({vendor}, {phases}-phase, {tz}, every {interval_s} s)")


@meters.command("list")
@format_option
def list_(fmt: str) -> None:
    """List meters with their newest reading."""
    with opened_store() as store:
        latest = {r.meter: r for r in store.latest()}
        rows = [
            (
                m.id,
                m.vendor,
                m.phases,
                m.tz,
                m.interval_s,
                m.name,
                latest[m.id].ts if m.id in latest else None,
                latest[m.id].power_w if m.id in latest else None,
            )
            for m in store.list_meters()
        ]
    emit(
        ("id", "vendor", "phases", "tz", "interval_s", "name", "last_reading", "power_w"),
        rows,
        fmt,
        title="meters",
    )


@meters.command("remove")
@click.argument("meter_id")
def remove(meter_id: str) -> None:
    """Remove a meter and all its data."""
    with opened_store() as store:
        removed = store.remove_meter(meter_id)
    click.echo(f"removed meter {meter_id} and {removed} readings")
