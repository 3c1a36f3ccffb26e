"""A browser opening an API URL reads JSON: documents, tables, streamed exports and problems.

Browsers list page types (``text/html``, ``application/xhtml+xml``) first and XML after them;
the API has no pages, so it answers JSON. XML asked for explicitly, by ``?format=xml`` or an
Accept header that prefers it, is still answered.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest

from meterhub.model import Meter
from tests.api.conftest import ADMIN, ApiServer
from tests.api.formats import problem, xml_root

CHROMIUM = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,"
    "*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
PROBLEM_NS = "{urn:ietf:rfc:7807}"


@pytest.fixture
def hub(api: ApiServer) -> ApiServer:
    """Return the running hub with one meter."""
    api.store.add_meter(Meter("grid", "file", tz="Europe/Oslo", name="Main fuse"))
    return api


def _json(answer: httpx.Response) -> object:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    body: object = answer.json()
    return body


@pytest.mark.parametrize(
    "accept",
    [CHROMIUM, FIREFOX, "application/xhtml+xml", "text/html"],
    ids=["chromium", "firefox", "xhtml", "html"],
)
def test_a_browser_gets_json_documents_and_tables(hub: ApiServer, admin: httpx.Client, accept: str) -> None:
    headers = {"Accept": accept}
    user = _json(admin.get(f"/api/v1/users/{ADMIN}", headers=headers))
    assert isinstance(user, dict) and user["name"] == ADMIN
    meters = _json(admin.get("/api/v1/meters", headers=headers))
    assert isinstance(meters, list) and [m["id"] for m in meters] == ["grid"]
    meter = _json(admin.get("/api/v1/meters/grid", headers=headers))
    assert isinstance(meter, dict) and meter["name"] == "Main fuse"


def test_a_browser_gets_a_streamed_export_as_json(hub: ApiServer, admin: httpx.Client) -> None:
    answer = admin.get(
        "/api/v1/export", params={"start": "2026-03-02", "end": "2026-03-03"}, headers={"Accept": CHROMIUM}
    )
    assert _json(answer) == []


def test_a_browser_gets_problems_as_json(hub: ApiServer, admin: httpx.Client, anon: httpx.Client) -> None:
    headers = {"Accept": CHROMIUM}
    missing = problem(admin.get("/api/v1/meters/nope", headers=headers), 404)
    assert "nope" in missing["detail"]
    problem(anon.get("/api/v1/meters", headers=headers), 401)
    invalid = problem(
        admin.get("/api/v1/meters/grid/readings", params={"start": "garbage"}, headers=headers), 422
    )
    assert "start" in invalid["detail"]


def test_xml_asked_for_explicitly_is_still_xml(
    hub: ApiServer, admin: httpx.Client, anon: httpx.Client
) -> None:
    by_accept = xml_root(admin.get("/api/v1/meters/grid", headers={"Accept": "application/xml"}))
    assert by_accept.tag == "meter" and by_accept.findtext("name") == "Main fuse"
    by_query = xml_root(admin.get("/api/v1/meters", params={"format": "xml"}, headers={"Accept": CHROMIUM}))
    assert by_query.tag == "meters" and [e.findtext("id") for e in by_query] == ["grid"]
    preferred = xml_root(admin.get("/api/v1/meters", headers={"Accept": "text/html;q=0.5, application/xml"}))
    assert preferred.tag == "meters"
    for answer in (
        admin.get("/api/v1/meters/nope", params={"format": "xml"}, headers={"Accept": CHROMIUM}),
        anon.get("/api/v1/meters", headers={"Accept": "application/xml"}),
    ):
        assert answer.status_code in (401, 404)
        assert answer.headers["content-type"] == "application/problem+xml"
        assert ET.fromstring(answer.content).tag == f"{PROBLEM_NS}problem"
