"""Map Intellimeter answers, JSON or XML with ``type`` attributes, to the canonical model (pure).

Every reading route answers rows of ``MeterParam`` (the metering point), ``TimeStamping`` (the
site's local wall-clock time, no offset) and ``value``. Following the seed, ``/data`` and
``/file`` values are cumulative import registers in kWh (phase 0), and ``/interval`` values are
the import energy in kWh of the 5 minutes ending at ``TimeStamping``.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from meterhub.errors import PayloadError
from meterhub.model import IntervalEnergy, Reading

__all__ = [
    "INTERVAL",
    "ROW_KEYS",
    "SOURCE_INTERVAL",
    "PointValue",
    "decode_document",
    "interval_records",
    "point_identity",
    "point_names",
    "point_phases",
    "point_rows",
    "register_readings",
]

INTERVAL = timedelta(minutes=5)
"""Intellimeter records every metering point every 5 minutes."""
SOURCE_INTERVAL = "intellimeter.interval"
"""The ``source`` of interval-energy records taken from ``/interval``."""
_PLAUSIBLE_YEARS = (2000, 2100)
_XML_FORBIDDEN = ("<!DOCTYPE", "<!ENTITY")
"""The vendor's XML never declares a DTD; refusing one rules out entity expansion attacks."""

Document = object
"""A decoded answer: dicts, lists, str, int, float, bool and None."""


@dataclass(frozen=True, slots=True)
class PointValue:
    """One row of a reading route: a metering point's value at an instant (UTC)."""

    point: str
    ts: datetime
    value: float


