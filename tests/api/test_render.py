"""``render`` and ``stream``: every format valid, chosen by ?format= or Accept, over loopback HTTP."""

from __future__ import annotations

import csv
import io
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import yaml
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel

from meterhub.api.problems import install_problem_handlers
from meterhub.api.render import render, stream
from meterhub.model import Reading
from tests.simservers import served

T0 = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
ROWS: list[dict[str, Any]] = [
    {"meter": "m1", "ts": T0, "power_w": 1.5, "note": None, "ok": True},
    {"meter": "m2", "ts": T0, "power_w": -2.0, "note": 'a, "quoted" <note> & \x01', "ok": False},
]


class Model(BaseModel):
    name: str
    at: datetime


@pytest.fixture
def render_app() -> Iterator[tuple[httpx.Client, dict[str, int]]]:
    """Serve routes that answer with render() and stream()."""
    app = FastAPI()
    install_problem_handlers(app)
    pulled = {"rows": 0}
    lock = threading.Lock()

    @app.get("/doc")
    def doc(request: Request) -> Response:
        payload = {
            "model": Model(name="x", at=T0),
            "reading": Reading("m1", T0, power_w=5.0),
            "items": [1, None, {"15m": 2}],
            "missing": None,
            "tags": {"b", "a"},
        }
        return render(request, payload, root="doc")

    @app.get("/table")
    def table(request: Request) -> Response:
        return render(request, {"meter": "m1", "rows": ROWS}, rows=ROWS, root="table")

    @app.get("/stream")
    def export(request: Request, n: int = 3, fmt: str | None = None) -> Response:
        def rows() -> Iterator[dict[str, Any]]:
            for i in range(n):
                with lock:
                    pulled["rows"] += 1
                yield {"i": i, "ts": T0, "power_w": i / 2, "note": None}

        return stream(request, rows(), fmt=fmt, columns=["i", "ts", "power_w", "note"], root="export")

    with served(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        yield client, pulled


def test_json_is_the_default_with_iso_times(render_app: tuple[httpx.Client, dict[str, int]]) -> None:
    client, _ = render_app
    answer = client.get("/doc")
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["model"] == {"name": "x", "at": "2026-03-29T01:30:00+00:00"}
    assert body["reading"]["power_w"] == 5.0 and body["reading"]["ts"] == "2026-03-29T01:30:00+00:00"
    assert body["tags"] == ["a", "b"] and body["missing"] is None
    assert (
        client.get("/doc", headers={"Accept": "text/html,*/*;q=0.8"}).headers["content-type"]
        == "application/json"
    )


def test_xml_is_well_formed_with_items_and_no_nones(render_app: tuple[httpx.Client, dict[str, int]]) -> None:
    client, _ = render_app
    for answer in (client.get("/doc?format=xml"), client.get("/doc", headers={"Accept": "text/xml"})):
        assert answer.headers["content-type"] == "application/xml"
        root = ET.fromstring(answer.content)
        assert root.tag == "doc"
        assert root.findtext("model/at") == "2026-03-29T01:30:00+00:00"
        assert [item.text for item in root.find("items") or []][:2] == ["1", None]
        assert root.find("items/item/entry[@key='15m']") is not None  # a key that is no XML name
        assert root.find("missing") is None
    table = ET.fromstring(client.get("/table?format=xml").content)
    notes = [row.findtext("note") for row in table.iterfind("rows/item")]
    assert notes == [None, 'a, "quoted" <note> & \ufffd']
    assert [row.findtext("ok") for row in table.iterfind("rows/item")] == ["true", "false"]


def test_tabular_formats_need_rows(render_app: tuple[httpx.Client, dict[str, int]]) -> None:
    client, _ = render_app
    lines = list(csv.reader(io.StringIO(client.get("/table?format=csv").text)))
    assert lines[0] == ["meter", "ts", "power_w", "note", "ok"]
    assert lines[1] == ["m1", "2026-03-29T01:30:00+00:00", "1.5", "", "true"]
    assert lines[2][3] == 'a, "quoted" <note> & \x01'
    loaded = yaml.safe_load(client.get("/table", headers={"Accept": "application/yaml"}).text)
    assert [row["meter"] for row in loaded] == ["m1", "m2"] and loaded[0]["note"] is None
    ndjson = client.get("/table?format=ndjson")
    assert ndjson.headers["content-type"] == "application/x-ndjson"
    assert [orjson.loads(line)["power_w"] for line in ndjson.text.splitlines()] == [1.5, -2.0]
    assert (
        client.get("/table", headers={"Accept": "text/csv;q=0.5, application/yaml"}).headers["content-type"]
        == "application/yaml"
    )
    for asked, status in (("csv", 406), ("yaml", 406), ("ndjson", 406), ("pdf", 422)):
        answer = client.get("/doc", params={"format": asked})
        assert answer.status_code == status and answer.headers["content-type"] == "application/problem+json"
    assert client.get("/doc", headers={"Accept": "text/csv"}).status_code == 406
    assert client.get("/doc", headers={"Accept": "image/png"}).status_code == 200  # nothing known: JSON


@pytest.mark.parametrize("n", [0, 3])
def test_stream_gives_every_format(render_app: tuple[httpx.Client, dict[str, int]], n: int) -> None:
    client, _ = render_app
    text = client.get("/stream", params={"n": n, "fmt": "csv"}).text
    assert text.splitlines() == ["i,ts,power_w,note"] + [
        f"{i},2026-03-29T01:30:00+00:00,{i / 2}," for i in range(n)
    ]
    assert [r["i"] for r in client.get("/stream", params={"n": n, "fmt": "json"}).json()] == list(range(n))
    ndjson = client.get("/stream", params={"n": n, "fmt": "ndjson"}).text.splitlines()
    assert [orjson.loads(line)["i"] for line in ndjson] == list(range(n))
    assert [
        r["i"] for r in yaml.safe_load(client.get("/stream", params={"n": n, "fmt": "yaml"}).text)
    ] == list(range(n))
    root = ET.fromstring(client.get("/stream", params={"n": n, "fmt": "xml"}).content)
    assert root.tag == "export" and [item.findtext("i") for item in root] == [str(i) for i in range(n)]
    chosen = client.get("/stream", params={"n": n}, headers={"Accept": "application/x-ndjson"})
    assert chosen.headers["content-type"] == "application/x-ndjson"


def test_stream_is_lazy(render_app: tuple[httpx.Client, dict[str, int]]) -> None:
    client, pulled = render_app
    total = 200_000
    with client.stream("GET", "/stream", params={"n": total, "fmt": "csv"}) as answer:
        chunks = answer.iter_bytes()
        first = next(chunks)
        assert first.startswith(b"i,ts,power_w,note\n")
        assert pulled["rows"] < total  # the first bytes left before the rows were all read
        lines = first.count(b"\n") + sum(chunk.count(b"\n") for chunk in chunks)
    assert lines == total + 1
