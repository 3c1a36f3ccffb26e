"""Errors as RFC 9457 problem details, in JSON or XML, over loopback HTTP."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from meterhub.api.problems import STORE_UNAVAILABLE, ApiProblem, install_problem_handlers
from meterhub.errors import (
    ConflictError,
    InputError,
    MeterhubError,
    QuotaExceeded,
    StoreError,
    UnknownMeterError,
    UnknownPlaceError,
    VendorUnavailable,
)
from tests.api.conftest import ApiServer
from tests.simservers import served

NS = "{urn:ietf:rfc:7807}"
RAISED: dict[str, MeterhubError | Exception] = {
    "meter": UnknownMeterError("m9"),
    "place": UnknownPlaceError("p9"),
    "conflict": ConflictError("meter 'm1' exists already"),
    "input": InputError("start must be before end"),
    "quota": QuotaExceeded("IAMMETER allows 1 call per 5 minutes", retry_after_s=42.2),
    "vendor": VendorUnavailable("IAMMETER did not answer"),
    "store": StoreError("database is locked"),
    "bug": RuntimeError("secret-detail-that-must-not-leak"),
}


@pytest.fixture
def errors_app() -> Iterator[httpx.Client]:
    """Serve a small app that raises each kind of error, with the hub's problem handlers."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/raise/{kind}")
    def raise_it(kind: str) -> None:
        raise RAISED[kind]

    @app.get("/problem")
    def problem() -> None:
        raise ApiProblem(
            418, "Teapot", "short and stout", headers={"X-Extra": "yes"}, spout=["left", "right"]
        )

    @app.get("/typed")
    def typed(count: int, when: str) -> dict[str, int]:
        return {"count": count}

    with served(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("meter", 404),
        ("place", 404),
        ("conflict", 409),
        ("input", 422),
        ("quota", 429),
        ("vendor", 502),
        ("store", 503),
    ],
)
def test_meterhub_errors_become_problems(errors_app: httpx.Client, kind: str, status: int) -> None:
    answer = errors_app.get(f"/raise/{kind}")
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    # A database failure is described in the log, never to the client.
    detail = STORE_UNAVAILABLE if kind == "store" else str(RAISED[kind])
    assert (body["status"], body["detail"], body["instance"]) == (status, detail, f"/raise/{kind}")
    assert body["type"] == "about:blank" and body["title"]
    if kind == "quota":
        assert answer.headers["retry-after"] == "43"


def test_problems_answer_xml_when_asked(errors_app: httpx.Client) -> None:
    for answer in (
        errors_app.get("/raise/meter", params={"format": "xml"}),
        errors_app.get("/raise/meter", headers={"Accept": "application/problem+xml"}),
        errors_app.get("/raise/meter", headers={"Accept": "text/html;q=0.9, application/xml"}),
    ):
        assert answer.headers["content-type"] == "application/problem+xml"
        root = ET.fromstring(answer.content)
        assert root.tag == f"{NS}problem"
        assert root.findtext(f"{NS}status") == "404" and "m9" in str(root.findtext(f"{NS}detail"))
    assert errors_app.get("/raise/meter", headers={"Accept": "application/json"}).json()["status"] == 404


def test_api_problem_carries_extra_members_and_headers(errors_app: httpx.Client) -> None:
    answer = errors_app.get("/problem")
    assert (answer.status_code, answer.headers["x-extra"]) == (418, "yes")
    assert answer.json()["spout"] == ["left", "right"] and answer.json()["title"] == "Teapot"
    root = ET.fromstring(errors_app.get("/problem?format=xml").content)
    assert [i.text for i in root.iterfind(f"{NS}spout/{NS}i")] == ["left", "right"]


def test_validation_errors_name_each_parameter(errors_app: httpx.Client) -> None:
    answer = errors_app.get("/typed", params={"count": "many"})
    assert answer.status_code == 422
    body = answer.json()
    assert {(e["in"], e["parameter"]) for e in body["errors"]} == {("query", "count"), ("query", "when")}
    assert "count (query)" in body["detail"] and "when (query)" in body["detail"]
    root = ET.fromstring(errors_app.get("/typed", params={"format": "xml"}).content)
    assert {e.findtext(f"{NS}parameter") for e in root.iterfind(f"{NS}errors/{NS}i")} == {"count", "when"}


def test_an_unexpected_error_is_a_generic_500_and_logged(
    errors_app: httpx.Client, no_unexpected_errors: list[logging.LogRecord]
) -> None:
    answer = errors_app.get("/raise/bug")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert "secret-detail" not in answer.text and "logged" in answer.json()["detail"]
    assert any(record.name == "meterhub.api" for record in no_unexpected_errors)
    no_unexpected_errors.clear()  # expected here; every other test must log none


def test_the_hub_answers_unknown_routes_methods_and_bad_input_as_problems(
    api: ApiServer, admin: httpx.Client
) -> None:
    missing = admin.get("/api/v1/nothing-here", params={"format": "xml"})
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+xml"
    ET.fromstring(missing.content)
    wrong_method = admin.put("/api/v1/session")
    assert wrong_method.status_code == 405 and wrong_method.json()["status"] == 405
    assert wrong_method.headers["allow"] == "GET"
    assert admin.request("OPTIONS", "/api/v1/keys").headers["allow"] == "GET, POST"
    assert admin.put("/api/v1/keys/0123456789ab").headers["allow"] == "DELETE, GET"
    long_user = admin.get("/api/v1/keys", params={"user": "x" * 65})
    assert long_user.status_code == 422 and long_user.json()["errors"][0]["parameter"] == "user"
    broken_json = admin.post("/api/v1/users", content=b"{oops", headers={"Content-Type": "application/json"})
    assert (
        broken_json.status_code == 422 and broken_json.headers["content-type"] == "application/problem+json"
    )


def test_a_write_answered_in_an_unknown_format_changes_nothing(admin: httpx.Client) -> None:
    """406 comes before the write: the user is not created, no key is issued."""
    refused = admin.post(
        "/api/v1/users",
        json={"name": "csvuser", "role": "viewer", "password": "a-long-password-1"},
        headers={"Accept": "text/csv"},
    )
    assert refused.status_code == 406
    assert admin.get("/api/v1/users/csvuser").status_code == 404
    before = admin.get("/api/v1/keys").json()
    assert admin.post("/api/v1/keys", json={"name": "x"}, headers={"Accept": "text/csv"}).status_code == 406
    assert admin.get("/api/v1/keys").json() == before
