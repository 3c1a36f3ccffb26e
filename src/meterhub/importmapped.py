"""Read CSV files that are not in the canonical columns: any CSV through a column map, and the
history CSV Home Assistant's history panel downloads (``entity_id,state,last_changed``).

A map is written ``QUANTITY=SOURCE`` (``--map power_w=Power``): the canonical column ``QUANTITY``
is read from the file's column ``SOURCE`` (for a Home Assistant file, from the states of entity
``SOURCE``, as ``[METER/]QUANTITY=ENTITY``). ``SOURCE*FACTOR`` multiplies each value, so a
column in kW fills ``power_w`` with ``power_w=Power*1000``. Each row becomes a reading or a
rejection with its line number and reason, as in :mod:`meterhub.importer`; every question about
the header and the maps is answered before anything is written.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from meterhub.errors import ImportFileError
from meterhub.ids import id_problem
from meterhub.importer import ImportRow, to_reading
from meterhub.model import READING_FIELDS

__all__ = [
    "HA_COLUMNS",
    "MapItem",
    "home_assistant_rows",
    "is_home_assistant",
    "mapped_rows",
    "parse_maps",
    "sniff_delimiter",
]

HA_COLUMNS = ("entity_id", "state", "last_changed")
"""The columns of a Home Assistant history CSV."""
HA_NO_VALUE = frozenset({"unavailable", "unknown", "none", ""})
"""States Home Assistant records when a sensor had no value."""
COLUMN_QUANTITIES = ("meter", "ts", "phase", *READING_FIELDS)
"""What a column map may fill."""
_AUTO_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("power_factor", "power_factor"),
    ("reactive_power", "reactive_power_var"),
    ("power", "power_w"),
    ("voltage", "voltage_v"),
    ("current", "current_a"),
    ("frequency", "frequency_hz"),
)
"""The automatic map of a Home Assistant sensor: the end of its object id names the quantity."""
_ENERGY = re.compile(r"energy")
_EXPORT_WORDS = ("export", "returned", "to_grid", "produced", "production")
_IMPORT_WORDS = ("import", "consumed", "consumption", "from_grid", "delivered")
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True, slots=True)
class MapItem:
    """One ``--map``: the quantity filled, where from, and (Home Assistant) the meter it belongs to."""

    quantity: str
    source: str
    meter: str | None = None
    factor: float = 1.0
    """What each value is multiplied by (``SOURCE*FACTOR``), such as 1000 from kW to W."""


def parse_maps(items: Sequence[str]) -> list[MapItem]:
    """Read ``[METER/]QUANTITY=SOURCE[*FACTOR]`` items; raise ImportFileError naming what is wrong."""
    parsed: list[MapItem] = []
    for item in items:
        target, sep, source = item.partition("=")
        source, target = source.strip(), target.strip()
        if not sep or not target or not source:
            raise ImportFileError(f"--map {item!r}: write QUANTITY=SOURCE, such as --map power_w=Power")
        meter, slash, quantity = target.rpartition("/")
        if slash:
            problem = id_problem(meter)
            if problem is not None:
                raise ImportFileError(f"--map {item!r}: bad meter id: {problem}")
        if quantity not in COLUMN_QUANTITIES:
            raise ImportFileError(
                f"--map {item!r}: unknown quantity {quantity!r}; use one of {', '.join(COLUMN_QUANTITIES)}"
            )
        source, factor = _factor(item, quantity, source)
        parsed.append(MapItem(quantity, source, meter if slash else None, factor))
    return parsed


def _factor(item: str, quantity: str, source: str) -> tuple[str, float]:
    """Split ``SOURCE*FACTOR`` when what follows the last ``*`` is a number; else no factor."""
    name, star, text = source.rpartition("*")
    if not star or not name.strip():
        return source, 1.0
    try:
        factor = float(text)
    except ValueError:
        return source, 1.0  # a '*' inside a column's name
    if not math.isfinite(factor) or factor == 0:
        raise ImportFileError(f"--map {item!r}: the factor must be a finite number other than 0")
    if quantity not in READING_FIELDS:
        raise ImportFileError(f"--map {item!r}: only a quantity ({', '.join(READING_FIELDS)}) takes a factor")
    return name.strip(), factor


def _scaled(text: str, factor: float) -> str | float:
    """Return a value times ``factor``; text that is not a number stays, for the reading's check."""
    if factor == 1.0:
        return text
    try:
        return float(text) * factor
    except ValueError:
        return text


