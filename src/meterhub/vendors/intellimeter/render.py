"""Render Intellimeter answers as the vendor does: JSON, or XML with ``type`` attributes.

The vendor's XML is what ``dicttoxml`` makes of a Python value under a ``<Response>`` root:
every element carries ``type="str|int|float|bool|null|dict|list"``, list members are
``<item>``, booleans read ``True``/``False``. Timestamps that the vendor keeps as datetime
objects come out as ``YYYY-MM-DD HH:MM:SS`` in JSON (``str(datetime)``) and as ISO
``YYYY-MM-DDTHH:MM:SS`` in XML (``datetime.isoformat()``); :class:`Stamp` carries that
difference.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TypeAlias
from xml.sax.saxutils import escape

import yaml

__all__ = [
    "FILE_MEDIA_TYPES",
    "JSON_MEDIA_TYPE",
    "XML_DECLARATION",
    "XML_MEDIA_TYPE",
    "Stamp",
    "Value",
    "render_file",
    "to_json",
    "to_plain",
    "to_xml",
]


class Stamp:
    """A local wall-clock time the vendor renders differently in JSON and in XML."""

    __slots__ = ("local",)

    def __init__(self, local: datetime) -> None:
        self.local = local.replace(tzinfo=None, microsecond=0)

    def json_text(self) -> str:
        """Return the JSON form, ``2019-10-30 13:15:00``."""
        return self.local.isoformat(sep=" ")

    def xml_text(self) -> str:
        """Return the XML form, ``2019-10-30T13:15:00``."""
        return self.local.isoformat()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stamp) and other.local == self.local

    def __hash__(self) -> int:
        return hash(self.local)

    def __repr__(self) -> str:
        return f"Stamp({self.json_text()!r})"


Value: TypeAlias = "str | int | float | bool | Stamp | Mapping[str, Value] | Sequence[Value] | None"

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" ?>'
JSON_MEDIA_TYPE = "application/json"
XML_MEDIA_TYPE = "application/xml"
FILE_MEDIA_TYPES: Mapping[str, str] = {
    "csv": "text/csv",
    "json": JSON_MEDIA_TYPE,
    "xml": XML_MEDIA_TYPE,
    "yaml": "application/x-yaml",
}
"""The export formats of ``/file`` and the media type each is served with."""


def to_plain(value: Value) -> object:
    """Return ``value`` with every :class:`Stamp` replaced by its JSON text."""
    if isinstance(value, Stamp):
        return value.json_text()
    if isinstance(value, Mapping):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, str | bytes):
        return value
    if isinstance(value, Sequence):
        return [to_plain(item) for item in value]
    return value


def to_json(value: Value) -> str:
    """Render ``value`` as the vendor's JSON (``json.dumps`` with default separators)."""
    return json.dumps(to_plain(value))


def _xml_type(value: Value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if value is None:
        return "null"
    if isinstance(value, str | Stamp):
        return "str"
    if isinstance(value, Mapping):
        return "dict"
    return "list"


def _xml_text(value: Value) -> str:
    if isinstance(value, Stamp):
        return value.xml_text()
    if value is None:
        return ""
    return escape(str(value))


def _xml_children(value: Value) -> str:
    if isinstance(value, Mapping):
        return "".join(_xml_element(key, item) for key, item in value.items())
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "".join(_xml_element("item", item) for item in value)
    return _xml_text(value)


def _xml_element(name: str, value: Value) -> str:
    return f'<{name} type="{_xml_type(value)}">{_xml_children(value)}</{name}>'


def to_xml(value: Value) -> str:
    """Render ``value`` as the vendor's XML document under a ``<Response>`` root."""
    return f"{XML_DECLARATION}<Response>{_xml_children(value)}</Response>"


def _csv_cell(value: Value) -> object:
    return value.json_text() if isinstance(value, Stamp) else value


def render_file(rows: Sequence[Mapping[str, Value]], columns: Sequence[str], file_type: str) -> str:
    """Render export rows (keyed by ``columns``) as ``csv``, ``json``, ``xml`` or ``yaml`` text."""
    if file_type == "json":
        return to_json(rows)
    if file_type == "xml":
        return to_xml(rows)
    if file_type == "yaml":
        return yaml.safe_dump(to_plain(rows), sort_keys=False)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_csv_cell(row[column]) for column in columns] for row in rows)
    return buffer.getvalue()
