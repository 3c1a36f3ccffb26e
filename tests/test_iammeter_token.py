"""The IAMMETER token travels as ``?token=`` (as the vendor's document shows) and never shows up in
an error's text, its causes or any log line, httpx's request lines included."""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from meterhub.errors import VendorError, VendorUnavailable
from meterhub.model import Meter
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.base import ConnectorContext, QuotaGuard, TokenCache
from meterhub.vendors.iammeter.client import REDACTED
from meterhub.vendors.iammeter.connector import IammeterConnector
from tests.simservers import Sim, simulator

pytestmark = pytest.mark.anyio

START = datetime(2026, 6, 10, 10, 30, tzinfo=UTC)
SN = "3FE34ABE"


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    monkeypatch.setenv("IAM_TOKEN_TEST_PASSWORD", "123456")
    with simulator("iammeter", speed=0.0, start=START) as served:
        yield served


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "hub.db")
    yield opened
    opened.close()


class Sent:
    """The requests the hub's HTTP client sent, recorded by an httpx event hook."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def hook(self, request: httpx.Request) -> None:
        self.requests.append(request)


@pytest.fixture
async def sent_and_http() -> AsyncIterator[tuple[Sent, httpx.AsyncClient]]:
    sent = Sent()
    async with httpx.AsyncClient(timeout=5.0, event_hooks={"request": [sent.hook]}) as http:
        yield sent, http


def connector(sim: Sim, store: SQLiteStore, http: httpx.AsyncClient) -> IammeterConnector:
    options = {"base_url": sim.base_url, "username": "test", "sn": SN,
               "password": "env:IAM_TOKEN_TEST_PASSWORD"}
    meter = Meter("iam", "iammeter", 3, "Europe/Oslo", 300, "", options)
    context = ConnectorContext(http, TokenCache(store, "iammeter"),
                               QuotaGuard(store, "iammeter", IammeterConnector.quotas))
    return IammeterConnector(meter, context)


def everything_said(error: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join([str(error), repr(error), *traceback.format_exception(error), caplog.text])


async def test_the_token_is_sent_as_the_query_parameter_the_document_shows(
    sim: Sim, store: SQLiteStore, sent_and_http: tuple[Sent, httpx.AsyncClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="httpx")
    sent, http = sent_and_http
    token = sim.info()["token"]
    await connector(sim, store, http).latest()
    login, meterdata = sent.requests
    assert login.url.path == "/api/v1/user/login" and "token" not in login.url.params
    assert meterdata.url.path == f"/api/v1/site/meterdata2/{SN}"
    assert meterdata.url.params["token"] == token and "token" not in meterdata.headers
    assert f"token={REDACTED}" in caplog.text  # httpx logged the request line, with the value replaced
    assert token not in caplog.text


@pytest.mark.parametrize(
    "faults",
    [{"error_status": 503, "error_every": 1}, {"truncate_json": True}, {"offline": True},
     {"error_status": 401, "error_every": 1}],
)
async def test_a_failing_call_names_no_token(
    faults: dict[str, Any], sim: Sim, store: SQLiteStore, sent_and_http: tuple[Sent, httpx.AsyncClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    _, http = sent_and_http
    token = sim.info()["token"]
    await TokenCache(store, "iammeter").put("127.0.0.1:test", "stale-token-0815", None)
    await connector(sim, store, http).latest()  # the stale token is refused, one login replaces it
    sim.faults(**faults)
    with pytest.raises(VendorError) as caught:
        await connector(sim, store, http).latest()
    said = everything_said(caught.value, caplog)
    assert token not in said and "stale-token-0815" not in said
    assert "/api/v1/site/meterdata2" in said  # the log does show which call it was
    if "offline" in faults:
        assert isinstance(caught.value, VendorUnavailable)
        expected = "IAMMETER /site/meterdata2/3FE34ABE: no usable answer (RemoteProtocolError)"
        assert str(caught.value) == expected
