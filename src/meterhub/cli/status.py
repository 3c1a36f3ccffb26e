"""``meterhub status [METER...]``: how collecting each meter and each price feed goes, as a table or JSON.

The table shows times in each meter's (each feed's bidding zone's) own zone, named, to the
second; JSON keeps UTC ISO 8601. Without meter ids the price feeds follow the meters in a table
of their own; ``--prices`` shows only them (as JSON too).
"""

from __future__ import annotations

import sys
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click
import orjson
from rich.console import Console
from rich.table import Table

from meterhub.cli.common import opened_store
from meterhub.errors import InputError
from meterhub.timeutil import get_zone

if TYPE_CHECKING:
    from meterhub.status import BackfillStatus, MeterStatus, PriceFeedStatus, QuotaStatus

__all__ = ["status"]

COLUMNS = (
    "meter", "vendor", "polled", "state", "failures", "last success", "newest reading",
    "last error", "quota left", "backfill",
)  # fmt: skip
FEED_COLUMNS = (
    "series", "zone", "fetched by", "state", "last success", "newest slot", "last error", "next try",
)  # fmt: skip


@click.command()
@click.argument("meter_ids", nargs=-1)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("table", "json")),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--prices",
    "prices_only",
    is_flag=True,
    help="Show only the day-ahead price feeds ([[prices]]): who fetches, last success, next try.",
)
def status(meter_ids: tuple[str, ...], fmt: str, prices_only: bool) -> None:
    """Show, per meter, its poll cadence, health, newest data, vendor quota left and backfill;
    per price feed, its last fetch, newest stored slot, last error and next try."""
    from meterhub.status import meter_status, price_feed_status  # the poller stack only where used

    if prices_only and meter_ids:
        raise click.UsageError("--prices shows the price feeds only; leave out the meter ids")
    with opened_store() as store:
        found = [] if prices_only else meter_status(store, list(meter_ids) or None)
        feeds = price_feed_status(store) if prices_only or not meter_ids else []
    if fmt == "json":
        shown: object = feeds if prices_only else found
        sys.stdout.write(orjson.dumps(shown, option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z).decode() + "\n")
        return
    console = Console(soft_wrap=True)
    if not prices_only:
        table = Table(title="Meter status")
        for column in COLUMNS:
            table.add_column(column, justify="right" if column == "failures" else "left")
        for item in found:
            table.add_row(*_row(item))
        console.print(table)
    if feeds:
        feed_table = Table(title="Price feeds")
        for column in FEED_COLUMNS:
            feed_table.add_column(column)
        for feed in feeds:
            feed_table.add_row(*_feed_row(feed))
        console.print(feed_table)
    elif prices_only:
        console.print("No price feed has run on this database; declare one with [[prices]] in meterhub.toml.")


def _feed_row(item: PriceFeedStatus) -> tuple[str, ...]:
    now, tz = item.checked_at, item.tz
    series = item.series if item.direction == "import" else f"{item.series} ({item.direction})"
    success = _when(item.last_success_at, now, tz)
    if item.last_stored is not None:
        stored = item.last_stored
        success += f"\n{stored.slots} slots for {stored.days}, {stored.stored} new or changed"
    newest = "none stored" if item.newest_slot_end is None else local_time(item.newest_slot_end, tz)
    tomorrow = "stored" if item.tomorrow_stored else "not stored yet"
    newest += f"\ntomorrow ({item.tomorrow.isoformat()}) {tomorrow}"
    problems = []
    if item.last_error is not None:
        at = "" if item.last_error_at is None else f" ({local_time(item.last_error_at, tz)})"
        problems.append(f"{item.last_error}{at}")
    if item.note is not None:
        problems.append(item.note)
    state = item.state
    if item.consecutive_failures:
        state += f", {item.consecutive_failures} in a row"
    return (
        series,
        f"{item.zone} ({item.source})",
        item.fetched_by or "no worker",
        state,
        success,
        newest,
        "\n".join(problems) or "-",
        _next_try(item),
    )


def _next_try(item: PriceFeedStatus) -> str:
    if item.next_try_at is None or item.fetched_by is None:
        return "-"
    wait_s = (item.next_try_at - item.checked_at).total_seconds()
    when = local_time(item.next_try_at, item.tz)
    if wait_s < 0:
        return f"{age_text(-wait_s).removesuffix(' ago')} overdue\n{when}"
    from meterhub.poller.plan import span_text

    return f"in {span_text(wait_s)}\n{when}"


def _row(item: MeterStatus) -> tuple[str, ...]:
    now = item.checked_at
    return (
        item.meter_id,
        item.vendor,
        "no" if item.poll_interval_s is None else f"every {item.poll_interval_s} s",
        _state(item),
        str(item.consecutive_failures),
        _when(item.last_success, now, item.tz),
        _when(item.newest_reading_at, now, item.tz),
        _error(item),
        "\n".join(_quota(quota) for quota in item.quotas) or "-",
        "-" if item.backfill is None else _backfill(item.backfill, item.tz),
    )


def _state(item: MeterStatus) -> str:
    if item.online is None:
        return "not polled" if item.poll_interval_s is None else "not polled yet"
    return "online" if item.online else "offline"


def _error(item: MeterStatus) -> str:
    lines = []
    if item.last_error is not None:
        at = "" if item.last_error_at is None else f" ({local_time(item.last_error_at, item.tz)})"
        lines.append(f"{item.last_error}{at}")
    if item.config_error is not None:
        lines.append(f"options: {item.config_error}")
    return "\n".join(lines) or "-"


def _quota(quota: QuotaStatus) -> str:
    from meterhub.vendors.base import window_text

    left = "?" if quota.left_calls is None else str(quota.left_calls)
    return f"{quota.rule} {left}/{quota.limit_calls} per {window_text(quota.window_s)}"


def _backfill(job: BackfillStatus, tz: str) -> str:
    zone = _zone(tz)
    local_end = job.end.astimezone(zone)
    if local_end.time() == time():
        until = (local_end.date() - timedelta(days=1)).isoformat()  # the last whole day it covers
    else:
        until = local_time(job.end, tz)
    kind = "recovery " if job.kind == "recovery" else ""
    return f"{kind}{job.percent_done:.0f}% to {until}"


def _when(ts: datetime | None, now: datetime, tz: str) -> str:
    if ts is None:
        return "never"
    return f"{age_text((now - ts).total_seconds())}\n{local_time(ts, tz)}"


def age_text(age_s: float) -> str:
    """Return an age for people: ``12 s ago``, ``3 min ago``, ``2 h 5 min ago``, ``4 days ago``."""
    from meterhub.poller.plan import span_text

    whole_s = max(0, round(age_s))
    if whole_s >= 86_400:  # past a day only the days matter
        whole_s -= whole_s % 86_400
    elif whole_s >= 3600:  # past an hour not the seconds
        whole_s -= whole_s % 60
    return f"{span_text(whole_s)} ago"


def local_time(ts: datetime, tz: str) -> str:
    """Return an instant in the zone ``tz``, to the second, with the zone named."""
    zone = _zone(tz)
    return f"{ts.astimezone(zone).replace(microsecond=0):%Y-%m-%d %H:%M:%S} {zone.key}"


def _zone(tz: str) -> ZoneInfo:
    """Return the meter's zone, or UTC for a name this system does not know."""
    try:
        return get_zone(tz)
    except InputError:
        return get_zone("UTC")
