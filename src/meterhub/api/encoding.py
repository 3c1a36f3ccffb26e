"""The formats the API speaks: choosing one from ``?format=`` or Accept, and encoding JSON and XML.

A browser asks for a page (``text/html``, ``application/xhtml+xml``) before XML; the API has no
pages, so those media types count as asking for JSON at their quality: a browser opening an API
URL reads JSON, never raw XML, while a client that prefers XML still gets it.

JSON goes through orjson; datetimes come out as ISO 8601 with their offset. XML is built from the
same JSON-ready value: a root element, one child per key, lists as repeated ``<item>`` elements,
None left out (or an empty element inside a list), and characters XML 1.0 forbids replaced, so
every answer parses.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import orjson
from pydantic import BaseModel
from starlette.requests import Request

__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "accepted_formats",
    "dumps_json",
    "json_default",
    "jsonable",
    "query_format",
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
