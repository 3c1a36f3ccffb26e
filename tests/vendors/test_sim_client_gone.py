"""A simulator whose caller hangs up before its request is read drops it quietly, as a device does.

A hub that stops cancels its vendor calls in flight; the simulator then reads a disconnect where
the body should be. It must answer nothing and raise nothing (no traceback in the demo's log).
"""

from __future__ import annotations

import pytest
from starlette.types import Message

from meterhub.vendors.iammeter.simulator import API_PREFIX
from meterhub.vendors.registry import load_factory

pytestmark = pytest.mark.anyio

ROUTES_READING_A_BODY = [
    ("intellimeter", "PUT", "/session"),
    ("iammeter", "POST", f"{API_PREFIX}/user/login"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(("vendor", "method", "path"), ROUTES_READING_A_BODY)
async def test_a_request_whose_client_hung_up_is_dropped_quietly(vendor: str, method: str, path: str) -> None:
    app = load_factory(vendor)(seed=1, speed=1.0)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80), "root_path": "",
    }  # fmt: skip
    await app(scope, receive, send)
    assert [m for m in sent if m["type"] == "http.response.body" and m.get("body")] == []
