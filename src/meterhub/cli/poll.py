"""``meterhub backfill`` (history with a progress bar, resumable) and ``meterhub poll`` (once, now)."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import cast

import anyio
import click
import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from meterhub.backfills import backfill_range
from meterhub.cli.common import emit, format_option, opened_store
from meterhub.errors import FieldError, InputError, MeterhubError
from meterhub.model import Meter, utc_now
from meterhub.poller.backfill import BackfillJob, BackfillLedger, backfill_meter, resume
from meterhub.poller.connectors import HTTP_LIMITS, HTTP_TIMEOUT, ConnectorClass, history_chunk_s
from meterhub.poller.plan import HistoryPlan, count_windows, declared_plan
from meterhub.poller.scheduler import Poller, PollOutcome
from meterhub.poller.sink import Stored
from meterhub.store import Store
from meterhub.vendors.registry import load_connector

__all__ = ["backfill", "poll"]


@click.command()
@click.argument("meter_id")
@click.option("--since", required=True, help="Start of the history to fetch (T).")
@click.option("--until", default=None, help="End of the history to fetch (T; default now).")
@click.option("--restart", is_flag=True, help="Fetch everything again instead of resuming.")
@click.option(
    "--retries",
    type=click.IntRange(0, 20),
    default=4,
    show_default=True,
    help="Retries of an unavailable vendor, with exponential backoff, before giving up.",
)
def backfill(meter_id: str, since: str, until: str | None, restart: bool, retries: int) -> None:
    """Fetch a meter's history from its vendor, within quotas; resumes where it stopped."""
    with opened_store() as store:
        meter = store.get_meter(meter_id)
        # The same reading of the range, and the same check, as a backfill started on the dashboard.
        try:
            start, end = backfill_range(meter, since, until or "", utc_now())
        except FieldError as exc:  # named by its option on the command line
            raise InputError(f"--{exc.field}: {exc}") from exc
        connector_class = cast(ConnectorClass, load_connector(meter.vendor))
        existing = None if restart else anyio.run(BackfillLedger(store).load, meter.id)
        job = resume(existing, meter.id, start, end)
        if job.finished:
            click.echo(f"{meter_id}: history from {_when(start)} to {_when(end)} is stored already")
            return
        if job.done_until > start:
            click.echo(f"{meter_id}: resuming at {_when(job.done_until)}")
        windows = count_windows(job.done_until, end, history_chunk_s(connector_class), meter.tz)
        click.echo(declared_plan(connector_class, windows).describe())
        stored = _run_with_progress(store, meter, job, start, retries)
    click.echo(
        f"{meter_id}: history from {_when(start)} to {_when(end)} fetched; stored "
        f"{stored.readings} readings, {stored.intervals} intervals, {stored.extras} extras "
        f"({stored.duplicates} readings already there, {stored.rejected} rejected)"
    )


def _when(ts: datetime) -> str:
    return ts.isoformat(timespec="seconds")


def _run_with_progress(
    store: Store, meter: Meter, job: BackfillJob, shown_start: datetime, retries: int
) -> Stored:
    console = Console(stderr=True)
    total_s = max(1.0, (job.end - shown_start).total_seconds())
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[until]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    task = progress.add_task(f"backfill {meter.id}", total=total_s, until="")

    async def advance(done: BackfillJob) -> None:
        done_s = (done.done_until - shown_start).total_seconds()
        progress.update(task, completed=done_s, until=f"up to {_when(done.done_until)}")
        if not console.is_terminal:
            click.echo(f"{meter.id}: stored up to {_when(done.done_until)}")

    def tell_plan(plan: HistoryPlan) -> None:
        _say(progress, task, console, f"measured, for the rest: {plan.describe()}", always=True)

    async def wait_quota(seconds: float) -> None:
        _say(progress, task, console, f"waiting {seconds:.0f} s for the vendor's quota (Ctrl-C stops)")
        await anyio.sleep(seconds)

    async def run() -> Stored:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=HTTP_LIMITS) as client:
            _, stored = await backfill_meter(
                store,
                client,
                meter,
                job,
                on_progress=advance,
                on_plan=tell_plan,
                wait_quota=wait_quota,
                max_retries=retries,
            )
        return stored

    progress.update(task, completed=(job.done_until - shown_start).total_seconds())
    try:
        with progress:
            return anyio.run(run)
    except (MeterhubError, KeyboardInterrupt) as exc:
        saved = anyio.run(BackfillLedger(store).load, meter.id)
        where = _when(saved.done_until) if saved is not None else _when(job.done_until)
        hint = f"progress is saved up to {where}; run the same command again to resume"
        if isinstance(exc, KeyboardInterrupt):
            click.echo(f"interrupted; {hint}", err=True)
            sys.exit(130)
        raise MeterhubError(f"{exc}; {hint}") from exc


def _say(progress: Progress, task: TaskID, console: Console, text: str, *, always: bool = False) -> None:
    """Show a note on the progress bar (or as a line, without a terminal, or ``always``)."""
    if console.is_terminal and not always:
        progress.update(task, until=text)
    elif console.is_terminal:
        progress.console.print(text)
    else:
        click.echo(text)


@click.command()
@click.argument("meter_ids", nargs=-1)
@format_option
def poll(meter_ids: tuple[str, ...], fmt: str) -> None:
    """Poll meters once now (all polled meters without METER_IDS) and show the outcome."""
    with opened_store() as store:
        outcomes = anyio.run(_poll_once, store, list(meter_ids))
    rows = [(o.meter_id, o.ok, o.at, o.error, round(o.next_in_s)) for o in outcomes]
    emit(("meter", "ok", "at", "error", "next_in_s"), rows, fmt, title="poll")
    if any(not o.ok for o in outcomes):
        sys.exit(1)


async def _poll_once(store: Store, meter_ids: list[str]) -> list[PollOutcome]:
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=HTTP_LIMITS) as client:
        poller = Poller(store, client)
        await poller.load_meters()
        wanted = meter_ids or poller.meter_ids
        return [await poller.poll_once(meter_id) for meter_id in wanted]
