"""The formats the API speaks: choosing one from ``?format=`` or Accept, and encoding JSON and XML.

A browser asks for a page (``text/html``, ``application/xhtml+xml``) before XML; the API has no
pages, so those media types count as asking for JSON at their quality: a browser opening an API
URL reads JSON, never raw XML, while a client that prefers XML still gets it.

JSON goes through orjson; datetimes come out as ISO 8601 with their offset. A table held as
columns (:func:`json_records`) is encoded a column at a time and interleaved with its keys, the
same bytes as its rows would give as dicts, without a dict per row. XML is built from the
same JSON-ready value: a root element, one child per key, lists as repeated ``<item>`` elements,
None left out (or an empty element inside a list), and characters XML 1.0 forbids replaced, so
every answer parses.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import numpy.typing as npt
import orjson
from pydantic import BaseModel
from starlette.requests import Request

__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "accepted_formats",
    "dumps_json",
    "iso_utc",
    "json_default",
    "json_records",
    "jsonable",
    "query_format",
    "utc_moments",
    "xml_document",
    "xml_element",
]

MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "xml": "application/xml",
    "csv": "text/csv; charset=utf-8",
    "yaml": "application/yaml",
    "ndjson": "application/x-ndjson",
}
"""The media type each format is answered with."""

FORMATS: tuple[str, ...] = tuple(MEDIA_TYPES)

_ACCEPT: dict[str, str] = {
    "application/json": "json",
    "application/problem+json": "json",
    "text/json": "json",
    "application/xml": "xml",
    "application/problem+xml": "xml",
    "text/xml": "xml",
    "text/csv": "csv",
    "application/csv": "csv",
    "application/yaml": "yaml",
    "application/x-yaml": "yaml",
    "text/yaml": "yaml",
    "text/x-yaml": "yaml",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "text/html": "json",
    "application/xhtml+xml": "json",
    "*/*": "*",
    "application/*": "*",
    "text/*": "*",
}
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def json_default(value: Any) -> Any:
    """Turn what orjson cannot encode by itself into something it can."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    if hasattr(value, "_asdict"):  # NamedTuples such as Reading and Bucket
        return value._asdict()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps_json(value: Any) -> bytes:
    """Encode a value as compact JSON."""
    return orjson.dumps(value, default=json_default, option=orjson.OPT_NON_STR_KEYS)


Column = npt.NDArray[np.int64] | npt.NDArray[np.float64] | npt.NDArray[np.datetime64] | Sequence[Any]
"""A table column for :func:`json_records`: a 1-D numeric or datetime64 array, or JSON values."""

_NUMPY = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC


def _items(column: Column) -> tuple[list[bytes], bool]:
    """Return the JSON text of each cell, and whether the texts are strings stripped of their quotes.

    A numeric or datetime64 array is one orjson call split at its commas (numbers, null and
    ISO 8601 texts hold none). Strings are one call too when no escape is needed: then every
    ``"`` delimits, and ``","`` only ever separates two of them. Anything else is encoded cell
    by cell.
    """
    if isinstance(column, np.ndarray) and column.ndim == 1 and column.dtype.kind in "fiuM":
        try:
            return orjson.dumps(column, option=_NUMPY)[1:-1].split(b","), False
        except orjson.JSONEncodeError:  # a moment outside the years orjson writes
            return [dumps_json(cell) for cell in utc_moments(column.astype("datetime64[us]"))], False
    if set(map(type, column)) <= {str}:
        text = orjson.dumps(column)
        if b"\\" not in text:
            return text[2:-2].split(b'","'), True
    return [dumps_json(cell) for cell in column], False


def utc_moments(moments: npt.NDArray[np.datetime64]) -> list[datetime]:
    """Return naive UTC datetime64 values as aware UTC datetimes."""
    naive: list[datetime] = moments.astype("datetime64[us]").tolist()
    return [moment.replace(tzinfo=UTC) for moment in naive]


def iso_utc(moments: npt.NDArray[np.datetime64]) -> list[str]:
    """Return naive UTC datetime64 values as the texts ``isoformat`` gives their aware UTC datetimes."""
    try:
        texts: list[str] = orjson.loads(orjson.dumps(moments, option=_NUMPY))
    except orjson.JSONEncodeError:
        return [moment.isoformat() for moment in utc_moments(moments)]
    return texts


