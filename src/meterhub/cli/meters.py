"""``meterhub meters``: add, discover, list and remove meters."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import anyio
import click

from meterhub.cli.common import emit, format_option, opened_store
from meterhub.cli.vendor_options import connection_options, options_from, unset_references
from meterhub.errors import ConflictError, InputError, MeterhubError
from meterhub.ids import check_id, id_problem
from meterhub.model import VENDOR_FILE, Meter
from meterhub.poller.config import check_secret_options
from meterhub.poller.connectors import ConnectorClass, known_vendors, min_poll_interval_s, with_connector
from meterhub.store import Store
from meterhub.timeutil import get_zone
from meterhub.vendors.base import Connector, Discovered
from meterhub.vendors.registry import load_connector

__all__ = ["meters"]

LIST_COLUMNS = (
    "id",
    "vendor",
    "phases",
    "tz",
    "interval_s",
    "name",
    "last_reading",
    "power_w",
    "online",
    "last_success",
    "last_error",
    "failures",
)


@click.group()
def meters() -> None:
    """Add, discover, list and remove meters."""


def _check_vendor(vendor: str) -> str:
    name = vendor.lower()
    choices = (*known_vendors(), VENDOR_FILE)
    if name not in choices:
        raise InputError(f"unknown vendor {vendor!r}; choose one of {', '.join(choices)}")
    return name


def _default_interval_s(vendor: str) -> int:
    """Return the vendor's shortest polling interval, or 60 s for imports."""
    if vendor == VENDOR_FILE:
        return 60
    connector_class = cast(ConnectorClass, load_connector(vendor))
    return int(connector_class.min_interval_s)


def _meter_interval_s(store: Store, meter: Meter) -> int:
    """Return the meter's shortest polling interval: its device's own (a smart-MAC's rate class)."""
    if meter.vendor == VENDOR_FILE:
        return 60
    connector_class = cast(ConnectorClass, load_connector(meter.vendor))

    async def floor(connector: Connector) -> int:
        return min_poll_interval_s(connector_class, connector)

    try:
        return anyio.run(with_connector, store, meter, floor)
    except MeterhubError:  # options still incomplete: the vendor's interval
        return int(connector_class.min_interval_s)


def _warn_unset(options: dict[str, str]) -> None:
    for name in unset_references(options):
        click.echo(f"note: environment variable {name} is not set here; the hub needs it", err=True)


@meters.command("add")
@click.argument("meter_id")
@click.option(
    "--vendor",
    required=True,
    help="iammeter, smartmac, intellimeter, amsreader, umeter, or file (imports only).",
)
@click.option("--phases", type=click.Choice(["1", "2", "3"]), default="1", show_default=True)
@click.option("--tz", default="UTC", show_default=True, help="IANA time zone of the meter's site.")
@click.option(
    "--interval-s",
    type=click.IntRange(1, 86_400),
    default=None,
    help="Expected seconds between readings; gaps longer than twice this are recorded "
    "(default: the vendor's polling interval, 60 for file).",
)
@click.option("--name", default="", help="A label for people.")
@connection_options
def add(
    meter_id: str, vendor: str, phases: str, tz: str, interval_s: int | None, name: str, **connection: Any
) -> None:
    """Add a meter, with the vendor's connection options."""
    check_id(meter_id)
    vendor = _check_vendor(vendor)
    get_zone(tz)
    options = options_from(connection)
    with opened_store() as store:
        meter = Meter(meter_id, vendor, int(phases), tz, interval_s or 60, name, options)
        interval_s = interval_s or _meter_interval_s(store, meter)
        store.add_meter(replace(meter, interval_s=interval_s))
    click.echo(f"added meter {meter_id} ({vendor}, {phases}-phase, {tz}, every {interval_s} s)")
    _warn_unset(options)


@meters.command("discover")
@click.argument("vendor")
@click.option("--tz", default="UTC", show_default=True, help="Time zone of the account's sites.")
@click.option("--add", "add_found", is_flag=True, help="Add every meter found (existing ids are kept).")
@format_option
@connection_options
def discover(vendor: str, tz: str, add_found: bool, fmt: str, **connection: Any) -> None:
    """List the meters an account or device holds; --add adds them."""
    vendor = _check_vendor(vendor)
    if vendor == VENDOR_FILE:
        raise InputError("file meters are fed by imports; there is nothing to discover")
    get_zone(tz)
    options = options_from(connection)
    probe = Meter(f"discover-{vendor}", vendor, 1, tz, _default_interval_s(vendor), "", options)
    with opened_store() as store:
        found = anyio.run(_discover, store, probe)
        added = _add_found(store, found) if add_found else []
    rows = [(d.suggested_id, d.vendor, d.phases, d.tz, d.name, _options_text(d.options)) for d in found]
    emit(("id", "vendor", "phases", "tz", "name", "options"), rows, fmt, title=f"{vendor} meters")
    for line in added:
        click.echo(line, err=fmt != "table")


async def _discover(store: Store, probe: Meter) -> list[Discovered]:
    async def run(connector: Connector) -> list[Discovered]:
        return await connector.discover()

    return await with_connector(store, probe, run)


def _add_found(store: Store, found: list[Discovered]) -> list[str]:
    lines = []
    for item in found:
        problem = id_problem(item.suggested_id)
        if problem is not None:
            lines.append(f"skipped a meter: {problem}")
            continue
        check_secret_options(item.options, f"discovered meter {item.suggested_id}")
        meter = Meter(item.suggested_id, item.vendor, item.phases, item.tz, 60, item.name, dict(item.options))
        meter = replace(meter, interval_s=_meter_interval_s(store, meter))
        try:
            store.add_meter(meter)
        except ConflictError:
            lines.append(f"kept meter {item.suggested_id} (it exists already)")
            continue
        lines.append(f"added meter {item.suggested_id} ({item.vendor}, {item.phases}-phase)")
    return lines


def _options_text(options: Any) -> str:
    return " ".join(f"{key}={value}" for key, value in sorted(dict(options).items()))


@meters.command("list")
@format_option
def list_(fmt: str) -> None:
    """List meters with their newest reading and polling health."""
    with opened_store() as store:
        latest = {r.meter: r for r in store.latest()}
        health = store.health()
        rows = []
        for m in store.list_meters():
            reading, state = latest.get(m.id), health.get(m.id)
            rows.append(
                (
                    m.id,
                    m.vendor,
                    m.phases,
                    m.tz,
                    m.interval_s,
                    m.name,
                    reading.ts if reading else None,
                    reading.power_w if reading else None,
                    state.online if state else None,
                    state.last_success if state else None,
                    state.last_error if state else None,
                    state.consecutive_failures if state else None,
                )
            )
    emit(LIST_COLUMNS, rows, fmt, title="meters")


@meters.command("remove")
@click.argument("meter_id")
def remove(meter_id: str) -> None:
    """Remove a meter and all its data."""
    with opened_store() as store:
        removed = store.remove_meter(meter_id)
    click.echo(f"removed meter {meter_id} and {removed} readings")
