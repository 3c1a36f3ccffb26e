"""The simulated Intellimeter project's real-world variants: a renamed and a removed point."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from tests.vendors.intellimeter.test_connector import BASE_URL, PASSWORD, USERNAME, make_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = make_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as own:
        login = await own.put("/session", data={"username": USERNAME, "password": PASSWORD})
        assert login.status_code == 200
        yield own


async def names(client: httpx.AsyncClient, path: str) -> list[str]:
    rows: list[dict[str, Any]] = (await client.get(path)).json()
    return [row["MeterParam"] for row in rows]


async def switch(client: httpx.AsyncClient, **variants: bool) -> dict[str, Any]:
    answer = await client.post("/_sim/variants", json=variants)
    assert answer.status_code == 200, answer.text
    shown: dict[str, Any] = answer.json()
    return shown


async def test_the_variants_are_declared(client: httpx.AsyncClient) -> None:
    shown = (await client.get("/_sim/variants")).json()
    assert sorted(shown) == ["removed_point", "renamed_point"]
    assert all(entry["on"] is False and entry["about"] for entry in shown.values())


async def test_renamed_point_renames_the_first_point_everywhere_and_keeps_its_id(
    client: httpx.AsyncClient,
) -> None:
    await switch(client, renamed_point=True)
    assert await names(client, "/data") == ["meter1-renamed", "meter2", "meter3"]
    assert await names(client, "/interval") == ["meter1-renamed", "meter2", "meter3"]
    by_id = (await client.get("/point", params={"id": "1"})).json()
    assert (by_id["id"], by_id["MeterId"]) == (1, "meter1-renamed")
    assert (await client.get("/point", params={"name": "meter1"})).status_code == 404
    info = (await client.get("/_sim/info")).json()
    assert info["point_ids"] == {"meter1-renamed": 1, "meter2": 2, "meter3": 3}
    await switch(client, renamed_point=False)
    assert await names(client, "/data") == ["meter1", "meter2", "meter3"]


async def test_removed_point_is_gone_from_every_route(client: httpx.AsyncClient) -> None:
    await switch(client, removed_point=True)
    assert await names(client, "/data") == ["meter2", "meter3"]
    assert (await client.get("/point", params={"id": "1"})).status_code == 404
    file = await client.get("/file", params={"start": "2026-01-15", "end": "2026-01-15", "meter": "meter1"})
    assert file.status_code == 404
    await switch(client, removed_point=False)
    assert await names(client, "/data") == ["meter1", "meter2", "meter3"]


async def test_post_point_renames_by_id_and_refuses_a_taken_name(client: httpx.AsyncClient) -> None:
    renamed = await client.post("/point", data={"id": "3", "new": "garage"})
    assert renamed.json()["MeterId"] == "garage"
    assert await names(client, "/data") == ["meter1", "meter2", "garage"]
    taken = await client.post("/point", data={"name": "garage", "new": "meter2"})
    assert taken.status_code == 409
