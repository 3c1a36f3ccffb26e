"""``meterhub places`` and ``meterhub prices``: places, their meters and tariffs, and price series."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import click

from meterhub import placebook
from meterhub.analytics.prices import READER_PRICE_TZ, PriceImport, import_prices
from meterhub.analytics.tariffs import Tariff
from meterhub.cli.common import emit, format_option, local_text, opened_store, time_arg
from meterhub.config import resolve_secret
from meterhub.errors import InputError
from meterhub.ids import id_problem
from meterhub.model import Direction, Role
from meterhub.pricefeeds.entsoe import DEFAULT_BASE_URL as ENTSOE_URL
from meterhub.pricefeeds.exports import FORMATS as EXPORT_FORMATS
from meterhub.pricefeeds.exports import detect_format, read_export
from meterhub.pricefeeds.storing import StoredPrices, fetch_entsoe_into, store_prices
from meterhub.pricefeeds.zones import ZONES, day_bounds, find_zone
from meterhub.timeutil import get_zone

__all__ = ["places", "prices"]

_PRICING_KINDS: tuple[tuple[frozenset[str], ...], ...] = (
    (
        frozenset({"import_per_kwh"}),
        frozenset({"peak_per_kwh", "offpeak_per_kwh"}),
        frozenset({"import_series"}),
    ),
    (frozenset({"export_per_kwh"}), frozenset({"export_series"})),
)
"""Ways to price one direction; choosing one drops the others."""


@click.group()
def places() -> None:
    """Add places, put meters in them by role, and set their tariffs."""


@places.command("add")
@click.argument("place_id")
@click.option("--tz", required=True, help="IANA time zone of the place, such as Europe/Oslo.")
@click.option("--name", default="", help="A label for people.")
def add(place_id: str, tz: str, name: str) -> None:
    """Add a place."""
    with opened_store() as store:
        placebook.add_place(store, place_id, tz, name)
    click.echo(f"added place {place_id} ({tz})")


@places.command("attach")
@click.argument("place_id")
@click.argument("meter_id")
@click.option(
    "--role", type=click.Choice([r.value for r in Role]), required=True, help="What the meter measures."
)
def attach(place_id: str, meter_id: str, role: str) -> None:
    """Put a meter in a place with a role (replacing its role there)."""
    with opened_store() as store:
        placebook.attach_meter(store, place_id, meter_id, Role(role))
    click.echo(f"attached {meter_id} to {place_id} as {role}")


@places.command("detach")
@click.argument("place_id")
@click.argument("meter_id")
def detach(place_id: str, meter_id: str) -> None:
    """Take a meter out of a place."""
    with opened_store() as store:
        placebook.detach_meter(store, place_id, meter_id)
    click.echo(f"detached {meter_id} from {place_id}")


@places.command("list")
@format_option
def list_(fmt: str) -> None:
    """List places with their meters and tariffs."""
    with opened_store() as store:
        rows = [
            (
                p.id,
                p.tz,
                p.name,
                " ".join(f"{role.value}:{meter}" for meter, role in p.meters),
                _tariff_text(p.tariff),
            )
            for p in store.list_places()
        ]
    emit(("id", "tz", "name", "meters", "tariff"), rows, fmt, title="places")


@places.command("tariff")
@click.argument("place_id")
@click.option("--currency", help="Currency of every price and fee, such as EUR or NOK.")
@click.option("--price", "import_per_kwh", type=float, help="Fixed import price per kWh.")
@click.option("--peak-price", "peak_per_kwh", type=float, help="Time-of-use peak price per kWh.")
@click.option("--offpeak-price", "offpeak_per_kwh", type=float, help="Time-of-use off-peak price per kWh.")
@click.option("--peak-hours", help="Local peak window START-END in whole hours, such as 7-23 (default).")
@click.option(
    "--peak-days",
    type=click.Choice(["weekdays", "all"]),
    help="Days the peak price applies (default weekdays, as UMeter's).",
)
@click.option(
    "--series", "import_series", help="Dynamic import prices: a series from 'meterhub prices import'."
)
@click.option("--adder", "import_adder_per_kwh", type=float, help="Added to every import price per kWh.")
@click.option("--export-price", "export_per_kwh", type=float, help="Fixed export compensation per kWh.")
@click.option("--export-series", help="Export compensation from a price series.")
@click.option(
    "--export-adder", "export_adder_per_kwh", type=float, help="Added to every export price per kWh."
)
@click.option("--fee-day", "fee_per_day", type=float, help="Fixed fee per local day.")
@click.option("--fee-month", "fee_per_month", type=float, help="Fixed fee per local month.")
@click.option("--capacity-thresholds", help="Capacity steps in kWh/h, such as 5,10,15,20,25,50,75,100,150.")
@click.option(
    "--capacity-peaks", "capacity_peak_days", type=click.IntRange(1, 31), help="Peak days averaged."
)
@click.option("--clear", is_flag=True, help="Start from an empty tariff instead of changing the current one.")
def tariff(
    place_id: str,
    peak_hours: str | None,
    peak_days: str | None,
    capacity_thresholds: str | None,
    clear: bool,
    **settings: Any,
) -> None:
    """Show or change a place's tariff; options given replace those settings only."""
    changes = {name: value for name, value in settings.items() if value is not None}
    if peak_hours is not None:
        changes["peak_start_hour"], changes["peak_end_hour"] = _hours(peak_hours)
    if peak_days is not None:
        changes["peak_weekdays_only"] = peak_days == "weekdays"
    if capacity_thresholds is not None:
        changes["capacity_thresholds_kwh"] = _numbers(capacity_thresholds)
    with opened_store() as store:
        place = store.get_place(place_id)
        if not changes and not clear:
            click.echo(f"{place_id}: {_tariff_text(place.tariff) or 'no tariff'}")
            return
        data = {} if clear else dict(Tariff.from_data(place.tariff).to_data())
        for kinds in _PRICING_KINDS:
            for chosen in (kind for kind in kinds if kind & changes.keys()):
                for other in kinds:
                    if other is not chosen:
                        for name in other:
                            data.pop(name, None)
        data.update(changes)
        updated = placebook.set_tariff(store, place_id, data)
    click.echo(f"{place_id}: {_tariff_text(updated) or 'no tariff'}")


