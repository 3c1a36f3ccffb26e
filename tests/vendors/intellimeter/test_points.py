"""The Intellimeter connector follows a metering point by its id: renames, removals, quiet answers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from tests.vendors.intellimeter.test_connector import (
    BASE_URL,
    PASSWORD,
    USERNAME,
    Rig,
    make_app,
    vendor_rows,
)

from meterhub.errors import ConfigError, PayloadError
from meterhub.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

START = datetime(2026, 1, 15, 17, 42, 10, tzinfo=UTC)
LATEST = datetime(2026, 1, 15, 17, 40, tzinfo=UTC)  # the 5-minute boundary before START


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METERHUB_TEST_INTELLIMETER_PASSWORD", PASSWORD)


@pytest.fixture
async def rig(store: SQLiteStore) -> AsyncIterator[Rig]:
    app = make_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        yield Rig(app, http, store)


async def switch(rig: Rig, **variants: bool) -> None:
    answer = await rig.http.post(f"{BASE_URL}/_sim/variants", json=variants)
    assert answer.status_code == 200, answer.text


async def rename(app: Starlette, **params: str) -> Any:
    """Rename a point through the vendor's own ``POST /point``, in a session of its own."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as own:
        await own.put("/session", data={"username": USERNAME, "password": PASSWORD})
        answer = await own.post("/point", data=params)
        assert answer.status_code == 200, answer.text
        return answer.json()


def value_of(rows: list[dict[str, Any]], name: str) -> float:
    [value] = [row["value"] for row in rows if row["MeterParam"] == name]
    return float(value)


async def test_a_renamed_point_is_found_by_its_id_and_collected_under_its_new_name(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    await rig.connector().latest()  # learns that meter1 has id 1
    await switch(rig, renamed_point=True)
    caplog.set_level(logging.INFO)
    fetched = await rig.connector().latest()
    rows = await vendor_rows(rig.app, "/data")
    assert "meter1" not in [row["MeterParam"] for row in rows]
    [reading] = fetched.readings
    assert (reading.meter, reading.ts) == ("grid", LATEST)
    assert reading.energy_import_kwh == value_of(rows, "meter1-renamed")
    assert [record.end for record in fetched.intervals] == [LATEST]
    assert "now called 'meter1-renamed'; following it by its id" in caplog.text
    assert (await rig.calls())["/point"] == 2  # learned the id, then asked it for the new name
    await rig.connector().latest()  # a restart remembers the new name: no further /point call
    assert (await rig.calls())["/point"] == 2


async def test_a_point_renamed_through_post_point_keeps_its_id(rig: Rig) -> None:
    await rig.connector(point="meter2").latest()
    renamed = await rename(rig.app, id="2", new="kitchen")
    assert (renamed["id"], renamed["MeterId"]) == (2, "kitchen")
    fetched = await rig.connector(point="meter2").latest()
    assert [r.energy_import_kwh for r in fetched.readings] == [
        value_of(await vendor_rows(rig.app, "/data"), "kitchen")
    ]


async def test_a_point_renamed_before_its_id_was_learned_needs_the_id(rig: Rig) -> None:
    await switch(rig, renamed_point=True)
    with pytest.raises(PayloadError, match=r"no metering point named 'meter1' .*option point_id"):
        await rig.connector().latest()
    fetched = await rig.connector(point_id="1").latest()  # the id alone finds it
    assert fetched.readings[0].energy_import_kwh == value_of(
        await vendor_rows(rig.app, "/data"), "meter1-renamed"
    )


async def test_a_removed_point_is_a_failure_that_says_so(rig: Rig) -> None:
    await rig.connector().latest()
    await switch(rig, removed_point=True)
    with pytest.raises(PayloadError) as caught:
        await rig.connector().latest()
    assert str(caught.value) == (
        "Intellimeter no longer has metering point 'meter1' (id 1) of meter 'grid': it was removed "
        "from the account; nothing can be collected for it"
    )


async def test_a_point_without_any_reading_is_a_failure(store: SQLiteStore) -> None:
    app = make_app(offline=((START - timedelta(days=40), START + timedelta(days=1)),))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        rig = Rig(app, http, store)
        assert await vendor_rows(app, "/data") == []  # nothing recorded in the vendor's 31 days
        with pytest.raises(PayloadError, match="lists no reading of metering point 'meter1' \\(id 1\\)"):
            await rig.connector().latest()


async def test_the_same_latest_row_again_and_a_quiet_hour_are_no_failure(store: SQLiteStore) -> None:
    app = make_app(offline=((START - timedelta(hours=1), START + timedelta(hours=1)),))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        rig = Rig(app, http, store)
        first = await rig.connector().latest()
        again = await rig.connector().latest()  # the clock stands still: the very same row
    # offline from 16:42 UTC: the last interval recorded whole ends at 16:40
    assert [r.ts for r in first.readings] == [datetime(2026, 1, 15, 16, 40, tzinfo=UTC)]
    assert again.readings == first.readings


async def test_history_follows_a_point_renamed_between_exports(rig: Rig) -> None:
    await rig.connector().latest()
    await switch(rig, renamed_point=True)
    connector = rig.connector()
    chunks = [chunk async for chunk in connector.history(START - timedelta(hours=1), START)]
    times = [reading.ts for chunk in chunks for reading in chunk.readings]
    assert len(times) == 12 and times[-1] == LATEST
    assert (await rig.calls())["/file"] == 2  # refused under the old name (404), then the new


async def test_discover_gives_each_point_its_id(rig: Rig) -> None:
    await switch(rig, renamed_point=True)
    found = await rig.connector().discover()
    assert [(item.name, item.options["point_id"]) for item in found] == [
        ("meter1-renamed", "1"),
        ("meter2", "2"),
        ("meter3", "3"),
    ]


async def test_a_malformed_point_id_is_a_config_error(rig: Rig) -> None:
    with pytest.raises(ConfigError, match="point_id='one' is not a whole number"):
        await rig.connector(point_id="one").latest()
