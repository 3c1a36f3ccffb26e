"""SimKit: control routes, call counts, fault injection (in process and over a socket), quotas."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from tests.waiting import wait_until, wait_until_async

from meterhub.vendors.physics import SimClock
from meterhub.vendors.simkit import Faults, QuotaWindow, SimKit

START = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
pytestmark = pytest.mark.anyio


async def _hello(request: Request) -> Response:
    return JSONResponse({"hello": "world", "numbers": list(range(20))})


async def _item(request: Request) -> Response:
    return JSONResponse({"id": request.path_params["item_id"]})


async def _text(request: Request) -> Response:
    return PlainTextResponse("plain text stays whole")


def _app(offline_until: datetime | None = None) -> Starlette:
    kit = SimKit(
        "testvendor",
        SimClock(START, speed=0.0),
        info=lambda: {"credentials": {"user": "u", "password": "p"}, "device_ids": ["d1"]},
        offline_when=(lambda now: now < offline_until) if offline_until else None,
    )
    return kit.app(
        [
            Route("/hello", _hello),
            Route("/items/{item_id}", _item),
            Route("/text", _text),
        ]
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
        yield http


async def test_info_shows_vendor_time_and_the_simulators_facts(client: httpx.AsyncClient) -> None:
    info = (await client.get("/_sim/info")).json()
    assert info["vendor"] == "testvendor"
    assert datetime.fromisoformat(info["now"]) == START
    assert info["speed"] == 0.0
    assert info["credentials"] == {"user": "u", "password": "p"}
    assert info["device_ids"] == ["d1"]
    assert info["faults"]["offline"] is False


async def test_clock_can_be_set_and_sped_up(client: httpx.AsyncClient) -> None:
    answer = await client.post("/_sim/clock", json={"now": "2026-10-25T02:30:00+02:00"})
    assert answer.status_code == 200
    assert datetime.fromisoformat(answer.json()["now"]) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    answer = await client.post("/_sim/clock", json={"speed": 3600, "now": "2026-01-01T00:00:00Z"})
    assert answer.json()["speed"] == 3600.0

    async def half_a_minute_passed() -> bool:
        now = datetime.fromisoformat((await client.get("/_sim/info")).json()["now"])
        return now - datetime(2026, 1, 1, tzinfo=UTC) >= timedelta(seconds=30)

    await wait_until_async(half_a_minute_passed, "30 simulated seconds to pass at speed 3600")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b"{}",
        b'{"now": "2026-01-01T00:00:00"}',
        b'{"now": "yesterday"}',
        b'{"now": 12}',
        b'{"speed": -1}',
        b'{"speed": true}',
        b'{"speed": "fast"}',
        b'{"when": "2026-01-01T00:00:00Z"}',
    ],
)
async def test_bad_clock_requests_get_400_with_a_json_error(client: httpx.AsyncClient, body: bytes) -> None:
    answer = await client.post("/_sim/clock", content=body)
    assert answer.status_code == 400
    assert isinstance(answer.json()["error"], str)


async def test_calls_are_counted_per_route_and_control_routes_are_not(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/hello", "/hello", "/items/1", "/items/2", "/nowhere"):
        await client.get(path)
    await client.get("/_sim/info")
    assert (await client.get("/_sim/calls")).json() == {
        "/hello": 2,
        "/items/{item_id}": 2,
        "/nowhere": 1,
    }
    assert (await client.delete("/_sim/calls")).json() == {}
    assert (await client.get("/_sim/calls")).json() == {}


async def test_every_nth_call_answers_the_error_status(client: httpx.AsyncClient) -> None:
    faults = {"error_status": 503, "error_every": 3}
    assert (await client.post("/_sim/faults", json=faults)).json()["error_every"] == 3
    statuses = [(await client.get("/hello")).status_code for _ in range(6)]
    assert statuses == [200, 200, 503, 200, 200, 503]
    await client.post("/_sim/faults", json={})
    assert (await client.get("/hello")).status_code == 200


async def test_latency_delays_answers(client: httpx.AsyncClient) -> None:
    await client.post("/_sim/faults", json={"latency_s": 0.2})
    started = time.perf_counter()
    assert (await client.get("/hello")).status_code == 200
    assert time.perf_counter() - started >= 0.19


async def test_truncated_json_cannot_be_parsed_but_the_http_is_sound(
    client: httpx.AsyncClient,
) -> None:
    whole = (await client.get("/hello")).content
    await client.post("/_sim/faults", json={"truncate_json": True})
    answer = await client.get("/hello")
    assert answer.status_code == 200
    assert answer.content == whole[: len(whole) // 2]
    assert int(answer.headers["content-length"]) == len(answer.content)
    with pytest.raises(json.JSONDecodeError):
        answer.json()
    assert (await client.get("/text")).text == "plain text stays whole"


async def test_offline_in_process_raises_a_transport_error(client: httpx.AsyncClient) -> None:
    await client.post("/_sim/faults", json={"offline": True})
    with pytest.raises(httpx.ConnectError):
        await client.get("/hello")
    assert (await client.get("/_sim/calls")).json() == {"/hello": 1}
    assert (await client.post("/_sim/faults", json={"offline": False})).status_code == 200
    assert (await client.get("/hello")).status_code == 200


async def test_offline_windows_follow_the_simulated_clock() -> None:
    transport = httpx.ASGITransport(app=_app(offline_until=START + timedelta(hours=1)))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
        with pytest.raises(httpx.TransportError):
            await http.get("/hello")
        await http.post("/_sim/clock", json={"now": "2026-03-29T01:30:00Z"})
        assert (await http.get("/hello")).status_code == 200


@pytest.mark.parametrize(
    "faults",
    [[], {"latency": 1}, {"latency_s": -1}, {"error_status": 42}, {"error_every": "2"},
     {"offline": "yes"}, {"latency_s": float("inf")}],
)  # fmt: skip
async def test_bad_faults_get_400(client: httpx.AsyncClient, faults: object) -> None:
    answer = await client.post("/_sim/faults", content=json.dumps(faults))
    assert answer.status_code == 400
    assert "error" in answer.json()
    assert (await client.get("/_sim/faults")).json() == {
        "latency_s": 0.0,
        "error_status": None,
        "error_every": 0,
        "truncate_json": False,
        "offline": False,
    }


@pytest.fixture
def served() -> Iterator[tuple[str, Starlette]]:
    """Serve a SimKit app with uvicorn on a free loopback port."""
    app = _app()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), "the simulator to start serving")
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", app
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_offline_over_a_real_socket_drops_the_connection(served: tuple[str, Starlette]) -> None:
    url, app = served
    with httpx.Client(base_url=url, timeout=5) as http:
        assert http.get("/hello").status_code == 200
        http.post("/_sim/faults", json={"offline": True})
        with pytest.raises(httpx.TransportError):
            http.get("/hello")
        http.post("/_sim/faults", json={"truncate_json": True})
        answer = http.get("/hello")
        with pytest.raises(json.JSONDecodeError):
            answer.json()
    assert app.state.kit.calls["/hello"] == 3


def test_faults_from_json_fills_in_defaults() -> None:
    assert Faults.from_json({"offline": True}) == Faults(offline=True)
    assert Faults.from_json({}) == Faults()


def test_quota_window_slides_per_key() -> None:
    quota = QuotaWindow(limit=2, window_s=60.0)
    assert quota.allow("sn1", START)
    assert quota.allow("sn1", START + timedelta(seconds=10))
    assert not quota.allow("sn1", START + timedelta(seconds=20))
    assert quota.allow("sn2", START + timedelta(seconds=20))
    assert quota.retry_after_s("sn1", START + timedelta(seconds=20)) == pytest.approx(40.0)
    assert quota.allow("sn1", START + timedelta(seconds=60))
    assert not quota.allow("sn1", START + timedelta(seconds=61))
    assert quota.retry_after_s("sn2", START + timedelta(seconds=21)) == 0.0
    # A clock set back in time forgets the key's history rather than blocking forever.
    assert quota.allow("sn1", START - timedelta(days=1))


async def test_variants_are_declared_switched_and_refused_by_name() -> None:
    kit = SimKit("testvendor", SimClock(START, speed=0.0), variants={"late": "data arrives a day late"})
    app = kit.app([Route("/hello", _hello)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as http:
        listed = (await http.get("/_sim/variants")).json()
        assert listed == {"late": {"on": False, "about": "data arrives a day late"}}
        assert (await http.post("/_sim/variants", json={"late": True})).json()["late"]["on"] is True
        assert kit.variant("late") and (await http.get("/_sim/info")).json()["variants"] == ["late"]
        refused = await http.post("/_sim/variants", json={"late": False, "renamed": True})
        assert refused.status_code == 400 and "no variant 'renamed' (known: late)" in refused.json()["error"]
        assert kit.variant("late")  # nothing switched when one name is unknown
        assert (await http.post("/_sim/variants", json={"late": "yes"})).status_code == 400
        assert (await http.get("/_sim/calls")).json() == {}