def _text(raw: object, key: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise PayloadError(f"Intellimeter row field {key} is {raw!r}, not a name")
    return raw


def _number(raw: object, key: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise PayloadError(f"Intellimeter row field {key} is {raw!r}, not a number")
    try:
        value = float(raw)
    except OverflowError as exc:
        raise PayloadError(f"Intellimeter row field {key} is out of range") from exc
    if not math.isfinite(value):
        raise PayloadError(f"Intellimeter row field {key} is {value}, not a finite number")
    return value


def _wall_clock(raw: object, key: str) -> datetime:
    text = _text(raw, key)
    try:
        wall = datetime.fromisoformat(text)
    except ValueError as exc:
        raise PayloadError(f"Intellimeter row field {key} is {text!r}, not a time") from exc
    if not _PLAUSIBLE_YEARS[0] <= wall.year < _PLAUSIBLE_YEARS[1]:
        raise PayloadError(f"Intellimeter row field {key} is {text!r}, not a plausible time")
    return wall


ROW_KEYS = ("MeterParam", "TimeStamping", "value")
"""The fields of every ``/data``, ``/interval`` and ``/file`` row, in the vendor's order."""


# --- decoding ---------------------------------------------------------------------------------
def decode_document(body: bytes) -> Document:
    """Return the JSON or XML document in ``body``; raise PayloadError when it is neither."""
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise PayloadError("Intellimeter answered bytes that are not UTF-8 text") from exc
    if not text:
        raise PayloadError("Intellimeter answered an empty body")
    try:
        if text.startswith("<"):
            return _decode_xml(text)
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"Intellimeter answered an unreadable document ({exc})") from exc


def _decode_xml(text: str) -> Document:
    if any(marker in text for marker in _XML_FORBIDDEN):
        raise PayloadError("Intellimeter answered XML with a DTD, which it never sends")
    try:
        root = ET.fromstring(text)  # noqa: S314 - DTDs are refused above; no entities remain
    except ET.ParseError as exc:
        raise PayloadError(f"Intellimeter answered malformed XML ({exc})") from exc
    children = list(root)
    if children and all(child.tag == "item" for child in children):
        return [_xml_value(child) for child in children]
    return {child.tag: _xml_value(child) for child in children}


_XML_SCALARS: Mapping[str, Callable[[str], Document]] = {
    "str": lambda text: text,
    "int": int,
    "float": float,
    "bool": lambda text: text.strip().lower() == "true",
    "null": lambda _text: None,
}


def _xml_value(element: ET.Element) -> Document:
    kind = element.get("type", "str")
    if kind == "dict":
        return {child.tag: _xml_value(child) for child in element}
    if kind == "list":
        return [_xml_value(child) for child in element]
    read = _XML_SCALARS.get(kind)
    if read is None or len(element):
        raise PayloadError(f"Intellimeter XML element <{element.tag}> has unknown type {kind!r}")
    return read(element.text or "")


# --- rows -------------------------------------------------------------------------------------
def _rows(document: Document) -> list[Mapping[str, object]]:
    if isinstance(document, dict) and not document:
        return []  # the vendor's empty XML answer, <Response></Response>
    if not isinstance(document, list):
        raise PayloadError(f"Intellimeter answered {type(document).__name__}, not a list of rows")
    for row in document:
        if not isinstance(row, dict):
            raise PayloadError(f"Intellimeter row is {type(row).__name__}, not an object")
    return document


def _to_utc(wall: datetime, zone: tzinfo, after: datetime | None, now: datetime | None) -> datetime:
    """Place a wall-clock time; an ambiguous one (DST fold) goes after ``after``, not after ``now``."""
    try:
        if wall.tzinfo is not None:
            return wall.astimezone(UTC)
        early = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        late = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise PayloadError(f"Intellimeter time {wall.isoformat()} is out of range") from exc
    if early == late:
        return early
    if after is not None:
        return early if early > after else late
    if now is not None and late <= now:
        return late
    return early


def point_rows(document: Document, zone: tzinfo, now: datetime | None = None) -> list[PointValue]:
    """Return the rows of a ``/data``, ``/interval`` or ``/file`` answer with UTC times.

    Rows of one point come in time order, so a repeated wall-clock hour at the end of summer
    time is told apart by what came before it; a lone ambiguous row takes the later instant
    that is not after ``now``.
    """
    values: list[PointValue] = []
    last_by_point: dict[str, datetime] = {}
    for row in _rows(document):
        point_key, time_key, value_key = ROW_KEYS
        point = _text(row.get(point_key), point_key)
        wall = _wall_clock(row.get(time_key), time_key)
        value = _number(row.get(value_key), value_key)
        ts = _to_utc(wall, zone, last_by_point.get(point), now)
        last_by_point[point] = ts
        values.append(PointValue(point, ts, value))
    return values


def point_names(values: Iterable[PointValue]) -> list[str]:
    """Return the distinct metering points among ``values``, sorted."""
    return sorted({value.point for value in values})


def register_readings(values: Iterable[PointValue], meter_id: str, point: str) -> list[Reading]:
    """Return the import-register readings of ``point`` (phase 0, kWh) as ``meter_id``."""
    return [
        Reading(meter=meter_id, ts=value.ts, energy_import_kwh=value.value)
        for value in values
        if value.point == point
    ]


def interval_records(values: Iterable[PointValue], meter_id: str, point: str) -> list[IntervalEnergy]:
    """Return the 5-minute import energies of ``point``, each ending at its row's time."""
    records: list[IntervalEnergy] = []
    for value in values:
        if value.point != point:
            continue
        if value.value < 0:
            raise PayloadError(f"Intellimeter interval energy {value.value} kWh is negative")
        start = value.ts - INTERVAL
        records.append(IntervalEnergy(meter_id, start, value.ts, value.value, None, SOURCE_INTERVAL))
    return records


def point_phases(document: Document) -> int:
    """Return the number of phases a ``/point`` answer gives (``NoPhases`` is a string)."""
    if not isinstance(document, dict):
        raise PayloadError(f"Intellimeter /point answered {type(document).__name__}, not an object")
    raw = document.get("NoPhases")
    try:
        phases = int(str(raw).strip())
    except ValueError as exc:
        raise PayloadError(f"Intellimeter /point NoPhases is {raw!r}, not a number") from exc
    if phases not in (1, 2, 3):
        raise PayloadError(f"Intellimeter /point NoPhases is {phases}, not 1 to 3")
    return phases


def point_identity(document: Document) -> tuple[int, str]:
    """Return the stable ``id`` and the current name (``MeterId``) a ``/point`` answer gives.

    The id is what the vendor keeps when a point is renamed; the name is what reading rows
    carry as ``MeterParam``.
    """
    if not isinstance(document, dict):
        raise PayloadError(f"Intellimeter /point answered {type(document).__name__}, not an object")
    raw_id = document.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, int):
        raise PayloadError(f"Intellimeter /point id is {raw_id!r}, not a whole number")
    return raw_id, _text(document.get("MeterId"), "MeterId")