def sniff_delimiter(header: str) -> str:
    """Return the header's field separator: ``,`` unless the line holds only ``;`` or tabs."""
    if "," in header:
        return ","
    if ";" in header:
        return ";"
    return "\t" if "\t" in header else ","


def is_home_assistant(header: list[str]) -> bool:
    """Tell whether a CSV header is a Home Assistant history export's."""
    names = {column.strip().lower() for column in header}
    return all(column in names for column in HA_COLUMNS)


def _number_text(value: str, decimal_comma: bool) -> str:
    text = value.strip()
    if decimal_comma and "," in text and _NUMBER.match(text):
        return text.replace(",", ".")
    return text


def _records(
    text: io.TextIOWrapper, delimiter: str
) -> Iterator[tuple[str, list[str] | None, str | None]]:
    """Yield (where, fields, problem) of each record after the header (line 1, already read).

    Blank records are left out.
    """
    reader = csv.reader(text, delimiter=delimiter)
    last_line = reader.line_num
    while True:
        where = f"line {last_line + 2}"
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            last_line = reader.line_num
            yield where, None, f"unreadable CSV: {exc}"
            continue
        last_line = reader.line_num
        if not values or all(not v.strip() for v in values):
            continue
        if any("\udc80" <= c <= "\udcff" for c in "".join(values)):
            yield where, None, "not UTF-8 text"
            continue
        yield where, values, None


def _header(stream: BinaryIO) -> tuple[io.TextIOWrapper, list[str], str]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    first = text.readline()
    if not first.strip():
        text.detach()
        raise ImportFileError("the file is empty" if not first else "line 1: the header is blank")
    delimiter = sniff_delimiter(first)
    header = [c.strip() for c in next(csv.reader([first], delimiter=delimiter), [])]
    return text, header, delimiter


def mapped_rows(
    stream: BinaryIO, maps: Sequence[MapItem], default_meter: str | None, tz: str | None
) -> Iterator[ImportRow]:
    """Yield every row of any CSV whose columns ``maps`` names (header columns already canonical count too).

    The separator is ``,``, else ``;`` or a tab when the header holds only that; with ``;`` a
    decimal comma (``1,5``) is read as a decimal point. Columns neither mapped nor canonical are
    left out. Raise ImportFileError before the first row when the header does not fit the maps.
    """
    text, header, delimiter = _header(stream)
    try:
        yield from _mapped(text, header, delimiter, maps, default_meter, tz)
    finally:
        text.detach()


def _mapped(
    text: io.TextIOWrapper,
    header: list[str],
    delimiter: str,
    maps: Sequence[MapItem],
    default_meter: str | None,
    tz: str | None,
) -> Iterator[ImportRow]:
    position = {name: k for k, name in reversed(list(enumerate(header)))}
    columns: dict[str, int] = {q: position[q] for q in COLUMN_QUANTITIES if q in position}
    factors: dict[str, float] = {}
    seen: set[str] = set()
    for item in maps:
        if item.meter is not None:
            raise ImportFileError(
                f"--map {item.meter}/{item.quantity}: a meter in a map is for Home Assistant files; "
                "map a meter column with --map meter=COLUMN or give --meter"
            )
        if item.quantity in seen:
            raise ImportFileError(f"--map names {item.quantity} more than once")
        seen.add(item.quantity)
        if item.source not in position:
            raise ImportFileError(
                f"--map {item.quantity}={item.source}: the header has no column {item.source!r} "
                f"(found: {', '.join(header)})"
            )
        columns[item.quantity] = position[item.source]
        factors[item.quantity] = item.factor
    if "ts" not in columns:
        raise ImportFileError(f"no time column: add --map ts=COLUMN (found: {', '.join(header)})")
    if not set(columns) & set(READING_FIELDS):
        raise ImportFileError(
            f"no quantity is mapped: add --map QUANTITY=COLUMN such as --map power_w=Power "
            f"(found: {', '.join(header)})"
        )
    decimal_comma = delimiter == ";"
    width = len(header)
    for where, values, problem in _records(text, delimiter):
        if values is None:
            yield ImportRow(where, None, problem)
            continue
        if len(values) != width:
            yield ImportRow(where, None, f"{len(values)} fields where the header has {width}")
            continue
        record = {
            q: _scaled(_number_text(values[k], decimal_comma), factors.get(q, 1.0))
            for q, k in columns.items()
        }
        try:
            yield ImportRow(where, to_reading(record, default_meter, tz))
        except ValueError as exc:
            yield ImportRow(where, None, str(exc))


