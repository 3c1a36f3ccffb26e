"""Answer a route's result in the format asked by ``?format=`` or Accept (JSON by default).

Every route answers JSON and XML. Tabular routes also pass ``rows`` (flat dicts), which makes
CSV, YAML and NDJSON available. :func:`stream` writes rows as they come, in constant memory.
CSV text cells that a spreadsheet would run as formulas get a leading ``'``. Every number is
rounded to its quantity's precision by the name of its key (:mod:`meterhub.precision`) in every
format, unless the route says it rounded them already.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Annotated, Any

import yaml
from fastapi import Query
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from meterhub.api.encoding import (
    FORMATS,
    MEDIA_TYPES,
    accepted_formats,
    dumps_json,
    jsonable,
    query_format,
    xml_document,
    xml_element,
)
from meterhub.api.problems import ApiProblem
from meterhub.csvsafe import safe_cell
from meterhub.precision import rounded

__all__ = [
    "TABULAR_FORMATS",
    "DocFormat",
    "FormatQuery",
    "answer_formats",
    "choose_format",
    "render",
    "stream",
]

TABULAR_FORMATS: tuple[str, ...] = ("csv", "yaml", "ndjson")
"""Formats that need rows."""

_DOCUMENT_FORMATS: tuple[str, ...] = ("json", "xml")
_CHUNK_ROWS = 500

_YamlDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's when PyYAML has it

FormatQuery = Annotated[
    str | None,
    Query(
        alias="format",
        pattern=r"^(json|xml|csv|yaml|ndjson)$",
        description="Answer format (instead of Accept): json (default), xml; csv, yaml, ndjson for tables.",
    ),
]
"""Declare ``?format=`` on a tabular route so OpenAPI shows it; :func:`render` reads it itself."""

DocFormat = Annotated[
    str | None,
    Query(alias="format", pattern=r"^(json|xml)$", description="Answer format (instead of Accept)."),
]
"""Declare ``?format=`` on a route that answers JSON or XML only."""


def answer_formats(*, tabular: bool = False, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """Return OpenAPI ``responses`` naming the media types a route answers besides JSON."""
    names = ("xml", *TABULAR_FORMATS) if tabular else ("xml",)
    return {status: {"content": {MEDIA_TYPES[name].split(";")[0]: {} for name in names}}}


def choose_format(request: Request, available: Sequence[str]) -> str:
    """Return the format to answer in: ``?format=`` first, then Accept, else JSON.

    A browser's page types in Accept (``text/html``, ``application/xhtml+xml``) ask for JSON, so
    a browser opening an API URL reads JSON rather than the XML it lists after them.

    An unknown ``?format=`` is a 422 problem; a known format this route cannot give, asked by
    ``?format=`` or by an Accept header naming nothing it can give, is a 406 problem.
    """
    asked = query_format(request)
    if asked is not None:
        if asked not in FORMATS:
            raise ApiProblem(
                422, "Unprocessable Content", f"unknown format {asked!r}; use one of {', '.join(available)}"
            )
        if asked not in available:
            raise ApiProblem(406, "Not Acceptable", f"this route answers {', '.join(available)}, not {asked}")
        return asked
    accepted = accepted_formats(request)
    for fmt in accepted:
        if fmt == "*":
            return "json"
        if fmt in available:
            return fmt
    if accepted:
        raise ApiProblem(
            406, "Not Acceptable", f"this route answers {', '.join(MEDIA_TYPES[f] for f in available)}"
        )
    return "json"


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return dumps_json(value).decode()
    return value


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _csv_text(rows: Iterable[dict[str, Any]], columns: Sequence[str], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow([safe_cell(column) for column in columns])
    for row in rows:
        writer.writerow([safe_cell(_cell(row.get(column))) for column in columns])
    return buffer.getvalue()


def _yaml_text(rows: list[Any]) -> str:
    return yaml.dump(rows, Dumper=_YamlDumper, sort_keys=False, allow_unicode=True, default_flow_style=False)


def _body(fmt: str, payload: Any, rows: list[dict[str, Any]] | None, root: str, exact: bool) -> bytes:
    if fmt == "json":
        return dumps_json(payload if exact else rounded(jsonable(payload)))
    if fmt == "xml":
        return xml_document(payload if exact else rounded(jsonable(payload)), root)
    table: list[dict[str, Any]] = jsonable(rows or [])
    if not exact:
        table = rounded(table)
    if fmt == "csv":
        return _csv_text(table, _columns(table), header=True).encode()
    if fmt == "yaml":
        return _yaml_text(table).encode()
    return b"".join(dumps_json(row) + b"\n" for row in table)


def render(
    request: Request,
    payload: Any,
    *,
    rows: list[dict[str, Any]] | None = None,
    root: str = "data",
    status_code: int = 200,
    rounded_already: bool = False,
) -> Response:
    """Answer ``payload`` (or ``rows``, for csv/yaml/ndjson) in the format the request asks.

    Numbers are rounded by their keys' units unless ``rounded_already`` says the route did it.
    """
    available = (*_DOCUMENT_FORMATS, *TABULAR_FORMATS) if rows is not None else _DOCUMENT_FORMATS
    fmt = choose_format(request, available)
    body = _body(fmt, payload, rows, root, rounded_already)
    return Response(body, status_code=status_code, media_type=MEDIA_TYPES[fmt])


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    while chunk := list(islice(rows, _CHUNK_ROWS)):
        yield jsonable(chunk)


def _stream_json(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    first = True
    yield b"["
    for chunk in _chunks(rows):
        body = b",".join(dumps_json(row) for row in chunk)
        yield body if first else b"," + body
        first = False
    yield b"]\n"


def _stream_xml(rows: Iterator[dict[str, Any]], root: str) -> Iterator[bytes]:
    yield f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>'.encode()
    for chunk in _chunks(rows):
        out: list[str] = []
        for row in chunk:
            xml_element("item", row, out)
        yield "".join(out).encode()
    yield f"</{root}>\n".encode()


def _stream_csv(rows: Iterator[dict[str, Any]], columns: Sequence[str] | None) -> Iterator[bytes]:
    header_written = False
    for chunk in _chunks(rows):
        if columns is None:
            columns = list(chunk[0])
        yield _csv_text(chunk, columns, header=not header_written).encode()
        header_written = True
    if not header_written and columns is not None:
        yield _csv_text([], columns, header=True).encode()


def _stream_yaml(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    empty = True
    for chunk in _chunks(rows):
        empty = False
        yield _yaml_text(chunk).encode()
    if empty:
        yield b"[]\n"


def _stream_ndjson(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    for chunk in _chunks(rows):
        yield b"".join(dumps_json(row) + b"\n" for row in chunk)


def stream(
    request: Request,
    rows: Iterator[dict[str, Any]],
    *,
    fmt: str | None = None,
    columns: Sequence[str] | None = None,
    root: str = "data",
    filename: str | None = None,
    rounded_already: bool = False,
) -> StreamingResponse:
    """Stream rows as csv, ndjson, json, xml or yaml in constant memory.

    ``fmt`` None chooses from the request; ``columns`` fixes the CSV header (else the first
    row's keys, and an empty export has no header). The iterator runs in a worker thread, so
    it may read the store. Numbers are rounded by their keys' units unless ``rounded_already``.
    """
    if not rounded_already:
        rows = (rounded(row) for row in rows)
    chosen = choose_format(request, (*_DOCUMENT_FORMATS, *TABULAR_FORMATS)) if fmt is None else fmt
    bodies = {
        "json": lambda: _stream_json(rows),
        "xml": lambda: _stream_xml(rows, root),
        "csv": lambda: _stream_csv(rows, columns),
        "yaml": lambda: _stream_yaml(rows),
        "ndjson": lambda: _stream_ndjson(rows),
    }
    if chosen not in bodies:
        raise ApiProblem(
            422, "Unprocessable Content", f"unknown format {chosen!r}; use one of {', '.join(bodies)}"
        )
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'} if filename else None
    return StreamingResponse(bodies[chosen](), media_type=MEDIA_TYPES[chosen], headers=headers)
