"""``series``: a meter's device series (temperature, RSSI, uptime, relay...), listed or read."""

from __future__ import annotations

from datetime import datetime

import click

from meterhub.cli.common import emit, format_option, opened_store, time_arg
from meterhub.errors import InputError
from meterhub.extraseries import BUCKETS, SeriesInfo, SeriesRead, list_series, read_series
from meterhub.model import utc_now
from meterhub.timeutil import get_zone

__all__ = ["series"]


def _value(value: float, info: SeriesInfo) -> float | str:
    """Return a value as people read it: a state as on or off, a number as it is."""
    if info.kind == "state":
        return "on" if value >= 0.5 else "off"
    return value


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86_400:.0f} d"


def _rows(read: SeriesRead, tz: str) -> tuple[tuple[str, ...], list[tuple[object, ...]]]:
    zone = get_zone(tz)

    def local(ts: datetime) -> datetime:
        return ts.astimezone(zone)

    if read.bucket_s is None:
        return ("ts", "value"), [(local(p.ts), _value(p.value, read.info)) for p in read.points]
    return (
        ("start", "end", "count", "min", "avg", "max"),
        [(local(b.start), local(b.end), b.count, b.min, b.avg, b.max) for b in read.buckets],
    )


@click.command()
@click.argument("meter_id")
@click.argument("name", required=False)
@click.option(
    "--start", help="ISO 8601, a date, epoch seconds, or now-1d (default now-1d); local to the meter."
)
@click.option("--end", help="ISO 8601, a date, epoch seconds, or now (default now).")
@click.option(
    "--bucket",
    type=click.Choice(("raw", *BUCKETS)),
    help="raw for every value, or min/avg/max per bucket (1d is a local day); default: the values "
    "when few, else round buckets.",
)
@format_option
def series(
    meter_id: str, name: str | None, start: str | None, end: str | None, bucket: str | None, fmt: str
) -> None:
    """List a meter's device series, or show one (NAME) over a range, in the meter's local time."""
    if name is None and (start is not None or end is not None or bucket is not None):
        raise InputError(
            "--start, --end and --bucket read one series: name it, as in: series METER temperature_c"
        )
    with opened_store() as store:
        tz = store.get_meter(meter_id).tz
        if name is None:
            zone = get_zone(tz)
            rows: list[tuple[object, ...]] = [
                (
                    s.name,
                    s.info.label,
                    s.info.unit,
                    s.count,
                    s.first.astimezone(zone),
                    s.last.astimezone(zone),
                    _value(s.last_value, s.info),
                    _age(s.age_s),
                )
                for s in list_series(store, meter_id, utc_now())
            ]
            columns: tuple[str, ...] = (
                "name",
                "label",
                "unit",
                "count",
                "first",
                "last",
                "last_value",
                "age",
            )
            emit(columns, rows, fmt, title=f"{meter_id} series ({tz})")
            return
        start_ts = time_arg(start or "now-1d", tz)
        end_ts = time_arg(end or "now", tz)
        read = read_series(store, meter_id, name, start_ts, end_ts, bucket=bucket, tz=tz)
    columns, rows = _rows(read, tz)
    unit = f" ({read.info.unit})" if read.info.unit else ""
    emit(columns, rows, fmt, title=f"{meter_id} {name}{unit}, {read.bucket} ({tz})")