def _hours(text: str) -> tuple[int, int]:
    start, sep, end = text.partition("-")
    try:
        if not sep:
            raise ValueError(text)
        return int(start), int(end)
    except ValueError:
        raise InputError(f"--peak-hours {text!r} is not START-END in whole hours, like 7-23") from None


def _numbers(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"--capacity-thresholds {text!r} is not a list of numbers like 5,10,15") from None


def _tariff_text(data: Any) -> str:
    return " ".join(
        f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}"
        for key, value in sorted(data.items())
    )


@click.group()
def prices() -> None:
    """Import, fetch and list dynamic price series."""


@prices.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--series", default="default", show_default=True, help="Name the slots are stored under.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "rows", *EXPORT_FORMATS]),
    default="auto",
    show_default=True,
    help="rows: start/end/price/currency CSV or JSON (or an AMS reader's price file); "
    "nordpool-csv, entsoe-csv, entsoe-xml: those platforms' own exports; auto recognises each.",
)
@click.option("--zone", help="For an export with several areas: the one to import, such as NO1.")
@click.option(
    "--read-at",
    help="For an AMS reader's energyprice.json: when it was read (ISO 8601 with an offset); "
    "default the file's modification time.",
)
@click.option(
    "--reader-tz",
    default=READER_PRICE_TZ,
    show_default=True,
    help="For an AMS reader's price file: the zone its price day begins in.",
)
def import_(file: Path, series: str, fmt: str, zone: str | None, read_at: str | None, reader_tz: str) -> None:
    """Import price slots from a file: rows of start, end or resolution, price, currency, direction.

    An AMS reader's own energyprice.json (or importprice.json/exportprice.json) is recognised too,
    and so are Nord Pool's data-portal CSV and the ENTSO-E platform's CSV and XML exports (prices
    per MWh there are stored per kWh, raw: a tariff adds VAT, fees and markup).
    """
    moment = _aware_time(read_at, "--read-at") if read_at is not None else None
    export = _export_format(file, fmt)
    with opened_store() as store:
        if export is None:
            result: PriceImport | StoredPrices = import_prices(
                store, file, series, read_at=moment, reader_tz=reader_tz
            )
        else:
            result = store_prices(store, read_export(file, series, export, zone))
    click.echo(
        f"series {result.series}: {result.read} slots read, {result.stored} stored, "
        f"{result.unchanged} unchanged, {result.first_start.isoformat()} to {result.last_end.isoformat()}"
    )


