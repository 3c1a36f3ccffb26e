"""The UMeter simulator against the seed, VENDORS.md and the captured real answers."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterhub.vendors.physics import Household
from meterhub.vendors.umeter.payloads import local_midnight
from meterhub.vendors.umeter.simulator import UMeterSimConfig, create_app

FIXTURES = Path(__file__).parents[2] / "fixtures" / "umeter"
NOW = datetime(2022, 11, 15, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.anyio

_TIME_FORMATS = (
    ("local-datetime", re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")),
    ("iso-utc-ms", re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")),
    ("yyyymmdd", re.compile(r"^\d{8}$")),
)


def shape(value: Any) -> Any:
    """Return the structure of a JSON value: keys, nesting, types and time formats."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        shapes: list[Any] = []
        for item in value:
            if shape(item) not in shapes:
                shapes.append(shape(item))
        return ["list", *sorted(shapes, key=repr)]
    if isinstance(value, str):
        return next((name for name, rx in _TIME_FORMATS if rx.match(value)), "str")
    return type(value).__name__


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def app() -> Any:
    return create_app(UMeterSimConfig(start=NOW, speed=0.0))


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://umeter") as http:
        token = await _login(http)
        http.headers["Authorization"] = f"Bearer {token['access_token']}"
        yield http


async def _login(http: httpx.AsyncClient) -> dict[str, Any]:
    # The seed's own curl: a form body sent with a JSON content type.
    answer = await http.post(
        "/token",
        content="grant_type=password&username=demo@umeter.example&password=umeter-demo",
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


async def _ean(http: httpx.AsyncClient) -> str:
    customer = (await http.get("/api/customer")).json()
    ean: str = customer["addresses"][0]["eEan"]["ean"]
    return ean


async def _measure(http: httpx.AsyncClient, path: str, **params: str) -> httpx.Response:
    params.setdefault("meteringPointIds", await _ean(http))
    return await http.get(f"/api/v2/measurements/{path}", params=params)


async def test_token_answer_has_the_documented_fields(app: Any) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://u") as h:
        body = await _login(h)
        assert shape(body) == {
            "access_token": "str",
            "token_type": "str",
            "expires_in": "int",
            "refresh_token": "str",
            "userName": "str",
        }
        refreshed = await h.post(
            "/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
        )
        assert shape(refreshed.json()) == shape(body)
        again = await h.post(
            "/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
        )
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        as_json = await h.post(
            "/token",
            json={
                "grant_type": "password",
                "username": body["userName"],
                "password": "umeter-demo",
            },
        )
        assert as_json.status_code == 200


async def test_customer_has_the_structure_of_the_captured_answer(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/api/customer")
    assert answer.status_code == 200
    assert shape(answer.json()) == shape(fixture("customer.redacted.json"))
    e_ean = answer.json()["addresses"][0]["eEan"]
    assert re.fullmatch(r"871\d{15}", e_ean["ean"])
    assert e_ean["peakHourEndsOn"] == 23 and e_ean["pricePeak"] > e_ean["priceOffPeak"]


async def test_a_day_has_the_structure_of_the_captured_p4_answer(
    client: httpx.AsyncClient,
) -> None:
    expected = shape(fixture("p4data.json"))
    day = await _measure(client, "date/20220928")
    assert day.status_code == 200
    assert shape(day.json()) == expected
    p4 = await client.get(f"/api/P4/{await _ean(client)}/20220928/20220929?explain=true")
    assert shape(p4.json()) == expected
    assert len(day.json()["aData"]) == 96
    assert day.json()["beginReadingsDate"] == "20220928"


async def test_meas_keys_select_import_or_export_registers(client: httpx.AsyncClient) -> None:
    imports = (await _measure(client, "date/20220928", measKeys="import")).json()
    assert list(imports["totalUsage"]) == ["r181", "r182"]
    assert list(imports["beginReadings"]) == ["r182", "r181"]
    assert all(list(row["usage"]) == ["r181", "r182"] for row in imports["aData"])
    exports = (await _measure(client, "date/20220928", measKeys="export")).json()
    assert list(exports["totalUsage"]) == ["r281", "r282"]
    both = (await _measure(client, "month/202206", measKeys="import,export")).json()
    assert both["totalUsage"]["r282"] > 0  # June: the solar panels export at midday


@pytest.mark.parametrize(
    ("day", "quarters", "first_repeat"),
    [("20220327", 92, None), ("20221030", 100, "2022-10-30 02:00:00"), ("20220928", 96, None)],
)
async def test_dst_days_have_92_or_100_quarter_hours(
    client: httpx.AsyncClient, day: str, quarters: int, first_repeat: str | None
) -> None:
    rows = (await _measure(client, f"date/{day}")).json()["aData"]
    assert len(rows) == quarters
    starts = [row["dateFrom"] for row in rows]
    repeated = sorted({text for text in starts if starts.count(text) > 1})
    assert repeated[:1] == ([first_repeat] if first_repeat else [])
    assert rows[0]["dateFrom"].endswith("00:00:00") and rows[-1]["dateTo"].endswith("00:00:00")


async def test_month_and_year_list_days_and_months(client: httpx.AsyncClient) -> None:
    month = (await _measure(client, "month/202203")).json()
    assert len(month["aData"]) == 31
    assert month["aData"][0]["dateFrom"] == "2022-03-01 00:00:00"
    assert month["aData"][-1]["dateTo"] == "2022-04-01 00:00:00"
    year = (await _measure(client, "year/2022")).json()
    assert [row["dateFrom"][:7] for row in year["aData"]] == [f"2022-{m:02d}" for m in range(1, 11)]


async def test_usage_adds_up_and_matches_the_physics(app: Any, client: httpx.AsyncClient) -> None:
    day = (await _measure(client, "date/20220928")).json()
    next_day = (await _measure(client, "date/20220929")).json()
    for key, total in day["totalUsage"].items():
        assert sum(row["usage"][key] for row in day["aData"]) == pytest.approx(total, abs=0.011)
        begin, after = day["beginReadings"][key], next_day["beginReadings"][key]
        assert after - begin == pytest.approx(total, abs=0.011)
    household: Household = app.state.server.account.household
    start, end = (
        local_midnight(datetime(2022, 9, 28).date()),
        local_midnight(datetime(2022, 9, 29).date()),
    )
    import_kwh, export_kwh = household.energy_between(start, end)
    usage = day["totalUsage"]
    assert usage["r181"] + usage["r182"] == pytest.approx(import_kwh, abs=0.02)
    assert usage["r281"] + usage["r282"] == pytest.approx(export_kwh, abs=0.02)
    month = (await _measure(client, "month/202209")).json()
    september_28 = month["aData"][27]
    assert september_28["dateFrom"] == "2022-09-28 00:00:00"
    for key, total in usage.items():
        assert september_28["usage"][key] == pytest.approx(total, abs=0.011)


async def test_peak_tariff_only_on_weekday_daytime(client: httpx.AsyncClient) -> None:
    wednesday = (await _measure(client, "date/20220928", measKeys="import")).json()["aData"]
    for row in wednesday:
        hour = int(row["dateFrom"][11:13])
        if 7 <= hour < 23:
            assert row["usage"]["r181"] == 0.0
        else:
            assert row["usage"]["r182"] == 0.0
    sunday = (await _measure(client, "date/20221002", measKeys="import")).json()
    assert sunday["totalUsage"]["r182"] == 0.0 and sunday["totalUsage"]["r181"] > 0


async def test_only_intervals_that_ended_are_listed(client: httpx.AsyncClient) -> None:
    today = (await _measure(client, "date/20221115")).json()  # NOW is 13:00 local
    assert len(today["aData"]) == 52
    future = (await _measure(client, "date/20230101")).json()
    assert future["aData"] == [] and shape(future["totalUsage"]) == shape(today["totalUsage"])


async def test_same_seed_gives_the_same_answer_and_another_seed_another() -> None:
    async def day_for(seed: int) -> Any:
        app = create_app(UMeterSimConfig(start=NOW, speed=0.0), seed=seed)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://u") as http:
            http.headers["Authorization"] = f"Bearer {(await _login(http))['access_token']}"
            return (await _measure(http, "date/20220928")).json()

    first, again, other = await day_for(4), await day_for(4), await day_for(5)
    assert first == again
    assert first["aData"] != other["aData"]


async def test_auth_errors_have_the_vendor_shapes(app: Any) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://u") as http:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}):
            answer = await http.get("/api/customer", headers=headers)
            assert answer.status_code == 401
            assert answer.json() == {"Message": "Authorization has been denied for this request."}
            assert answer.headers["www-authenticate"] == "Bearer"
        wrong = await http.post("/token", data={"grant_type": "password", "username": "x", "password": "y"})
        assert wrong.status_code == 400 and shape(wrong.json()) == {
            "error": "str",
            "error_description": "str",
        }
        assert wrong.json()["error"] == "invalid_grant"
        odd = await http.post("/token", data={"grant_type": "client_credentials"})
        assert odd.json()["error"] == "unsupported_grant_type"
        token = (await _login(http))["access_token"]
        await http.post("/_sim/clock", json={"now": "2022-11-17T12:00:00Z"})
        expired = await http.get("/api/customer", headers={"Authorization": f"Bearer {token}"})
        assert expired.status_code == 401


@pytest.mark.parametrize(
    "path",
    ["date/20220230", "date/2022093", "date/abcdefgh", "month/202213", "month/2022",
     "year/22", "year/0999", "week/2022", "date/2022-09-28"],
)  # fmt: skip
async def test_malformed_dates_get_400_with_the_message_shape(client: httpx.AsyncClient, path: str) -> None:
    answer = await _measure(client, path)
    assert answer.status_code == 400
    assert shape(answer.json()) == {"Message": "str", "MessageDetail": "str"}


async def test_other_bad_requests_get_the_message_shape(client: httpx.AsyncClient) -> None:
    unknown = await _measure(client, "date/20220928", meteringPointIds="871687000000000000")
    assert unknown.status_code == 404 and shape(unknown.json()) == {"Message": "str"}
    assert (await _measure(client, "date/20220928", measKeys="gas")).status_code == 400
    assert (await _measure(client, "date/20220928", meteringPointIds="")).status_code == 400
    assert (await _measure(client, "date/20220928", explain="maybe")).status_code == 400
    missing = await client.get("/api/v3/nothing")
    assert missing.status_code == 404 and shape(missing.json()) == {"Message": "str"}
    wrong_method = await client.delete("/api/customer")
    assert wrong_method.status_code == 405 and shape(wrong_method.json()) == {"Message": "str"}
    ean = await _ean(client)
    assert (await client.get(f"/api/P4/{ean}/20220928/20220928")).status_code == 400


async def test_several_metering_points_give_a_list(client: httpx.AsyncClient) -> None:
    ean = await _ean(client)
    answer = (await _measure(client, "date/20220928", meteringPointIds=f"{ean},{ean}")).json()
    assert isinstance(answer, list) and len(answer) == 2 and answer[0] == answer[1]


async def test_sim_info_and_faults(client: httpx.AsyncClient) -> None:
    info = (await client.get("/_sim/info")).json()
    assert info["vendor"] == "umeter"
    assert info["credentials"] == {"username": "demo@umeter.example", "password": "umeter-demo"}
    assert info["eans"] == [await _ean(client)]
    await client.post("/_sim/faults", json={"error_status": 502, "error_every": 1})
    assert (await client.get("/api/customer")).status_code == 502
    assert (await client.get("/_sim/calls")).json() == {"/token": 1, "/api/customer": 2}


_segment = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126, exclude_characters="/?#%"),
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["date", "month", "year", "week", ""]), value=_segment, keys=_segment)
def test_no_request_gets_a_500(app: Any, kind: str, value: str, keys: str) -> None:
    async def ask() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://u") as http:
            http.headers["Authorization"] = f"Bearer {(await _login(http))['access_token']}"
            ean = await _ean(http)
            measured = await http.get(
                f"/api/v2/measurements/{kind}/{value}",
                params={"meteringPointIds": ean, "measKeys": keys},
            )
            p4 = await http.get(f"/api/P4/{ean}/{value or 'x'}/{kind or 'y'}")
            token = await http.post("/token", content=f"grant_type={keys}&username={value}")
            return [measured.status_code, p4.status_code, token.status_code]

    assert all(status < 500 for status in asyncio.run(ask()))


