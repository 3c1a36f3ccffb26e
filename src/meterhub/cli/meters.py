"""``meterhub meters``: add, discover, list and remove meters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from meterhub.cli.common import emit, format_option, in_zone, opened_store
from meterhub.cli.vendor_options import connection_options, options_from, unset_references

if TYPE_CHECKING:
    from meterhub.store.base import Store
    from meterhub.vendors.base import Discovered

# The catalog brings the vendors, the poller's connectors and httpx: only add, discover and
# remove import it, so ``meters list`` stays quick.

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
@click.option(
    "--tz",
    default=None,
    help="IANA time zone of the meter's site (default: the hub's; see `meterhub settings`).",
)
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
    meter_id: str,
    vendor: str,
    phases: str,
    tz: str | None,
    interval_s: int | None,
    name: str,
    **connection: Any,
) -> None:
    """Add a meter, with the vendor's connection options."""
    from meterhub import catalog
    from meterhub.hubzone import default_zone

    options = options_from(connection)
    with opened_store() as store:
        zone_note = ""
        if tz is None and catalog.check_vendor(vendor) != "file":
            catalog.check_vendor_options(catalog.check_vendor(vendor), options)
            tz, zone_note = _vendor_zone(store, catalog.check_vendor(vendor), options)
        meter = catalog.add_meter(
            store,
            meter_id,
            vendor,
            phases=int(phases),
            tz=tz,
            interval_s=interval_s,
            name=name,
            options=options,
        )
        if tz is None:
            zone_note = f"; zone {meter.tz} is {default_zone(store).source}"
    every = f"every {meter.interval_s} s"
    what = f"{meter.vendor}, {meter.phases}-phase, {meter.tz}, {every}"
    click.echo(f"added meter {meter.id} ({what}){zone_note}")
    _warn_unset(options)


def _vendor_zone(store: Store, vendor: str, options: dict[str, str]) -> tuple[str | None, str]:
    """Return the zone the vendor tells for these options (None: it tells none) and a note."""
    import anyio

    from meterhub.vendorzone import vendor_tells_zone, zone_from_vendor

    if not vendor_tells_zone(vendor, options):
        return None, ""
    click.echo(f"asking {vendor} for the meter's zone (give --tz to skip this)", err=True)
    found = anyio.run(zone_from_vendor, store, vendor, options)
    return found.tz, f"; zone {found.tz} {found.source}"


@meters.command("discover")
@click.argument("vendor")
@click.option(
    "--tz",
    default=None,
    help="Zone of the account's sites where the vendor names none (default: the hub's).",
)
@click.option("--add", "add_found", is_flag=True, help="Add every meter found (existing ids are kept).")
@click.option(
    "--fresh",
    is_flag=True,
    help="Ask the vendor again even when its answer to the same question is still kept.",
)
@format_option
@connection_options
def discover(vendor: str, tz: str | None, add_found: bool, fresh: bool, fmt: str, **connection: Any) -> None:
    """List the meters an account or device holds; --add adds them, in their vendor's places.

    The vendor's answer is kept for its quota window (IAMMETER: 5 minutes), so running the same
    discovery again, with --add, costs no second call.
    """
    import functools

    import anyio

    from meterhub import catalog

    vendor = catalog.check_vendor(vendor)
    if tz is not None:
        catalog.check_zone(tz)
    options = options_from(connection)
    with opened_store() as store:
        ask = functools.partial(catalog.discover_meters_kept, fresh=fresh)
        answer = anyio.run(ask, store, vendor, options, tz)
        found = answer.found
        added = catalog.add_discovered(store, found) if add_found else []
    if answer.kept:
        asked = answer.asked_at.astimezone().strftime("%H:%M:%S %Z")
        note = f"as {vendor} answered at {asked}, kept for its quota window; --fresh asks again"
        click.echo(f"({note})", err=True)
    rows = [
        (d.suggested_id, d.vendor, d.phases, d.tz, d.name, _place_text(d), _options_text(d.options))
        for d in found
    ]
    columns = ("id", "vendor", "phases", "tz", "name", "place", "options")
    emit(columns, rows, fmt, title=f"{vendor} meters")
    for outcome in added:
        click.echo(outcome.line, err=fmt != "table")


def _place_text(found: Discovered) -> str:
    place = found.place
    return "" if place is None else f"{place.place_id} ({place.role})"


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
            tz = m.tz if fmt == "table" else "UTC"  # a table shows local times; machine formats UTC
            rows.append(
                (
                    m.id,
                    m.vendor,
                    m.phases,
                    m.tz,
                    m.interval_s,
                    m.name,
                    in_zone(reading.ts, tz) if reading else None,
                    reading.power_w if reading else None,
                    state.online if state else None,
                    in_zone(state.last_success, tz) if state else None,
                    state.last_error if state else None,
                    state.consecutive_failures if state else None,
                )
            )
    emit(LIST_COLUMNS, rows, fmt, title="meters")


@meters.command("remove")
@click.argument("meter_id")
def remove(meter_id: str) -> None:
    """Remove a meter and all its data."""
    from meterhub import catalog

    with opened_store() as store:
        removed = catalog.remove_meter(store, meter_id)
    click.echo(f"removed meter {meter_id} and {removed} readings")


from meterhub.cli.meter_keys import rotate_key  # noqa: E402 - registered beside the other verbs

meters.add_command(rotate_key)