def auto_quantity(entity_id: str) -> str | None:
    """Return the quantity a Home Assistant sensor's id names by its ending, or None."""
    domain, _, object_id = entity_id.partition(".")
    if domain != "sensor":
        return None
    name = object_id.lower()
    if _ENERGY.search(name):
        exports = any(word in name for word in _EXPORT_WORDS)
        imports = any(word in name for word in _IMPORT_WORDS)
        if exports != imports:
            return "energy_export_kwh" if exports else "energy_import_kwh"
        return None
    for suffix, quantity in _AUTO_SUFFIXES:
        if name.endswith(suffix):
            return quantity
    return None


def home_assistant_targets(
    entities: Sequence[str], maps: Sequence[MapItem], default_meter: str | None
) -> dict[str, tuple[str, str, float]]:
    """Return the meter and quantity of each entity to import, from ``maps`` or else automatically.

    With no map, each sensor whose id ends in a quantity's name (``…_power``, ``…_voltage``,
    ``…_energy_import``…) fills it on ``default_meter``; two sensors filling one quantity of one
    meter are refused, as is a map naming no meter without ``--meter``.
    """
    targets: dict[str, tuple[str, str, float]] = {}
    if maps:
        for item in maps:
            if item.quantity not in READING_FIELDS:
                raise ImportFileError(
                    f"--map {item.quantity}={item.source}: a Home Assistant state fills a quantity "
                    f"({', '.join(READING_FIELDS)})"
                )
            meter = item.meter or default_meter
            if meter is None:
                raise ImportFileError(
                    f"--map {item.quantity}={item.source}: no meter; "
                    f"give --meter or map METER/{item.quantity}"
                )
            if item.source in targets:
                raise ImportFileError(f"--map names entity {item.source} more than once")
            targets[item.source] = (meter, item.quantity, item.factor)
    else:
        if default_meter is None:
            raise ImportFileError(
                "a Home Assistant file needs --meter (or maps naming METER/QUANTITY=ENTITY)"
            )
        for entity in entities:
            quantity = auto_quantity(entity)
            if quantity is not None:
                targets[entity] = (default_meter, quantity, 1.0)
        if not targets:
            raise ImportFileError(
                "no entity's id names a quantity; map them with --map QUANTITY=ENTITY "
                f"(entities: {', '.join(sorted(entities)[:20])})"
            )
    filled: dict[tuple[str, str], str] = {}
    for entity, (meter, quantity, _) in sorted(targets.items()):
        other = filled.setdefault((meter, quantity), entity)
        if other != entity:
            raise ImportFileError(
                f"entities {other} and {entity} both fill {quantity} of meter {meter}; "
                "map them to different meters with --map METER/QUANTITY=ENTITY"
            )
    return targets


def home_assistant_entities(stream: BinaryIO) -> list[str]:
    """Return the distinct entity ids of a Home Assistant history CSV, in the order they appear."""
    text, header, delimiter = _header(stream)
    try:
        column = [c.lower() for c in header].index("entity_id")
        found: dict[str, None] = {}
        for _, values, _ in _records(text, delimiter):
            if values is not None and len(values) > column:
                found[values[column].strip()] = None
        return list(found)
    finally:
        text.detach()


def home_assistant_rows(
    stream: BinaryIO, targets: dict[str, tuple[str, str, float]], tz: str | None
) -> Iterator[ImportRow]:
    """Yield every state row of a Home Assistant history CSV as a one-quantity reading or a rejection.

    States ``unavailable`` and ``unknown`` (no value) and entities not in ``targets`` are rejected
    with their line and reason, so the summary tells what was left out.
    """
    text, header, delimiter = _header(stream)
    try:
        lower = [c.lower() for c in header]
        entity_at, state_at, ts_at = (lower.index(name) for name in HA_COLUMNS)
        width = len(header)
        for where, values, problem in _records(text, delimiter):
            if values is None:
                yield ImportRow(where, None, problem)
                continue
            if len(values) != width:
                yield ImportRow(where, None, f"{len(values)} fields where the header has {width}")
                continue
            entity = values[entity_at].strip()
            target = targets.get(entity)
            if target is None:
                yield ImportRow(where, None, f"entity not mapped: {entity} (add --map QUANTITY={entity})")
                continue
            state = values[state_at].strip()
            if state.lower() in HA_NO_VALUE:
                yield ImportRow(where, None, f"state {state or 'empty'}: {entity} had no value")
                continue
            meter, quantity, factor = target
            record = {"meter": meter, "ts": values[ts_at], quantity: _scaled(state, factor)}
            try:
                yield ImportRow(where, to_reading(record, None, tz))
            except ValueError as exc:
                yield ImportRow(where, None, str(exc))
    finally:
        text.detach()
