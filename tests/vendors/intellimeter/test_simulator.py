"""The Intellimeter simulator answers every documented request as the vendor document shows."""

from __future__ import annotations

import csv
import io
import json
import re
import struct
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette

from meterhub.vendors.intellimeter.simulator import create_app

from .seed_examples import EXAMPLES
from .shapes import XML_DECLARATION, assert_xml_like, json_problems

pytestmark = pytest.mark.anyio

START = datetime(2026, 1, 15, 17, 42, 10, tzinfo=UTC)
KEY_RE = re.compile(r"^[0-9a-f]{10}(-[0-9a-f]{10}){3}$")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

REQUESTS: dict[tuple[str, str], dict[str, Any]] = {
    ("/session", "PUT"): {"data": {"username": "test", "password": "test"}},
    ("/user", "POST"): {"data": {"email": "renamed@example.com"}},
    ("/user", "PUT"): {"data": {"username": "fresh", "password": "pw", "email": "f@example.com"}},
    ("/point", "GET"): {"params": {"id": "1"}},
    ("/point", "POST"): {"data": {"id": "1", "new": "main"}},
}
"""Parameters for the documented requests that need some."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_app(**options: Any) -> Starlette:
    options.setdefault("start", START)
    options.setdefault("extra_users", (("test2", "secret2", "test2@example.com"),))
    return create_app(seed=7, speed=0.0, **options)


@asynccontextmanager
async def client_for(app: Starlette, *, login: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.intellimeter.test") as c:
        if login:
            answer = await c.put("/session", data={"username": "test", "password": "test"})
            assert answer.status_code == 200, answer.text
        yield c


async def documented_request(
    client: httpx.AsyncClient, path: str, method: str, *, xml: bool
) -> httpx.Response:
    extra = REQUESTS.get((path, method), {})
    params = {**extra.get("params", {}), "xml": "true" if xml else "false"}
    data = extra.get("data")
    return await client.request(method, path, params=params, data=data)


@pytest.mark.parametrize(("path", "method", "json_example", "xml_example"), EXAMPLES)
async def test_json_answer_has_the_documented_structure(
    path: str, method: str, json_example: str, xml_example: str
) -> None:
    async with client_for(make_app()) as client:
        answer = await documented_request(client, path, method, xml=False)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert json_problems(answer.json(), json.loads(json_example)) == []


@pytest.mark.parametrize(("path", "method", "json_example", "xml_example"), EXAMPLES)
async def test_xml_answer_has_the_documented_structure_and_types(
    path: str, method: str, json_example: str, xml_example: str
) -> None:
    async with client_for(make_app()) as client:
        answer = await documented_request(client, path, method, xml=True)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/xml")
    assert_xml_like(answer.text, xml_example)


async def test_empty_answers_are_exactly_empty() -> None:
    async with client_for(make_app()) as client:
        assert (await client.delete("/session", params={"xml": "true"})).text == (
            f"{XML_DECLARATION}<Response></Response>"
        )
    async with client_for(make_app()) as client:
        assert (await client.delete("/user")).text == "{}"


async def test_xml_is_chosen_by_accept_header_or_account_setting() -> None:
    async with client_for(make_app()) as client:
        by_header = await client.get("/key", headers={"Accept": "application/xml"})
        assert by_header.text.startswith(XML_DECLARATION)
        await client.post("/user", data={"xml": "true"})
        assert (await client.get("/key")).text.startswith(XML_DECLARATION)
        assert (await client.get("/key", params={"xml": "false"})).json()["key"]


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "test", "password": "wrong"},
        {"username": "nobody", "password": "test"},
        {"key": "0000000000-0000000000-0000000000-0000000000"},
        {},
    ],
)
async def test_failed_login_is_401(credentials: dict[str, str]) -> None:
    async with client_for(make_app(), login=False) as client:
        answer = await client.put("/session", data=credentials)
        assert answer.status_code == 401
        assert isinstance(answer.json()["error"], str)
        assert (await client.get("/session")).status_code == 401


OPEN_ROUTES = {("/session", "PUT"), ("/session", "DELETE")}
GUARDED_ROUTES = sorted({(p, m) for p, m, _, _ in EXAMPLES} - OPEN_ROUTES)


@pytest.mark.parametrize(
    ("path", "method"), [*GUARDED_ROUTES, ("/graphics", "GET"), ("/file", "GET")]
)
async def test_every_route_wants_a_login(path: str, method: str) -> None:
    async with client_for(make_app(), login=False) as client:
        answer = await client.request(method, path, params={"xml": "true"})
    assert answer.status_code == 401
    assert ET.fromstring(answer.text).find("error") is not None


async def test_login_by_key_and_key_rotation() -> None:
    app = make_app()
    async with client_for(app) as client:
        old_key = (await client.get("/key")).json()["key"]
        new_key = (await client.post("/key")).json()["key"]
    assert KEY_RE.match(old_key) and KEY_RE.match(new_key) and old_key != new_key
    async with client_for(app, login=False) as client:
        assert (await client.put("/session", json={"key": old_key})).status_code == 401
        answer = await client.put("/session", json={"key": new_key})
        assert answer.json() == {"uuid": 1}
        assert (await client.get("/session")).json()["username"] == "test"


async def test_logout_ends_the_session() -> None:
    async with client_for(make_app()) as client:
        assert (await client.delete("/session")).json() == {}
        assert (await client.get("/data")).status_code == 401


async def test_user_conflicts_are_409_and_updates_stick() -> None:
    async with client_for(make_app()) as client:
        assert (await client.post("/user", data={"username": "test2"})).status_code == 409
        assert (
            await client.put("/user", data={"username": "test2", "password": "x", "email": "e@x"})
        ).status_code == 409
        created = await client.put(
            "/user", data={"username": "third", "password": "p3", "email": "t@x"}
        )
        assert created.json()["uuid"] == 3
        assert (await client.put("/user", data={"username": "fourth"})).status_code == 400
        renamed = await client.post("/user", data={"username": "boss", "password": "new"})
        assert renamed.json()["username"] == "boss"
        names = [user["username"] for user in (await client.get("/user")).json()]
        assert names == ["boss", "test2", "third"]
        assert (
            await client.put("/session", data={"username": "boss", "password": "new"})
        ).status_code == 200


async def test_deleting_the_account_logs_out_and_removes_it() -> None:
    app = make_app()
    async with client_for(app) as client:
        assert (await client.delete("/user")).json() == {}
        assert (await client.get("/user")).status_code == 401
    async with client_for(app, login=False) as client:
        gone = await client.put("/session", data={"username": "test", "password": "test"})
        assert gone.status_code == 401


async def test_data_and_interval_are_5_minute_readings_per_metering_point() -> None:
    app = make_app()
    async with client_for(app) as client:
        data = (await client.get("/data")).json()
        interval = (await client.get("/interval")).json()
        app.state.site.clock.set(START + timedelta(minutes=5))
        later = (await client.get("/data")).json()
        later_interval = (await client.get("/interval")).json()
    assert [row["MeterParam"] for row in data] == ["meter1", "meter2", "meter3"]
    local_end = datetime(2026, 1, 15, 12, 40)  # 17:40 UTC in Toronto, on the 5-minute grid
    assert {row["TimeStamping"] for row in data + interval} == {f"{local_end:%Y-%m-%d %H:%M:%S}"}
    for before, after, energy in zip(data, later, later_interval, strict=True):
        assert after["value"] - before["value"] == pytest.approx(energy["value"], abs=0.002)
        assert energy["value"] > 0
    assert all(row["value"] > 0 for row in interval)


async def test_offline_meters_report_their_last_recorded_interval() -> None:
    offline = ((START - timedelta(minutes=30), START + timedelta(hours=1)),)
    async with client_for(make_app(offline=offline)) as client:
        rows = (await client.get("/data")).json()
    assert {row["TimeStamping"] for row in rows} == {"2026-01-15 12:10:00"}


async def test_point_by_id_or_name_id_first_and_rename() -> None:
    async with client_for(make_app()) as client:
        by_name = (await client.get("/point", params={"name": "meter2"})).json()
        both = (await client.get("/point", params={"name": "meter2", "id": "3"})).json()
        assert (by_name["id"], both["MeterId"]) == (2, "meter3")
        renamed = (await client.post("/point", data={"name": "meter2", "new": "heat pump"})).json()
        assert renamed == {**by_name, "MeterId": "heat pump"}
        assert (await client.get("/data")).json()[1]["MeterParam"] == "heat pump"
        assert (await client.post("/point", data={"id": "1", "new": "meter3"})).status_code == 409
        assert (await client.get("/point", params={"id": "99"})).status_code == 404
        assert (await client.get("/point", params={"name": "nope"})).status_code == 404
        assert (await client.get("/point")).status_code == 400
        assert (await client.get("/point", params={"id": "x"})).status_code == 400
        assert (await client.post("/point", data={"id": "1"})).status_code == 400


def png_size(content: bytes) -> tuple[int, int]:
    assert content.startswith(PNG_SIGNATURE)
    assert content[12:16] == b"IHDR"
    width, height = struct.unpack(">II", content[16:24])
    return width, height


@pytest.mark.parametrize(
    ("params", "size"),
    [
        ({}, (1600, 900)),
        ({"type": "pie", "width": "4", "height": "3"}, (400, 300)),
        ({"type": "bar", "width": "5", "height": "2.5"}, (500, 250)),
        ({"type": "line", "width": "6.4", "height": "4.8"}, (640, 480)),
        ({"meter": "meter2", "type": "pie", "width": "3", "height": "2"}, (300, 200)),
    ],
)
async def test_graphics_are_pngs_of_the_asked_size(
    params: dict[str, str], size: tuple[int, int]
) -> None:
    async with client_for(make_app()) as client:
        answer = await client.get("/graphics", params=params)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/png"
    assert png_size(answer.content) == size


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"type": "donut"}, 400),
        ({"width": "wide"}, 400),
        ({"height": "0"}, 400),
        ({"width": "-3"}, 400),
        ({"width": "1e9"}, 400),
        ({"meter": "nope"}, 404),
    ],
)
async def test_bad_graphics_requests_get_the_error_shape(
    params: dict[str, str], status: int
) -> None:
    async with client_for(make_app()) as client:
        answer = await client.get("/graphics", params=params)
    assert answer.status_code == status
    assert isinstance(answer.json()["error"], str)


def parse_file(file_type: str, text: str) -> list[dict[str, Any]]:
    if file_type == "csv":
        return [dict(row) for row in csv.DictReader(io.StringIO(text))]
    if file_type == "json":
        return list(json.loads(text))
    if file_type == "yaml":
        return list(yaml.safe_load(text))
    root = ET.fromstring(text)
    return [{child.tag: child.text for child in item} for item in root]


@pytest.mark.parametrize(
    ("file_type", "media_type"),
    [
        ("csv", "text/csv"),
        ("json", "application/json"),
        ("xml", "application/xml"),
        ("yaml", "application/x-yaml"),
    ],
)
async def test_file_exports_each_format_with_start_and_end_either_way(
    file_type: str, media_type: str
) -> None:
    days = {"start": "2026-01-14", "end": "2026-01-13", "type": file_type}
    async with client_for(make_app()) as client:
        reversed_answer = await client.get("/file", params=days)
        ordered = await client.get(
            "/file", params={**days, "start": "2026-01-13", "end": "2026-01-14"}
        )
        one_meter = await client.get("/file", params={**days, "meter": "meter1"})
    assert reversed_answer.status_code == 200, reversed_answer.text
    assert reversed_answer.headers["content-type"].startswith(media_type)
    assert "attachment" in reversed_answer.headers["content-disposition"]
    assert reversed_answer.content == ordered.content
    rows = parse_file(file_type, reversed_answer.text)
    assert len(rows) == 3 * 2 * 288
    first = rows[0]
    assert set(first) == {"MeterParam", "TimeStamping", "value"}
    assert first["MeterParam"] == "meter1"
    stamp = str(first["TimeStamping"])
    assert stamp == ("2026-01-13T00:00:00" if file_type == "xml" else "2026-01-13 00:00:00")
    assert float(first["value"]) > 0
    assert {row["MeterParam"] for row in parse_file(file_type, one_meter.text)} == {"meter1"}


async def test_file_registers_match_data() -> None:
    async with client_for(make_app()) as client:
        latest = (await client.get("/data")).json()[0]
        rows = (
            await client.get(
                "/file",
                params={
                    "start": "2026-01-15",
                    "end": "2026-01-15",
                    "type": "json",
                    "meter": "meter1",
                },
            )
        ).json()
    assert rows[-1] == latest
    values = [row["value"] for row in rows]
    assert values == sorted(values)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"start": "2026-01-13"},
        {"start": "13/01/2026", "end": "2026-01-14"},
        {"start": "2026-01-13", "end": "2026-02-30"},
        {"start": "2026-01-13", "end": "2026-01-14", "type": "pdf"},
        {"start": "2025-01-01", "end": "2026-01-14"},
    ],
)
async def test_bad_file_requests_are_400_with_the_error_shape(params: dict[str, str]) -> None:
    async with client_for(make_app()) as client:
        answer = await client.get("/file", params=params)
        as_xml = await client.get("/file", params={**params, "xml": "true"})
    assert answer.status_code == 400
    assert isinstance(answer.json()["error"], str)
    error = ET.fromstring(as_xml.text).find("error")
    assert error is not None and error.get("type") == "str"


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        (
            "PUT",
            "/session",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
        ),
        ("PUT", "/session", {"json": ["username", "test"]}),
        (
            "POST",
            "/user",
            {
                "content": b"\xff\xfe=\x00",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
        ),
        ("GET", "/point", {"params": {"id": "1.5"}}),
        ("GET", "/graphics", {"params": {"width": "nan"}}),
    ],
)
async def test_malformed_requests_never_get_a_500(
    method: str, path: str, kwargs: dict[str, Any]
) -> None:
    async with client_for(make_app()) as client:
        answer = await client.request(method, path, **kwargs)
    assert 400 <= answer.status_code < 500
    assert isinstance(answer.json()["error"], str)
