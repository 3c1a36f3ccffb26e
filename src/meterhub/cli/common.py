"""What the CLI verbs share: opening the store, reading times, rendering tables."""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from meterhub.csvsafe import safe_cell
from meterhub.timeutil import parse_time

if TYPE_CHECKING:
    from meterhub.store import Store

# Imports of rich, pydantic settings and the store wait for the code that needs them, so a
# command pays only for what it uses (tests/cli/test_cli_imports.py counts them).

__all__ = ["FORMAT_CHOICES", "emit", "opened_store", "time_arg"]

FORMAT_CHOICES = ("table", "csv", "json")


def database_url() -> str:
    """Return the database URL: --database-url, else METERHUB_DATABASE_URL, else ./meterhub.db."""
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    if root is not None and isinstance(root.obj, dict) and root.obj.get("database_url"):
        return str(root.obj["database_url"])
    if not any(name.upper() == "METERHUB_DATABASE_URL" for name in os.environ):
        from meterhub.store.factory import DEFAULT_DATABASE_URL

        return DEFAULT_DATABASE_URL
    from meterhub.config import Settings

    return Settings().database_url


@contextmanager
def opened_store(*, migrate: bool = True) -> Iterator[Store]:
    """Open the configured store for one command and close it afterwards."""
    from meterhub.store import open_store

    store = open_store(database_url(), migrate=migrate)
    try:
        yield store
    finally:
        store.close()


def time_arg(text: str, tz: str = "UTC") -> datetime:
    """Parse a --start/--end value (ISO 8601, date, epoch seconds, now-2h)."""
    return parse_time(text, tz)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        # Every digit a register carries (109552.248 kWh stays whole), without binary noise
        # (11.849999999999998 shows as 11.85): at most six decimals, trailing zeros dropped.
        text = f"{value:.6f}".rstrip("0").rstrip(".")
        return "0" if text in {"-0", ""} else text
    if isinstance(value, datetime):
        return local_text(value)
    return str(value)


def local_text(ts: datetime) -> str:
    """Return a time as a table shows it: to the second, with its offset and its zone's name.

    ``2026-03-29 03:00:00+02:00 Europe/Oslo``; a time in UTC is just ``…+00:00``.
    """
    text = ts.isoformat(sep=" ", timespec="seconds")
    key = getattr(ts.tzinfo, "key", None)
    return f"{text} {key}" if key and key != "UTC" else text


def in_zone(ts: datetime | None, tz: str) -> datetime | None:
    """Return ``ts`` in zone ``tz`` for a table (machine formats keep UTC)."""
    if ts is None:
        return None
    from meterhub.timeutil import get_zone

    return ts.astimezone(get_zone(tz))


_PLAIN_CELLS = (int, float)
"""Cell types a CSV writer can take as they are: no text, so nothing to neutralise."""


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def emit(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    fmt: str,
    title: str | None = None,
    *,
    rounded_already: bool = False,
) -> None:
    """Write rows as a rich table, CSV or a JSON array of objects to stdout.

    Every number is rounded to its quantity's precision by its column's name
    (:mod:`meterhub.precision`), so a table shows what JSON and CSV hold; ``rounded_already``
    says the caller did it (raw readings, whose registers keep their own precision).
    """
    from meterhub.precision import round_value

    if not rounded_already:
        rows = [[round_value(c, v) for c, v in zip(columns, row, strict=True)] for row in rows]
    if fmt == "json":
        import orjson

        records = [{c: _jsonable(v) for c, v in zip(columns, row, strict=True)} for row in rows]
        sys.stdout.write(orjson.dumps(records, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(
            # Numbers and None (an empty cell) go out as they are; text and times are neutralised.
            [v if v is None or type(v) in _PLAIN_CELLS else safe_cell(_jsonable(v)) for v in row]
            for row in rows
        )
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for column in columns:
            table.add_column(
                column,
                justify="left" if column in {"meter", "id", "name", "ts", "start"} else "right",
                overflow="fold",  # a cell too wide for the terminal wraps; it is never cut short
            )
        for row in rows:
            table.add_row(*(_cell(v) for v in row))
        # Piped or redirected, the table is as wide as its cells: nothing is cut to 80 columns.
        width = None if sys.stdout.isatty() else PIPED_TABLE_WIDTH
        Console(soft_wrap=True, width=width).print(table)


PIPED_TABLE_WIDTH = 100_000
"""The width a table may take when stdout is not a terminal (a table is no wider than its cells)."""

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMAT_CHOICES),
    default="table",
    show_default=True,
    help="Output format.",
)