def json_records(keys: Sequence[str], columns: Sequence[Column]) -> bytes:
    """Encode a table given as columns as ``dumps_json([dict(zip(keys, row)) for row in rows])`` would.

    Each column is encoded in one go and its cells interleaved with the keys: no dict per row.
    """
    if len(keys) != len(columns) or not keys:
        raise ValueError("json_records needs one column per key, and at least one")
    if len(set(keys)) != len(keys):
        raise ValueError("json_records needs distinct keys")
    rows = len(columns[0])
    if any(len(column) != rows for column in columns):
        raise ValueError("json_records needs columns of equal length")
    if rows == 0:
        return b"[]"
    cells = [_items(column) for column in columns]
    stride = 2 * len(keys)
    parts: list[bytes] = [b""] * (stride * rows)
    after = b""  # what closes the previous cell: its quote, if it was a string
    for k, (key, (texts, quoted)) in enumerate(zip(keys, cells, strict=True)):
        opening = b'"' if quoted else b""
        parts[2 * k :: stride] = [after + b"," + dumps_json(key) + b":" + opening] * rows
        parts[2 * k + 1 :: stride] = texts
        after = opening
    first_key = dumps_json(keys[0]) + b":" + (b'"' if cells[0][1] else b"")
    parts[0::stride] = [after + b"},{" + first_key] * rows  # closes the row before
    parts[0] = b"[{" + first_key
    parts.append(after + b"}]")
    return b"".join(parts)


def jsonable(value: Any) -> Any:
    """Return ``value`` as plain JSON data: dicts, lists, strings, numbers, booleans and None."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return orjson.loads(dumps_json(value))


def query_format(request: Request) -> str | None:
    """Return the ``?format=`` value, lower-cased, or None when absent or empty."""
    value = request.query_params.get("format")
    return value.strip().lower() or None if value is not None else None


def accepted_formats(request: Request) -> list[str]:
    """Return the formats the Accept header names, best first; ``*`` stands for any.

    Page types (``text/html``, ``application/xhtml+xml``) are read as JSON.
    """
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(request.headers.get("accept", "").split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        fmt = _ACCEPT.get(media.lower())
        if fmt is not None and quality > 0:
            weighted.append((-quality, position, fmt))
    return [fmt for _, _, fmt in sorted(weighted)]


def _text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, date):
        return value.isoformat()
    return escape(_NOT_XML.sub("\ufffd", str(value)))


def _open_tag(name: str) -> tuple[str, str]:
    if _XML_NAME.fullmatch(name) and not name.lower().startswith("xml"):
        return f"<{name}", name
    return f"<entry key={quoteattr(_NOT_XML.sub(chr(0xFFFD), name))}", "entry"


def xml_element(name: str, value: Any, out: list[str], item: str = "item") -> None:
    """Append ``value`` (plain JSON data) as the element ``name`` to ``out``; None is left out."""
    if value is None:
        return
    opening, closing = _open_tag(name)
    if isinstance(value, Mapping):
        out.append(opening + ">")
        for key, child in value.items():
            xml_element(str(key), child, out, item)
        out.append(f"</{closing}>")
    elif isinstance(value, list | tuple):
        out.append(opening + ">")
        _xml_items(value, out, item)
        out.append(f"</{closing}>")
    else:
        out.append(f"{opening}>{_text(value)}</{closing}>")


def _xml_items(values: Iterable[Any], out: list[str], item: str) -> None:
    for child in values:
        if child is None:
            out.append(f"<{item}/>")
        else:
            xml_element(item, child, out, item)


def xml_document(
    value: Any, root: str = "data", *, namespace: str | None = None, item: str = "item"
) -> bytes:
    """Encode ``value`` as a whole XML document under the element ``root``."""
    data = jsonable(value)
    xmlns = f" xmlns={quoteattr(namespace)}" if namespace else ""
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n', f"<{root}{xmlns}>"]
    if isinstance(data, Mapping):
        for key, child in data.items():
            xml_element(str(key), child, out, item)
    elif isinstance(data, list):
        _xml_items(data, out, item)
    elif data is not None:
        out.append(_text(data))
    out.append(f"</{root}>\n")
    return "".join(out).encode()
