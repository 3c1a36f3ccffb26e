"""A server closing a kept-alive connection just as a poll reuses it costs the poll nothing.

Servers close connections they find idle (uvicorn and Node after 5 s, nginx after 75 s), and one
may close just as the client sends its next request on it: that request then fails before any
answer. :class:`ClosingFront` is a real loopback server in front of the IAMMETER simulator that
does so every time: it relays the first request of each connection and its answer, and closes the
connection without a word when a second request arrives on it. The poller sends such a GET once
more, on a fresh connection, within the same quota slot; it never sends one twice that failed on
a fresh connection, nor a request with a body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from anyio.abc import SocketAttribute, SocketStream

from meterhub.errors import VendorUnavailable
from meterhub.model import Meter
from meterhub.poller import Clock, Poller
from meterhub.poller.connectors import HTTP_LIMITS, HTTP_TIMEOUT
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.http import send
from tests.simservers import Sim, simulator

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LOGIN = "/api/v1/user/login"
METERDATA = "/api/v1/site/meterdata2/{sn}"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sim() -> Iterator[Sim]:
    with simulator("iammeter", speed=0.0, start=START) as served:
        yield served


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "hub.db")
    yield opened
    opened.close()


class ClosingFront:
    """A loopback server that closes each kept-alive connection as its second request arrives.

    It relays bytes to and from the server behind it. A connection's first request goes through;
    any request after an answer began on that connection finds the connection closed, unanswered.
    With ``answers``, only that many requests in all go through; the rest are dropped the same way.
    """

    def __init__(self, upstream_url: str, answers: int | None = None) -> None:
        self._upstream_port = urlsplit(upstream_url).port or 80
        self._answers_left = answers
        self.dropped = 0
        """Requests closed on without an answer."""

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        """Serve on a free loopback port; yield the base URL."""
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(SocketAttribute.local_port)
        async with listener, anyio.create_task_group() as tasks:
            tasks.start_soon(listener.serve, self._connection)
            yield f"http://127.0.0.1:{port}"
            tasks.cancel_scope.cancel()

    def _may_relay(self) -> bool:
        if self._answers_left is None:
            return True
        self._answers_left -= 1
        return self._answers_left >= 0

    async def _connection(self, client: SocketStream) -> None:
        answered = [False]
        async with (
            client,
            await anyio.connect_tcp("127.0.0.1", self._upstream_port) as upstream,
            anyio.create_task_group() as relays,
        ):
            relays.start_soon(self._answers, upstream, client, answered)
            started = False
            try:
                async for chunk in client:
                    if answered[0] or not (started or self._may_relay()):
                        self.dropped += 1  # closed under the request, as an idle timeout does
                        break
                    started = True
                    await upstream.send(chunk)
            except anyio.BrokenResourceError:
                pass  # the client went away first
            relays.cancel_scope.cancel()

    @staticmethod
    async def _answers(upstream: SocketStream, client: SocketStream, answered: list[bool]) -> None:
        try:
            async for chunk in upstream:
                answered[0] = True
                await client.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass


def iammeter_meter(sim: Sim, base_url: str, monkeypatch: pytest.MonkeyPatch) -> Meter:
    info: dict[str, Any] = sim.info()
    monkeypatch.setenv("T_IAM_KEEPALIVE_PASSWORD", info["password"])
    first = info["meters"][0]
    options = {
        "base_url": base_url,
        "username": info["user_name"],
        "password": "env:T_IAM_KEEPALIVE_PASSWORD",
        "sn": first["sn"],
    }
    return Meter("iam", "iammeter", first["phases"], info["tz"], 300, "", options)


async def meterdata_slots_used(poller: Poller, meter: Meter) -> int:
    return await poller.factory.context("iammeter").quotas.used("meterdata", meter.options["sn"])


async def test_a_poll_whose_kept_alive_connection_is_closed_under_it_succeeds(
    sim: Sim, store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    front = ClosingFront(sim.base_url)
    async with (
        front.serving() as base_url,
        httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=HTTP_LIMITS) as client,
    ):
        meter = iammeter_meter(sim, base_url, monkeypatch)
        store.add_meter(meter)
        poller = Poller(store, client, clock=Clock(sim.now(), 1.0), meters=[meter])
        outcome = await poller.poll_once(meter.id)  # the login opens the connection the GET reuses
        used = await meterdata_slots_used(poller, meter)

    assert outcome.ok, outcome.error
    assert front.dropped == 1
    assert sim.calls() == {LOGIN: 1, METERDATA: 1}
    assert used == 1
    assert store.count_readings() > 0
    health = store.health([meter.id])[meter.id]
    assert (health.consecutive_failures, health.last_error) == (0, None)


async def test_a_get_is_sent_once_more_and_never_after_failing_on_a_fresh_connection(
    sim: Sim, store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    front = ClosingFront(sim.base_url, answers=1)  # the login, then nothing more
    async with (
        front.serving() as base_url,
        httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=HTTP_LIMITS) as client,
    ):
        meter = iammeter_meter(sim, base_url, monkeypatch)
        store.add_meter(meter)
        poller = Poller(store, client, clock=Clock(sim.now(), 1.0), meters=[meter])
        outcome = await poller.poll_once(meter.id)
        used = await meterdata_slots_used(poller, meter)

    assert not outcome.ok
    assert isinstance(outcome.cause, VendorUnavailable)
    assert front.dropped == 2  # on the kept-alive connection, then once on a fresh one
    assert sim.calls() == {LOGIN: 1}
    assert used == 1
    assert store.health([meter.id])[meter.id].consecutive_failures == 1


async def test_a_request_with_a_body_is_never_sent_twice(sim: Sim) -> None:
    front = ClosingFront(sim.base_url)
    async with (
        front.serving() as base_url,
        httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=HTTP_LIMITS) as client,
    ):
        first = await send(client, "GET", f"{base_url}/_sim/info", what="info", address=base_url)
        with pytest.raises(VendorUnavailable, match="no usable answer"):
            await send(
                client,
                "POST",
                f"{base_url}{LOGIN}",
                what="login",
                address=base_url,
                json={"userName": "nobody", "password": "wrong"},
            )

    assert first.status_code == 200
    assert front.dropped == 1
    assert sim.calls() == {}


async def test_a_get_that_fails_on_a_fresh_connection_is_not_sent_again(sim: Sim) -> None:
    front = ClosingFront(sim.base_url, answers=0)
    async with (
        front.serving() as base_url,
        httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=HTTP_LIMITS) as client,
    ):
        with pytest.raises(VendorUnavailable, match="no usable answer"):
            await send(client, "GET", f"{base_url}/_sim/info", what="info", address=base_url)

    assert front.dropped == 1
