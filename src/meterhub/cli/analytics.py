"""``meterhub energy``, ``cost``, ``capacity`` and ``analyze``: the figures users pay by."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from typing import Any

import click
import orjson

from meterhub.analytics.calendar import BUCKET_ALIASES, BUCKET_CHOICES, BUCKETS, bucket_name, to_zone
from meterhub.analytics.capacity import Capacity, place_capacity
from meterhub.analytics.cost import meter_cost, place_cost
from meterhub.analytics.energy import meter_energy
from meterhub.analytics.offline import gaps_within
from meterhub.analytics.places import place_energy
from meterhub.analytics.power import power_stats
from meterhub.cli.common import emit, format_option, opened_store, time_arg
from meterhub.errors import InputError
from meterhub.precision import rounded
from meterhub.store.base import Store

__all__ = ["analyze", "capacity", "cost", "energy"]

_BUCKET = click.option(
    "--bucket",
    type=click.Choice(BUCKET_CHOICES, case_sensitive=False),
    help=f"Calendar period, local to the zone: {', '.join(BUCKETS)} (1w: ISO weeks from Monday; "
    f"{', '.join(BUCKET_ALIASES)} are accepted too). Default 1d.",
)
_GROUPBY = click.option(
    "--groupby",
    type=click.Choice(BUCKET_CHOICES, case_sensitive=False),
    help="The former name of --bucket, still accepted.",
)


def _bucket(bucket: str | None, groupby: str | None) -> str:
    """Return the bucket asked by --bucket or its former name --groupby (default 1d)."""
    names = {bucket_name(text) for text in (bucket, groupby) if text is not None}
    if len(names) > 1:
        raise InputError("--bucket and --groupby name different periods; give only --bucket")
    return names.pop() if names else "1d"

_TZ = click.option(
    "--tz", help="IANA zone for periods and times without an offset (default: the meter's or place's)."
)
_START = click.option("--start", required=True, help="ISO 8601, a date, epoch seconds, or now-7d.")
_END = click.option(
    "--end", default="now", show_default=True, help="ISO 8601, a date, epoch seconds, or now."
)


def _target(meter_id: str | None, place_id: str | None) -> None:
    if (meter_id is None) == (place_id is None):
        raise InputError("give a meter ID or --place PLACE, not both and not neither")


def _range(start: str, end: str, tz: str) -> tuple[datetime, datetime]:
    start_ts, end_ts = time_arg(start, tz), time_arg(end, tz)
    if end_ts <= start_ts:
        raise InputError("--end must be after --start")
    return start_ts, end_ts


def _localize(zone: tzinfo) -> Callable[[datetime], datetime]:
    return lambda ts: ts.astimezone(zone)


def _zone_of(store: Store, meter_id: str | None, place_id: str | None, tz: str | None) -> str:
    if tz is not None:
        to_zone(tz)
        return tz
    return store.get_meter(meter_id).tz if meter_id is not None else store.get_place(str(place_id)).tz


@click.command()
@click.argument("meter_id", required=False)
@click.option("--place", "place_id", help="A place instead of a meter.")
@_START
@_END
@_BUCKET
@_GROUPBY
@_TZ
@format_option
def energy(
    meter_id: str | None,
    place_id: str | None,
    start: str,
    end: str,
    bucket: str | None,
    groupby: str | None,
    tz: str | None,
    fmt: str,
) -> None:
    """Show energy per 15 minutes, hour, day, week, month or year of a meter or a place, with its sources."""
    _target(meter_id, place_id)
    period = _bucket(bucket, groupby)
    unit = BUCKETS[period]
    with opened_store() as store:
        zone_name = _zone_of(store, meter_id, place_id, tz)
        start_ts, end_ts = _range(start, end, zone_name)
        local = _localize(to_zone(zone_name))
        if meter_id is not None:
            buckets = meter_energy(store, meter_id, start_ts, end_ts, unit, zone_name)
            rows: list[Sequence[Any]] = [
                (
                    local(b.start),
                    local(b.end),
                    b.energy_import_kwh,
                    b.energy_export_kwh,
                    b.source,
                    b.estimated,
                )
                for b in buckets
            ]
            columns: tuple[str, ...] = (
                "start",
                "end",
                "energy_import_kwh",
                "energy_export_kwh",
                "source",
                "estimated",
            )
        else:
            place = store.get_place(str(place_id))
            rows = [
                (
                    local(p.start),
                    local(p.end),
                    p.yield_kwh,
                    p.from_grid_kwh,
                    p.to_grid_kwh,
                    p.special_load_kwh,
                    p.self_use_kwh,
                    p.consumption_kwh,
                    p.self_sufficiency_ratio,
                    p.source,
                    p.estimated,
                )
                for p in place_energy(store, place, start_ts, end_ts, unit, zone_name)
            ]
            columns = (
                "start",
                "end",
                "yield_kwh",
                "from_grid_kwh",
                "to_grid_kwh",
                "special_load_kwh",
                "self_use_kwh",
                "consumption_kwh",
                "self_sufficiency_ratio",
                "source",
                "estimated",
            )
    emit(columns, rows, fmt, title=f"energy of {meter_id or place_id} per {period} ({zone_name})")


@click.command()
@click.argument("meter_id", required=False)
@click.option("--place", "place_id", help="A place instead of a meter (its grid meters are priced).")
@_START
@_END
@_BUCKET
@_GROUPBY
@_TZ
@format_option
def cost(
    meter_id: str | None,
    place_id: str | None,
    start: str,
    end: str,
    bucket: str | None,
    groupby: str | None,
    tz: str | None,
    fmt: str,
) -> None:
    """Show what energy cost per period under the place's tariff, each price on its own interval."""
    _target(meter_id, place_id)
    period = _bucket(bucket, groupby)
    unit = BUCKETS[period]
    with opened_store() as store:
        zone_name = _zone_of(store, meter_id, place_id, tz)
        start_ts, end_ts = _range(start, end, zone_name)
        if meter_id is not None:
            costs = meter_cost(store, meter_id, start_ts, end_ts, unit, zone_name)
        else:
            costs = place_cost(store, store.get_place(str(place_id)), start_ts, end_ts, unit, zone_name)
    local = _localize(to_zone(zone_name))
    rows = [
        (
            local(c.start),
            local(c.end),
            c.energy_import_kwh,
            c.energy_export_kwh,
            c.import_cost,
            c.export_credit,
            c.fees,
            c.total_cost,
            c.currency,
            c.unpriced_import_kwh,
            c.source,
            c.estimated,
            c.vendor_cost,
        )
        for c in costs
    ]
    columns = (
        "start",
        "end",
        "energy_import_kwh",
        "energy_export_kwh",
        "import_cost",
        "export_credit",
        "fees",
        "total_cost",
        "currency",
        "unpriced_import_kwh",
        "source",
        "estimated",
        "vendor_cost",
    )
    total = sum(c.total_cost for c in costs)
    currency = costs[0].currency if costs else ""
    title = f"cost of {meter_id or place_id} per {period}: {total:.2f} {currency}"
    vendor = [c.vendor_cost for c in costs if c.vendor_cost is not None]
    if vendor:
        title += f" (the vendor's: {sum(vendor):.2f} {currency})"
    emit(columns, rows, fmt, title=title)