async def test_late_data_shows_a_day_from_the_next_morning_half_first(client: httpx.AsyncClient) -> None:
    ean = await _ean(client)
    assert (await client.post("/_sim/variants", json={"late_data": True})).status_code == 200

    async def rows_at(now: str, day: str) -> tuple[int, bool]:
        assert (await client.post("/_sim/clock", json={"now": now})).status_code == 200
        client.headers["Authorization"] = f"Bearer {(await _login(client))['access_token']}"
        answer = (await client.get(f"/api/v2/measurements/date/{day}",
                                   params={"meteringPointIds": ean})).json()
        return len(answer["aData"]), bool(answer["beginReadings"])

    # NOW is 2022-11-15 13:00 in Amsterdam (UTC+1)
    assert await rows_at("2022-11-15T12:00:00+00:00", "20221115") == (0, False)  # today: nothing
    assert await rows_at("2022-11-15T12:00:00+00:00", "20221114") == (48, True)  # yesterday to noon
    assert await rows_at("2022-11-16T04:59:00+00:00", "20221115") == (0, True)  # 05:59 the next day
    assert await rows_at("2022-11-16T05:00:00+00:00", "20221115") == (48, True)  # 06:00: the morning
    assert await rows_at("2022-11-16T16:59:00+00:00", "20221115") == (48, True)
    assert await rows_at("2022-11-16T17:00:00+00:00", "20221115") == (96, True)  # 18:00: all of it
    asked = (await client.get("/_sim/info")).json()["periods_asked"]
    assert asked == {"date/20221114": 1, "date/20221115": 5}


async def test_a_recorded_day_is_answered_as_captured() -> None:
    captured = fixture("p4data.json")
    app = create_app(UMeterSimConfig(start=NOW, speed=0.0), recorded_days={"20220928": captured})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://umeter") as http:
        http.headers["Authorization"] = f"Bearer {(await _login(http))['access_token']}"
        ean = await _ean(http)
        answer = await http.get("/api/v2/measurements/date/20220928", params={"meteringPointIds": ean})
        other = await http.get("/api/v2/measurements/date/20220927", params={"meteringPointIds": ean})
    assert answer.json() == captured
    assert other.json()["beginReadingsDate"] == "20220927" and len(other.json()["aData"]) == 96
