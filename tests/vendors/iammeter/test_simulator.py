"""The IAMMETER cloud simulator answers as the vendor's API document shows, quotas included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from meterhub.vendors.iammeter.limits import MAX_LIST_ROWS
from meterhub.vendors.iammeter.simulator import create_app
from meterhub.vendors.physics import Household

from . import seed_examples as seed
from .seed_examples import VENDOR_TIME, assert_same_shape

pytestmark = pytest.mark.anyio

START = datetime(2026, 6, 10, 10, 30, tzinfo=UTC)
"""The simulated clock stands still here (speed 0) unless a test moves it."""
ONE_PHASE, THREE_PHASE, SOLAR = "DA2BED94", "3FE34ABE", "5E7A0C21"
OFFLINE_START = START - timedelta(days=3)
"""The default account's single-phase meter is silent for 906 minutes from here."""
ROWS = frozenset({"data", "list"})


def new_app() -> Starlette:
    """Return a fresh simulated cloud whose clock stands at START."""
    return create_app(seed=1, speed=0.0, start=START)


@asynccontextmanager
async def cloud(app: Starlette | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """Serve ``app`` (a fresh simulated cloud by default) in process."""
    transport = httpx.ASGITransport(app=app or new_app())
    async with httpx.AsyncClient(transport=transport, base_url="https://www.iammeter.com") as c:
        yield c


TOKEN: str = new_app().state.account.token
"""The simulated account's token (deterministic per seed), so tests need not spend logins."""


async def token(client: httpx.AsyncClient) -> str:
    """Log in with the seed's example account and return the token."""
    response = await client.post(
        "/api/v1/user/login", json={"userName": "test", "password": "123456"}
    )
    return str(response.json()["data"]["token"])


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> httpx.Response:
    """GET an ``/api/v1/site`` path with the account's token as ``?token=``."""
    params.setdefault("token", TOKEN)
    return await client.get(f"/api/v1/site/{path}", params=params)


async def set_clock(client: httpx.AsyncClient, now: datetime) -> None:
    """Move the simulated clock."""
    response = await client.post("/_sim/clock", json={"now": now.isoformat()})
    assert response.status_code == 200


def as_utc(vendor_time: str) -> datetime:
    """Read a vendor time string as if it were UTC."""
    return datetime.strptime(f"{vendor_time} +0000", "%Y/%m/%d %H:%M:%S %z")


def assert_failure(response: httpx.Response, status_code: int = 200) -> str:
    """Assert the vendor's failure envelope and return its message."""
    assert response.status_code == status_code
    body = response.json()
    assert list(body) == ["data", "successful", "message"]
    assert body["data"] is None and body["successful"] is False
    assert isinstance(body["message"], str) and body["message"]
    return body["message"]


def assert_nothing(response: httpx.Response) -> None:
    """Assert the documented answer over a quota: nothing at all."""
    assert response.status_code == 200
    assert response.content == b""


async def test_login_with_json_or_form_matches_seed() -> None:
    async with cloud() as client:
        by_json = await client.post(
            "/api/v1/user/login", json={"userName": "test", "password": "123456"}
        )
        by_form = await client.post(
            "/api/v1/user/login", data={"userName": "test", "password": "123456"}
        )
    assert_same_shape(seed.LOGIN, by_json.json())
    assert by_form.json() == by_json.json()
    assert by_json.json()["data"]["token"] == TOKEN


@pytest.mark.parametrize(
    ("path", "serial", "example"),
    [
        ("meterdata", ONE_PHASE, seed.METERDATA_1P),
        ("meterdata2", ONE_PHASE, seed.METERDATA2_1P),
        ("meterdata", THREE_PHASE, seed.METERDATA_3P),
        ("meterdata2", THREE_PHASE, seed.METERDATA2_3P),
    ],
)
async def test_meterdata_matches_seed(path: str, serial: str, example: Any) -> None:
    async with cloud() as client:
        response = await get(client, f"{path}/{serial}")
    assert response.status_code == 200
    assert_same_shape(example, response.json())


async def test_token_header_and_mixed_case_path_are_accepted() -> None:
    async with cloud() as client:
        headers = {"token": TOKEN}
        response = await client.get(f"/api/v1/Site/MeterData/{ONE_PHASE}", headers=headers)
    assert_same_shape(seed.METERDATA_1P, response.json())


async def test_meterdata_times_are_local_and_gmt() -> None:
    async with cloud() as client:
        data = (await get(client, f"meterdata/{ONE_PHASE}")).json()["data"]
    local, gmt = as_utc(data["localTime"]), as_utc(data["gmtTime"])
    assert local - gmt == timedelta(hours=2)  # Europe/Oslo in summer
    assert timedelta(0) <= START - gmt < timedelta(minutes=2)


@pytest.mark.parametrize(
    ("path", "serial", "example"),
    [
        ("meterdatalist", ONE_PHASE, seed.METERDATALIST_1P),
        ("meterdatalist", THREE_PHASE, seed.METERDATALIST_3P),
        ("meterdatalist2", THREE_PHASE, seed.METERDATALIST2_3P),
    ],
)
async def test_meterdatalist_matches_seed(path: str, serial: str, example: Any) -> None:
    async with cloud() as client:
        response = await get(
            client, f"{path}/{serial}", startTime="2026-06-09", endTime="2026-06-10", interval=300
        )
    assert_same_shape(example, response.json(), collections=ROWS)


async def test_meterdatalist_takes_sn_as_parameter_and_caps_rows() -> None:
    async with cloud() as client:
        response = await get(
            client,
            "meterdatalist/",
            sn=THREE_PHASE,
            startTime="2026-06-05",
            endTime="2026-06-09",
            interval=60,
        )
    rows = response.json()["data"]
    assert len(rows) == MAX_LIST_ROWS
    assert all(len(row) == 17 for row in rows)


async def test_meterdata_while_offline_is_the_last_upload_before() -> None:
    async with cloud() as client:
        await set_clock(client, OFFLINE_START + timedelta(hours=5))
        data = (await get(client, f"meterdata/{ONE_PHASE}")).json()["data"]
    assert timedelta(0) < OFFLINE_START - as_utc(data["gmtTime"]) <= timedelta(minutes=1)


async def test_meterdatalist_has_no_rows_while_offline() -> None:
    day = OFFLINE_START.date().isoformat()
    async with cloud() as client:
        rows = (
            await get(client, f"meterdatalist/{ONE_PHASE}", startTime=day, endTime=day, interval=60)
        ).json()["data"]
    gmt_times = [as_utc(row[6]) for row in rows]
    offline_end = OFFLINE_START + timedelta(minutes=906)
    assert not [at for at in gmt_times if OFFLINE_START <= at < offline_end]
    assert 749 <= len(rows) <= 751  # offline from 12:30 local to the end of the day


async def test_power_analysis_matches_seed() -> None:
    async with cloud() as client:
        chosen = await get(
            client, "powerAnalysis", sn=ONE_PHASE, starttime="2026-06-08", endtime="2026-06-09"
        )
        default = await get(client, "powerAnalysis", sn=ONE_PHASE)
    assert_same_shape(seed.POWER_ANALYSIS, chosen.json())
    data = default.json()["data"]
    assert (data["startTime"], data["endTime"]) == ("2026-06-04", "2026-06-10")
    assert 0 < data["minimum"] <= data["average"] <= data["maximum"]


async def test_offline_analysis_reports_the_offline_window() -> None:
    async with cloud() as client:
        response = await get(client, "offlineAnalysis", sn=ONE_PHASE)
    assert_same_shape(seed.OFFLINE_ANALYSIS, response.json(), collections=ROWS)
    data = response.json()["data"]
    [gap] = data["list"]
    assert 906 <= gap["duration"] <= 908
    assert data["offlineCount"] == gap["duration"]
    assert data["totalCount"] == 6 * 1440 + 12 * 60 + 30  # six days and today until 12:30 local


async def test_metersdata_matches_seed_meter_by_meter() -> None:
    async with cloud() as client:
        response = await get(client, "metersdata")
    ours = {item["sn"]: item for item in response.json()["data"]}
    for example in seed.METERSDATA["data"]:
        assert_same_shape(example, ours[example["sn"]], f"$[{example['sn']}]")
    assert_same_shape({**seed.METERSDATA, "data": []}, {**response.json(), "data": []})
    assert isinstance(ours[SOLAR]["values"][0], float)


@pytest.mark.parametrize(
    ("place_id", "example"),
    [(1360, seed.ENERGYHISTORY_1P_DAY), (2393, seed.ENERGYHISTORY_3P_DAY)],
)
async def test_energyhistory_by_day_matches_seed(place_id: int, example: Any) -> None:
    async with cloud() as client:
        response = await get(
            client,
            f"energyhistory/{place_id}",
            startTime="2026-06-05",
            endTime="2026-06-07",
            groupby="day",
        )
    assert_same_shape(example, response.json(), collections=ROWS)
    rows = response.json()["data"]
    assert [row["time"] for row in rows] == ["2026/6/5 0:00:00", "2026/6/6 0:00:00"]
    assert (rows[0]["yield"] > 0) is (place_id == 2393)


async def test_energyhistory_by_hour_matches_seed_and_the_physics() -> None:
    app = new_app()
    household: Household = app.state.account.meters[THREE_PHASE].household
    dates = {"startTime": "2026-06-05", "endTime": "2026-06-06"}
    async with cloud(app) as client:
        hourly = await get(client, "energyhistory/2393", groupby="hour", **dates)
        daily = await get(client, "energyhistory/2393", groupby="day", **dates)
    assert_same_shape(seed.ENERGYHISTORY_3P_HOUR, hourly.json(), collections=ROWS)
    rows = hourly.json()["data"]
    assert [row["time"] for row in rows] == [f"2026/6/5 {hour}:00:00" for hour in range(24)]
    [day] = daily.json()["data"]
    assert sum(row["fromGrid"] for row in rows) == pytest.approx(day["fromGrid"], abs=0.15)
    start = datetime(2026, 6, 4, 22, tzinfo=UTC)  # local midnight
    end = start + timedelta(days=1)
    import_kwh, export_kwh = household.energy_between(start, end)
    assert day["fromGrid"] == pytest.approx(import_kwh, abs=0.2)
    assert day["toGrid"] == pytest.approx(export_kwh, abs=0.2)
    assert day["yield"] == pytest.approx(household.pv_energy_between(start, end), abs=0.2)
    assert day["selfUse"] == pytest.approx(day["yield"] - day["toGrid"], abs=0.02)


async def test_energyhistory_leaves_out_hours_still_to_come() -> None:
    params = {"startTime": "2026-06-10", "endTime": "2026-06-11", "groupby": "hour"}
    async with cloud() as client:  # the seed's own URLs spell it Token=
        response = await client.get(
            "/api/v1/site/energyhistory/2393", params={**params, "Token": TOKEN}
        )
    times = [row["time"] for row in response.json()["data"]]
    assert times[-1] == "2026/6/10 12:00:00"  # 10:30 UTC is 12:30 local


# Quotas: over a documented limit the vendor "will return nothing".


async def test_thirteenth_meterdata_call_within_an_hour_gets_nothing() -> None:
    async with cloud() as client:
        for call in range(12):
            path = "meterdata" if call % 2 else "meterdata2"
            assert (await get(client, f"{path}/{ONE_PHASE}")).json()["successful"], call
        assert_nothing(await get(client, f"meterdata/{ONE_PHASE}"))
        assert_nothing(await get(client, f"meterdata2/{ONE_PHASE}"))
        assert (await get(client, f"meterdata/{THREE_PHASE}")).json()["successful"]
        await set_clock(client, START + timedelta(hours=1))
        assert (await get(client, f"meterdata/{ONE_PHASE}")).json()["successful"]


async def test_sixth_login_within_an_hour_gets_nothing() -> None:
    async with cloud() as client:
        for _ in range(5):
            await token(client)
        assert_nothing(
            await client.post("/api/v1/user/login", json={"userName": "test", "password": "123456"})
        )
        await set_clock(client, START + timedelta(hours=1))
        assert await token(client)


async def test_thirty_first_login_within_a_day_gets_nothing() -> None:
    async with cloud() as client:
        for hour in range(6):
            await set_clock(client, START + timedelta(hours=hour))
            for _ in range(5):
                await token(client)
        await set_clock(client, START + timedelta(hours=7))
        login = {"userName": "test", "password": "123456"}
        assert_nothing(await client.post("/api/v1/user/login", json=login))
        await set_clock(client, START + timedelta(hours=24))
        assert await token(client)


@pytest.mark.parametrize("path", ["powerAnalysis", "offlineAnalysis"])
async def test_sixth_analysis_within_a_day_gets_nothing(path: str) -> None:
    async with cloud() as client:
        day = {"startTime": "2026-06-09", "endTime": "2026-06-09"}
        for _ in range(5):
            assert (await get(client, path, sn=ONE_PHASE, **day)).json()["successful"]
        assert_nothing(await get(client, path, sn=ONE_PHASE, **day))
        assert (await get(client, path, sn=THREE_PHASE, **day)).json()["successful"]
        await set_clock(client, START + timedelta(days=1))
        assert (await get(client, path, sn=ONE_PHASE, **day)).json()["successful"]


async def test_metersdata_answers_once_per_five_minutes() -> None:
    async with cloud() as client:
        assert (await get(client, "metersdata")).json()["successful"]
        await set_clock(client, START + timedelta(minutes=4, seconds=59))
        assert_nothing(await get(client, "metersdata"))
        await set_clock(client, START + timedelta(minutes=5))
        assert (await get(client, "metersdata")).json()["successful"]


# Bad requests get the failure envelope, never a 500.


async def test_wrong_or_missing_token_is_401_with_the_failure_envelope() -> None:
    async with cloud() as client:
        assert_failure(await get(client, f"meterdata/{ONE_PHASE}", token="nope"), 401)
        assert_failure(await client.get("/api/v1/site/metersdata"), 401)


async def test_wrong_password_is_a_failure() -> None:
    async with cloud() as client:
        login = {"userName": "test", "password": "wrong"}
        assert_failure(await client.post("/api/v1/user/login", json=login))
        assert_failure(await client.post("/api/v1/user/login", content=b"{not json"))


@pytest.mark.parametrize(
    ("path", "params", "reason"),
    [
        ("meterdata/FFFFFFFF", {}, "not in this account"),
        ("powerAnalysis", {"sn": "FFFFFFFF"}, "not in this account"),
        ("powerAnalysis", {}, "sn is required"),
        (
            f"meterdatalist/{ONE_PHASE}",
            {"startTime": "2026-06-09", "endTime": "2026-06-08", "interval": 300},
            "before",
        ),
        ("powerAnalysis", {"sn": ONE_PHASE, "startTime": "2026-06-01"}, "at most 7 days"),
        (
            "offlineAnalysis",
            {"sn": ONE_PHASE, "startTime": "2026-06-10", "endTime": "2026-06-01"},
            "before",
        ),
        ("offlineAnalysis", {"sn": ONE_PHASE, "interval": "five"}, "whole number"),
        (
            "powerAnalysis",
            {"sn": ONE_PHASE, "startTime": "2026-04-01", "endTime": "2026-04-02"},
            "latest",
        ),
        (
            f"meterdatalist/{ONE_PHASE}",
            {"startTime": "2026/06/09", "endTime": "2026-06-10", "interval": 300},
            "not a date",
        ),
        (
            f"meterdatalist/{ONE_PHASE}",
            {"startTime": "2026-06-09", "endTime": "2026-06-10"},
            "interval",
        ),
        (
            "energyhistory/2393",
            {"startTime": "2026-06-01", "endTime": "2026-06-09", "groupby": "hour"},
            "at most 7 days",
        ),
        (
            "energyhistory/2393",
            {"startTime": "2026-03-01", "endTime": "2026-06-01", "groupby": "day"},
            "at most 90 days",
        ),
        ("energyhistory/2393", {"startTime": "2026-06-01", "endTime": "2026-06-02"}, "groupby"),
        (
            "energyhistory/9",
            {"startTime": "2026-06-01", "endTime": "2026-06-02", "groupby": "day"},
            "place",
        ),
        (
            "energyhistory/2393",
            {"startTime": "x", "endTime": "2026-06-02", "groupby": "day"},
            "not a date",
        ),
    ],
)
async def test_bad_requests_get_the_failure_envelope(
    path: str, params: dict[str, Any], reason: str
) -> None:
    async with cloud() as client:
        message = assert_failure(await get(client, path, **params))
    assert reason in message


@pytest.mark.parametrize(
    "nasty",
    ["", " ", "é", "²", "-1", "0", "1e3", "2026-02-30", "0001-01-01", "9999-12-31", "x" * 500],
)
async def test_nasty_values_never_break_the_server(nasty: str) -> None:
    days = {"startTime": "2026-06-09", "endTime": "2026-06-09"}
    async with cloud() as client:
        cases: list[tuple[str, dict[str, Any]]] = [
            (f"meterdata/{nasty}", {}),
            ("meterdata", {"token": nasty}),
            (f"meterdatalist/{ONE_PHASE}", {**days, "interval": nasty}),
            (f"meterdatalist2/{ONE_PHASE}", {"startTime": nasty, "endTime": nasty, "interval": 60}),
            ("powerAnalysis", {"sn": ONE_PHASE, "endTime": nasty}),
            ("offlineAnalysis", {"sn": ONE_PHASE, "startTime": nasty, "interval": nasty}),
            (f"energyhistory/{nasty}", {**days, "groupby": "day"}),
            ("energyhistory/2393", {"startTime": nasty, "endTime": "2026-06-09", "groupby": nasty}),
        ]
        for path, params in cases:
            response = await get(client, path, **params)
            assert response.status_code in (200, 401, 404, 405), (path, params)
            assert response.content == b"" or response.headers["content-type"].startswith(
                ("application/json", "text/plain")
            )
        login = await client.post("/api/v1/user/login", data={"userName": nasty, "password": nasty})
        assert_failure(login)


async def test_vendor_time_pattern_rejects_zero_padding() -> None:
    assert VENDOR_TIME.match("2023/9/5 0:00:00")
    assert not VENDOR_TIME.match("2023/09/05 00:00:00")
