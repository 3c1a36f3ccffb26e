"""Data in and out: ``import``, ``export``, ``readings``, ``latest``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

from meterhub.analytics.calendar import BUCKET_ALIASES, BUCKET_CHOICES, BUCKETS
from meterhub.cli.common import emit, format_option, in_zone, opened_store, time_arg
from meterhub.errors import ImportFileError, InputError
from meterhub.exporter import EXPORT_FORMATS, export_lines
from meterhub.history import downsample
from meterhub.model import READING_FIELDS

if TYPE_CHECKING:
    from meterhub.ingest import IngestReport
    from meterhub.model import Reading
    from meterhub.store import Store

# The importer, its settings and the progress bar load inside ``import``: ``readings`` and
# ``latest`` share this module and must not pay for them.

__all__ = ["export", "import_", "latest", "readings"]


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--meter", "meter_id", help="Meter of rows that have no meter column (created if unknown)."
)
@click.option(
    "--batch-rows",
    type=click.IntRange(1, 1_000_000),
    default=None,
    help="Rows per transaction (default: METERHUB_IMPORT_BATCH_ROWS or 50000).",
)
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="QUANTITY=SOURCE",
    help="Fill a canonical column from a column of any CSV (power_w=Power, ts=Time, meter=Device), "
    "or from a Home Assistant entity ([METER/]power_w=sensor.house_power); SOURCE*1000 multiplies "
    "each value (kW to W). Repeatable.",
)
@click.option(
    "--tz",
    help="IANA zone of timestamps without an offset (a time the clocks skip or repeat is rejected).",
)
def import_(
    file: Path, meter_id: str | None, batch_rows: int | None, maps: tuple[str, ...], tz: str | None
) -> None:
    """Import readings: canonical CSV or NDJSON, a Home Assistant history CSV, or any CSV with --map.

    A Home Assistant file (entity_id,state,last_changed) is recognised by its header; without
    --map its sensors are matched by the end of their ids (..._power, ..._voltage,
    ..._energy_import) onto --meter.
    """
    from meterhub.config import Settings
    from meterhub.importer import import_file

    if not file.is_file():
        raise ImportFileError(f"file {file} not found")
    rows = batch_rows or Settings().import_batch_rows
    size = file.stat().st_size
    with opened_store() as store, file.open("rb") as stream:
        if sys.stderr.isatty():
            report = _import_with_bar(store, file, meter_id, rows, stream, size, maps, tz)
        else:
            report = import_file(
                store,
                file,
                meter_id,
                batch_rows=rows,
                stream=stream,
                on_batch=_print_checkpoint,
                maps=maps,
                tz=tz,
            )
    for line in report.added_meters:
        click.echo(line)
    _print_summary(report)
    _require_something_kept(report)


def _require_something_kept(report: IngestReport) -> None:
    """Fail (exit 1) when the file left no reading in the database, neither new nor already there.

    A re-import that finds every row stored already is a success: the file is in the database.
    """
    if report.stored or report.duplicates:
        return
    if report.received == 0:
        raise ImportFileError("nothing stored: the file holds no rows")
    raise ImportFileError(f"nothing stored: all {report.rejected_count} rows were rejected")


def _import_with_bar(
    store: Store,
    file: Path,
    meter_id: str | None,
    rows: int,
    stream: BinaryIO,
    size: int,
    maps: tuple[str, ...],
    tz: str | None,
) -> IngestReport:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from meterhub.importer import import_file

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task(f"importing {file.name}", total=size)
        return import_file(
            store,
            file,
            meter_id,
            batch_rows=rows,
            stream=stream,
            on_batch=lambda report: progress.update(task, completed=stream.tell()),
            maps=maps,
            tz=tz,
        )


def _print_checkpoint(report: IngestReport) -> None:
    click.echo(
        f"committed: read={report.received_committed} stored={report.stored} "
        f"duplicates={report.duplicates} rejected={report.rejected_count}",
        err=True,
    )


def _print_summary(report: IngestReport) -> None:
    click.echo(
        f"rows read: {report.received}, stored: {report.stored}, "
        f"duplicates: {report.duplicates}, rejected: {report.rejected_count}"
    )
    for reason, count in sorted(report.reasons().items(), key=lambda item: -item[1]):
        click.echo(f"  rejected {count} x {reason}")
    for rejection in report.rejections[:10]:
        click.echo(f"  {rejection.where}: {rejection.reason}")
    if report.rejected_count > 10:
        click.echo(f"  ... and {report.rejected_count - 10} more")


@click.command()
@click.option("--start", required=True, help="ISO 8601, a date, epoch seconds, or now-7d.")
@click.option("--end", default="now", show_default=True, help="ISO 8601, a date, epoch seconds, or now.")
@click.option(
    "--meter", "meter_ids", multiple=True, help="Meter to export (repeatable; default all)."
)
@click.option(
    "--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="csv", show_default=True
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here, not stdout.",
)
def export(start: str, end: str, meter_ids: tuple[str, ...], fmt: str, output: Path | None) -> None:
    """Stream raw readings in the canonical columns.

    A date (or a time without an offset) is read in the meters' zone when they share one, else
    in the hub's default zone; the rows' times are UTC.
    """
    with opened_store() as store:
        from meterhub.hubzone import zone_of_meters

        zone = zone_of_meters(store, meter_ids)
        start_ts, end_ts = time_arg(start, zone), time_arg(end, zone)
        if end_ts <= start_ts:
            raise InputError("--end must be after --start")
        rows = store.iter_readings(list(meter_ids) or None, start_ts, end_ts)
        if output is None:
            for piece in export_lines(rows, fmt):
                sys.stdout.write(piece)
            return
        try:
            with output.open("w", encoding="utf-8") as sink:
                for piece in export_lines(rows, fmt):
                    sink.write(piece)
        except OSError as exc:
            raise InputError(f"cannot write {output}: {exc.strerror or exc}") from exc


@click.command()
@click.argument("meter_id")
@click.option("--start", required=True, help="ISO 8601, a date, epoch seconds, or now-1d.")
@click.option("--end", default="now", show_default=True, help="ISO 8601, a date, epoch seconds, or now.")
@click.option("--points", type=int, help="At most this many buckets (default 1000).")
@click.option(
    "--bucket",
    type=click.Choice(BUCKET_CHOICES, case_sensitive=False),
    help=f"Fixed bucket: {', '.join(BUCKETS)}; 1d, 1w (ISO weeks from Monday), 1mo and 1y are local "
    f"calendar periods of the meter's zone ({', '.join(BUCKET_ALIASES)} are accepted too).",
)
@click.option("--phase", type=click.IntRange(0, 3), default=0, show_default=True)
@format_option
def readings(
    meter_id: str,
    start: str,
    end: str,
    points: int | None,
    bucket: str | None,
    phase: int,
    fmt: str,
) -> None:
    """Show downsampled history: avg/min/max power, avg voltage and current per bucket."""
    if points is not None and bucket is not None:
        raise InputError("use either --points or --bucket, not both")
    with opened_store() as store:
        tz = store.get_meter(meter_id).tz
        buckets = downsample(
            store,
            meter_id,
            time_arg(start, tz),
            time_arg(end, tz),
            points=points,
            bucket=bucket,
            phase=phase,
        )
    shown_tz = tz if fmt == "table" else "UTC"  # a table shows local starts; machine formats UTC
    rows = [
        (
            in_zone(b.start, shown_tz),
            b.count,
            b.power_avg_w,
            b.power_min_w,
            b.power_max_w,
            b.voltage_avg_v,
            b.current_avg_a,
            b.energy_import_kwh,
            b.energy_export_kwh,
        )
        for b in buckets
    ]
    emit(
        (
            "start",
            "count",
            "power_avg_w",
            "power_min_w",
            "power_max_w",
            "voltage_avg_v",
            "current_avg_a",
            "energy_import_kwh",
            "energy_export_kwh",
        ),
        rows,
        fmt,
        title=f"{meter_id} phase {phase}",
    )


@click.command()
@format_option
def latest(fmt: str) -> None:
    """Show the newest whole-meter reading of every meter."""
    with opened_store() as store:
        zones = {m.id: m.tz for m in store.list_meters()} if fmt == "table" else {}
        rows = [
            (r.meter, in_zone(r.ts, zones[r.meter]) if r.meter in zones else r.ts, *_latest_values(r))
            for r in store.latest()
        ]
    emit(
        (
            "meter",
            "ts",
            "power_w",
            "voltage_v",
            "current_a",
            "power_factor",
            "frequency_hz",
            "energy_import_kwh",
            "energy_export_kwh",
        ),
        rows,
        fmt,
        title="latest",
        rounded_already=True,
    )


_LATEST_FIELDS = ("power_w", "voltage_v", "current_a", "power_factor", "frequency_hz",
                  "energy_import_kwh", "energy_export_kwh")  # fmt: skip


def _latest_values(reading: Reading) -> list[float | None]:
    """Return the values ``latest`` shows, rounded as the export rounds them (registers as stored)."""
    from meterhub.exporter import rounded_values

    by_name = dict(zip(READING_FIELDS, rounded_values(reading), strict=True))
    return [by_name[name] for name in _LATEST_FIELDS]