@click.command()
@click.argument("place_id")
@click.option("--month", help="YYYY-MM, local to the place (default: this month, to date).")
@click.option(
    "--thresholds", help="Steps in kWh/h (default: the tariff's, else 5,10,15,20,25,50,75,100,150)."
)
@click.option(
    "--peaks", type=click.IntRange(1, 31), help="Peak days averaged (default: the tariff's, else 3)."
)
@format_option
def capacity(place_id: str, month: str | None, thresholds: str | None, peaks: int | None, fmt: str) -> None:
    """Show the capacity tariff: top hourly peaks on distinct days, month value, step and next threshold."""
    steps = None
    if thresholds is not None:
        try:
            steps = [float(part) for part in thresholds.split(",") if part.strip()]
        except ValueError:
            raise InputError(f"--thresholds {thresholds!r} is not a list of numbers like 5,10,15") from None
        if not steps or sorted(set(steps)) != steps or steps[0] <= 0:
            raise InputError("--thresholds must be positive and increasing, like 5,10,15")
    with opened_store() as store:
        place = store.get_place(place_id)
        figures = place_capacity(store, place, month, thresholds_kwh=steps, peak_days=peaks)
    _emit_capacity(figures, to_zone(place.tz), fmt, place_id)


def _emit_capacity(figures: Capacity, zone: tzinfo, fmt: str, place_id: str) -> None:
    local = _localize(zone)
    summary = {
        "place": place_id,
        "month": figures.month,
        "as_of": local(figures.as_of),
        "hours": figures.hours,
        "month_value_kwh": figures.month_value_kwh,
        "step_kwh": figures.step_kwh,
        "next_threshold_kwh": figures.next_threshold_kwh,
        "month_import_kwh": figures.month_import_kwh,
        "estimated": figures.estimated,
    }
    peaks = [
        {"day": p.day.isoformat(), "hour_start": local(p.hour_start), "energy_kwh": p.energy_kwh}
        for p in figures.peaks
    ]
    if fmt == "json":
        document = {**summary, "thresholds_kwh": list(figures.thresholds_kwh), "peaks": peaks}
        sys.stdout.write(orjson.dumps(rounded(document), option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    columns = (*summary, "peak_day", "peak_hour_start", "peak_kwh")
    head = tuple(summary.values())
    rows = [(*head, p["day"], p["hour_start"], p["energy_kwh"]) for p in peaks] or [(*head, None, None, None)]
    emit(columns, rows, fmt, title=f"capacity of {place_id} in {figures.month}")


@click.group()
def analyze() -> None:
    """Power and offline analysis of one meter over a range."""


@analyze.command("power")
@click.argument("meter_id")
@_START
@_END
@_TZ
@format_option
def power(meter_id: str, start: str, end: str, tz: str | None, fmt: str) -> None:
    """Show average, daytime (08-20 local) average, minimum and maximum power."""
    with opened_store() as store:
        zone_name = _zone_of(store, meter_id, None, tz)
        start_ts, end_ts = _range(start, end, zone_name)
        stats = power_stats(store, meter_id, start_ts, end_ts, zone_name)
    emit(
        ("meter", "avg_w", "daytime_avg_w", "min_w", "max_w"),
        [(meter_id, stats.avg_w, stats.daytime_avg_w, stats.min_w, stats.max_w)],
        fmt,
        title=f"power of {meter_id} ({zone_name})",
    )


@analyze.command("offline")
@click.argument("meter_id")
@_START
@_END
@_TZ
@format_option
def offline(meter_id: str, start: str, end: str, tz: str | None, fmt: str) -> None:
    """Show the gaps longer than twice the meter's interval and the minutes offline."""
    with opened_store() as store:
        zone_name = _zone_of(store, meter_id, None, tz)
        start_ts, end_ts = _range(start, end, zone_name)
        gaps = gaps_within(store, meter_id, start_ts, end_ts)
    local = _localize(to_zone(zone_name))
    rows = [(local(g.start), local(g.end), g.duration_s / 60) for g in gaps]
    offline_min = sum(g.duration_s for g in gaps) / 60
    if fmt == "json":
        gap_list = [{"start": a, "end": b, "duration_min": m} for a, b, m in rows]
        document = {"meter": meter_id, "gaps": len(gaps), "offline_min": offline_min, "list": gap_list}
        sys.stdout.write(orjson.dumps(rounded(document), option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    title = f"{meter_id}: {len(gaps)} gaps, {offline_min:.1f} minutes offline"
    emit(("start", "end", "duration_min"), rows, fmt, title=title)
