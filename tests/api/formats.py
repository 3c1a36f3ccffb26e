"""Checks that an answer is valid in the format it claims, shared by the resource-route tests."""

from __future__ import annotations

import csv
import io
import json
import struct
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import yaml

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def xml_root(answer: httpx.Response) -> ET.Element:
    """Parse an XML answer and return its root element."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/xml")
    return ET.fromstring(answer.content)


def csv_rows(answer: httpx.Response, header: list[str] | None = None) -> list[dict[str, str]]:
    """Parse a CSV answer, check its header (when given), and return its rows."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    lines = answer.text.splitlines()
    assert lines, "a CSV answer has at least its header"
    if header is not None:
        assert lines[0].split(",") == header
    return list(csv.DictReader(io.StringIO(answer.text)))


def yaml_data(answer: httpx.Response) -> Any:
    """Parse a YAML answer."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/yaml")
    return yaml.safe_load(answer.text)


def ndjson_rows(answer: httpx.Response) -> list[Any]:
    """Parse an NDJSON answer, one JSON value per line."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in answer.text.splitlines() if line]


def png_size(answer: httpx.Response) -> tuple[int, int]:
    """Check a PNG answer's signature and return its (width, height) in pixels."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    assert answer.content[:8] == PNG_SIGNATURE
    assert answer.content[12:16] == b"IHDR"
    width, height = struct.unpack(">II", answer.content[16:24])
    return width, height


def problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    """Check a problem+json answer with ``status`` and return its body."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.headers
    body: dict[str, Any] = answer.json()
    assert body["status"] == status and body["detail"]
    return body