def _export_format(file: Path, fmt: str) -> str | None:
    """Return the export format to read ``file`` in, or None for the row formats."""
    if fmt == "rows":
        return None
    if fmt != "auto":
        return fmt
    try:
        with file.open(encoding="utf-8-sig", errors="replace") as handle:
            head = handle.read(4000)
    except OSError:
        return None  # the row importer names the problem
    return detect_format(head)


@prices.group("fetch")
def fetch() -> None:
    """Fetch day-ahead prices from a price platform into a series."""


@fetch.command("entsoe")
@click.option(
    "--zone", required=True, help="Bidding zone: NO1..NO5, SE1..SE4, DK1, DK2, FI, DE-LU, NL, FR, ..."
)
@click.option(
    "--start",
    default="tomorrow",
    show_default=True,
    help="First delivery day or instant; dates and day words are midnight in the zone's own time.",
)
@click.option("--end", help="End (exclusive); default one day after --start.")
@click.option("--series", help="Series to store in; default entsoe-ZONE, such as entsoe-no1.")
@click.option(
    "--token-ref",
    default="env:ENTSOE_TOKEN",
    show_default=True,
    help="Where the security token is: env:NAME (an environment variable) or file:/path (chmod 600).",
)
@click.option(
    "--direction",
    type=click.Choice([d.value for d in Direction]),
    default="import",
    show_default=True,
    help="export stores them as export compensation (places tariff --export-series).",
)
@click.option("--base-url", default=ENTSOE_URL, show_default=True, help="The platform's API endpoint.")
def fetch_entsoe(
    zone: str, start: str, end: str | None, series: str | None, token_ref: str, direction: str, base_url: str
) -> None:
    """Fetch ENTSO-E day-ahead prices (document A44) of a bidding zone and store them.

    Prices are stored per kWh in the platform's currency (EUR/MWh / 1000), raw: a place's
    tariff adds VAT, grid fees and markup. Nothing is stored unless the whole answer is valid.
    """
    bidding_zone = find_zone(zone)
    local = get_zone(bidding_zone.tz)
    first = time_arg(start, bidding_zone.tz)
    if end is None:
        local_day = first.astimezone(local).date()
        last = day_bounds(local_day + timedelta(days=1), bidding_zone.tz)[0]
    else:
        last = time_arg(end, bidding_zone.tz)
    name = series or f"entsoe-{bidding_zone.name.lower()}"
    if id_problem(name) is not None:
        raise InputError(f"--series {name!r} must be up to 64 letters, digits and _ . : -")
    token = resolve_secret(token_ref)
    with opened_store() as store:
        result = anyio.run(
            partial(
                fetch_entsoe_into,
                store,
                token=token,
                zone=bidding_zone,
                start=first,
                end=last,
                series=name,
                base_url=base_url,
                direction=Direction(direction),
            )
        )
    click.echo(
        f"series {result.series}: {result.read} slots from ENTSO-E {bidding_zone.name} "
        f"({bidding_zone.eic}), {result.stored} stored, {result.unchanged} unchanged, "
        f"{local_text(result.first_start.astimezone(local))} to "
        f"{local_text(result.last_end.astimezone(local))}"
    )


@prices.command("zones")
@format_option
def zones(fmt: str) -> None:
    """List the bidding zones --zone names, with their EIC codes and time zones."""
    rows = [(z.name, z.eic, z.tz, z.label) for z in ZONES]
    emit(("zone", "eic", "tz", "area"), rows, fmt, title="bidding zones")


@prices.command("list")
@format_option
def list_prices(fmt: str) -> None:
    """List stored price series."""
    with opened_store() as store:
        rows = store.price_series()
    emit(("series", "direction", "currency", "slots", "start", "end"), rows, fmt, title="price series")


def _aware_time(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{option} {text!r} is not ISO 8601 like 2026-03-29T12:00:00+02:00") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InputError(f"{option} {text!r} has no UTC offset (add Z or +02:00)")
    return moment
