"""The AMS reader simulator answers as its API document shows, with the capacity rule's figures."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.applications import Starlette

from meterhub.vendors.amsreader.simulator import ENDPOINTS, create_app
from meterhub.vendors.amsreader.tariff import (
    CapacityState,
    Peak,
    capacity_from_tariff_json,
    capacity_state,
    completed_hours_of_month,
)
from meterhub.vendors.physics import Household, SiteConfig
from meterhub.vendors.simkit import SimulatedOffline

SEED_DIR = Path(__file__).parent / "seed"
"""The document's response examples, comments removed (``l2.e``'s ``%s`` read as a bool)."""
OSLO = ZoneInfo("Europe/Oslo")
START = datetime(2026, 3, 29, 12, 34, 56, tzinfo=UTC)
NUMBER_PATHS = re.compile(r"^\$(\.[ie]\d\d|\.p\[\d+\]\.v|\.last_month\.\w)$")
"""Where the document itself prints the same field as ``5`` in one place and ``5.12`` in another."""
PRICE_PATH = re.compile(r"^\$\.\d\d$")
"""Prices are a number or null (not yet published)."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_app(**options: Any) -> Starlette:
    options.setdefault("start", START)
    return create_app(seed=3, speed=0.0, **options)


@asynccontextmanager
async def client_for(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ams-sim.local") as client:
        yield client


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def shape_problems(actual: object, example: object, path: str = "$") -> list[str]:
    """List where ``actual`` differs from ``example`` in keys, nesting or value types."""
    if isinstance(example, dict):
        if not isinstance(actual, dict):
            return [f"{path}: {type(actual).__name__}, not an object"]
        problems = []
        if set(actual) != set(example):
            problems.append(
                f"{path}: extra {set(actual) - set(example)}, missing {set(example) - set(actual)}"
            )
        for key in example.keys() & actual.keys():
            problems += shape_problems(actual[key], example[key], f"{path}.{key}")
        return problems
    if isinstance(example, list):
        if not isinstance(actual, list):
            return [f"{path}: {actual!r} is not an array"]
        items = example or [None]
        return [
            p
            for i, item in enumerate(actual)
            for p in shape_problems(item, items[min(i, len(items) - 1)], f"{path}[{i}]")
        ]
    if PRICE_PATH.match(path):
        return [] if actual is None or isinstance(actual, float) else [f"{path}: {actual!r} is no price"]
    if NUMBER_PATHS.match(path):
        return [] if is_number(actual) else [f"{path}: {actual!r} is not a number"]
    if example is None:
        return [] if actual is None else [f"{path}: {actual!r}, document has null"]
    if type(actual) is not type(example):
        return [f"{path}: {type(actual).__name__} {actual!r}, document has {example!r}"]
    return []


@pytest.mark.anyio
@pytest.mark.parametrize("path", [path for path, _ in ENDPOINTS])
async def test_every_answer_has_the_documented_structure(path: str) -> None:
    example = json.loads((SEED_DIR / path.lstrip("/")).read_text())
    if path == "/tariff.json":  # the firmware prints each peak's start hour `h`; the document leaves it out
        example["p"] = [{**peak, "h": 0} for peak in example["p"]]
    async with client_for(make_app(temperature_sensor=False)) as client:
        answer = await client.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert shape_problems(answer.json(), example) == []


def test_every_documented_example_is_covered() -> None:
    served = {path.lstrip("/") for path, _ in ENDPOINTS}
    assert served == {file.name for file in SEED_DIR.glob("*.json")}


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.anyio
@pytest.mark.parametrize("path", [path for path, _ in ENDPOINTS])
async def test_basic_auth_when_configured(path: str) -> None:
    async with client_for(make_app(username="admin", password="s3cret")) as client:
        missing = await client.get(path)
        wrong = await client.get(path, headers=basic("admin", "nope"))
        garbled = await client.get(path, headers={"Authorization": "Basic !!!not-base64"})
        right = await client.get(path, headers=basic("admin", "s3cret"))
    assert [missing.status_code, wrong.status_code, garbled.status_code] == [401, 401, 401]
    assert missing.headers["www-authenticate"].startswith("Basic")
    assert right.status_code == 200


@pytest.mark.anyio
async def test_no_auth_wanted_without_a_password() -> None:
    async with client_for(make_app()) as client:
        assert (await client.get("/data.json", headers=basic("x", "y"))).status_code == 200
        assert (await client.get("/nothing.json")).status_code == 404


@pytest.mark.anyio
async def test_data_json_power_split_and_phase_export() -> None:
    noon = datetime(2026, 6, 21, 11, 0, tzinfo=UTC)
    app = make_app(start=noon, pv_peak_w=12_000.0, base_load_w=300.0, l2_current_present=False)
    async with client_for(app) as client:
        data = (await client.get("/data.json")).json()
    assert data["i"] == 0 and data["e"] > 0
    assert data["w"] == data["i"] - data["e"]
    phases = [data["l1"], data["l2"], data["l3"]]
    assert all(line["p"] == 0 and line["q"] > 0 for line in phases)
    assert sum(line["q"] for line in phases) == pytest.approx(data["e"], abs=2)
    assert data["l2"]["e"] is True and data["l2"]["i"] == 0.0  # the meter sends no L2 current
    assert "e" not in data["l1"] and "e" not in data["l3"]
    assert data["c"] == int(noon.timestamp())


@pytest.mark.anyio
async def test_single_phase_meter_reports_empty_l2_and_l3() -> None:
    async with client_for(make_app(phases=1)) as client:
        data = (await client.get("/data.json")).json()
    assert data["l1"]["u"] > 200
    assert data["l2"]["u"] == data["l3"]["u"] == 0.0
    assert data["l2"]["i"] == data["l3"]["i"] == 0.0
    assert data["l2"]["e"] is False  # the flag is for three-phase meters that send no L2 current


@pytest.mark.anyio
async def test_dayplot_keys_are_utc_hours_of_the_last_24_closed_hours() -> None:
    app = make_app()
    household = app.state.device.household
    async with client_for(app) as client:
        plot = (await client.get("/dayplot.json")).json()
    today_11 = datetime(2026, 3, 29, 11, tzinfo=UTC)
    yesterday_12 = datetime(2026, 3, 28, 12, tzinfo=UTC)
    for key, start in (("i11", today_11), ("i12", yesterday_12)):
        assert plot[key] == pytest.approx(
            household.energy_between(start, start + timedelta(hours=1))[0], abs=0.005
        )


@pytest.mark.anyio
async def test_monthplot_days_are_local_days_of_this_month() -> None:
    app = make_app()
    household = app.state.device.household
    async with client_for(app) as client:
        plot = (await client.get("/monthplot.json")).json()
    first = datetime(2026, 3, 1, tzinfo=OSLO)
    assert plot["i01"] == pytest.approx(
        household.energy_between(first, first + timedelta(days=1))[0], abs=0.005
    )
    dst_day = datetime(2026, 3, 29, tzinfo=OSLO)  # today, a 23-hour day, not closed yet
    assert plot["i28"] == pytest.approx(
        household.energy_between(datetime(2026, 3, 28, tzinfo=OSLO), dst_day)[0], abs=0.005
    )
    assert plot["i29"] == plot["i30"] == plot["i31"] == 0  # last month, February, had 28 days


@pytest.mark.anyio
async def test_monthplot_keeps_last_months_figure_until_the_day_ends() -> None:
    app = make_app(start=datetime(2026, 4, 5, 9, tzinfo=UTC))
    household = app.state.device.household
    async with client_for(app) as client:
        plot = (await client.get("/monthplot.json")).json()
    march_5 = datetime(2026, 3, 5, tzinfo=OSLO)
    march_31 = datetime(2026, 3, 31, tzinfo=OSLO)
    for key, day in (("i05", march_5), ("i31", march_31)):
        expected = household.energy_between(day, day + timedelta(days=1))[0]
        assert plot[key] == pytest.approx(expected, abs=0.005)


@pytest.mark.anyio
@pytest.mark.parametrize(("local_hour", "known"), [(12, 12), (13, 35)])
async def test_energyprice_knows_tomorrow_after_13(local_hour: int, known: int) -> None:
    start = datetime(2026, 1, 15, local_hour, 30, tzinfo=OSLO)
    async with client_for(make_app(start=start)) as client:
        prices = (await client.get("/energyprice.json")).json()
    hours = [prices[f"{offset:02d}"] for offset in range(36)]
    expected_known = 24 - local_hour + (24 if local_hour >= 13 else 0)
    assert sum(price is not None for price in hours) == min(expected_known, 36) == known
    assert all(price is None for price in hours[known:])
    assert (prices["currency"], prices["source"]) == ("NOK", "EOE")


@pytest.mark.anyio
async def test_offline_reader_answers_nothing() -> None:
    window = ((START - timedelta(minutes=5), START + timedelta(minutes=5)),)
    async with client_for(make_app(offline=window)) as client:
        with pytest.raises(SimulatedOffline):
            await client.get("/data.json")
        assert (await client.get("/_sim/info")).json()["vendor"] == "amsreader"


@pytest.mark.anyio
async def test_sim_routes_move_the_clock() -> None:
    app = make_app()
    async with client_for(app) as client:
        await client.post("/_sim/clock", json={"now": "2026-04-01T10:00:00+00:00"})
        data = (await client.get("/data.json")).json()
        calls = (await client.get("/_sim/calls")).json()
    assert data["c"] == int(datetime(2026, 4, 1, 10, tzinfo=UTC).timestamp())
    assert calls == {"/data.json": 1}


# --- capacity tariff: hand-computed scenarios -------------------------------------------------


def local_hour(day: int, hour: int, month: int = 10, fold: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=OSLO, fold=fold).astimezone(UTC)


def test_two_peaks_on_one_day_keep_the_bigger() -> None:
    hours = [
        (local_hour(3, 8), 6.0),
        (local_hour(3, 18), 7.25),  # same day, bigger: replaces 6.0
        (local_hour(3, 20), 7.0),  # same day, smaller: ignored
        (local_hour(7, 12), 4.0),
        (local_hour(14, 20), 9.5),
        (local_hour(15, 1), 1.0),
    ]
    state = capacity_state(hours, OSLO)
    # top three days: 9.5 (14th), 7.25 (3rd), 4.0 (7th) -> (9.5 + 7.25 + 4.0) / 3 = 6.92
    assert state == CapacityState(
        peaks=(Peak(3, 7.25, 18), Peak(7, 4.0, 12), Peak(14, 9.5, 20)), month_max_kwh=6.92, threshold_kwh=10
    )


def test_month_change_starts_from_no_peaks() -> None:
    september = [(local_hour(30, 22, month=9), 20.0), (local_hour(30, 23, month=9), 30.0)]
    october = [(local_hour(1, 0), 2.0), (local_hour(1, 1), 3.5)]
    assert capacity_state(september, OSLO).threshold_kwh == 50  # (30) / 1 day = 30 -> 50
    state = capacity_state([*september, *october], OSLO)
    assert state == CapacityState(peaks=(Peak(1, 3.5, 1),), month_max_kwh=3.5, threshold_kwh=5)
    rolled = capacity_state(september, OSLO, now=local_hour(1, 0, month=10))
    assert rolled == CapacityState(peaks=(), month_max_kwh=0.0, threshold_kwh=5)


def test_dst_days_have_23_and_25_hours_each_offered() -> None:
    def hours_of(day: datetime) -> list[datetime]:
        month_hours = completed_hours_of_month(day + timedelta(days=2), OSLO)
        return [h for h in month_hours if h.astimezone(OSLO).date() == day.date()]

    assert len(hours_of(datetime(2026, 3, 29, tzinfo=OSLO))) == 23
    autumn = hours_of(datetime(2026, 10, 25, tzinfo=OSLO))
    assert len(autumn) == 25
    first_two, second_two = local_hour(25, 2), local_hour(25, 2, fold=1)
    assert second_two - first_two == timedelta(hours=1)
    assert first_two in autumn and second_two in autumn
    energies = {first_two: 3.0, second_two: 8.0}
    state = capacity_state(((h, energies.get(h, 0.5)) for h in autumn), OSLO)
    assert state.peaks == (Peak(25, 8.0, 2),)  # the repeated 02:00, as the reader prints it


def test_threshold_is_the_first_step_at_or_above_the_month_value() -> None:
    def state_for(*values: float) -> CapacityState:
        return capacity_state([(local_hour(day + 1, 12), v) for day, v in enumerate(values)], OSLO)

    assert state_for(10.0, 10.0, 10.0).threshold_kwh == 10
    assert state_for(10.01, 10.0, 10.0).threshold_kwh == 15
    assert state_for(151.0, 151.0, 151.0).threshold_kwh == 65535
    assert state_for().month_max_kwh == 0.0 and state_for().threshold_kwh == 5
    assert state_for(3.0, 1.0).month_max_kwh == 2.0  # fewer than 3 days: the days there are


TRACE_START = datetime(2026, 9, 30, tzinfo=OSLO)
TRACE_PEAKS_KW: dict[datetime, float] = {
    local_hour(30, 23, month=9): 20.0,  # last month: forgotten
    local_hour(3, 8): 6.0,
    local_hour(3, 18): 7.25,
    local_hour(7, 12): 4.0,
    local_hour(14, 20): 9.5,
    local_hour(25, 2): 3.0,  # first 02:00 of the 25-hour day
    local_hour(25, 2, fold=1): 8.0,  # the repeated 02:00
    local_hour(1, 0, month=11): 2.0,
    local_hour(1, 1, month=11): 3.5,
}
BASE_KW = 0.5
TRACE_COLUMNS = (
    "Date",
    "Time",
    "Global_active_power",
    "Global_reactive_power",
    "Voltage",
    "Global_intensity",
    "Sub_metering_1",
    "Sub_metering_2",
    "Sub_metering_3",
)
"""The UCI household power trace header the physics replays."""


@pytest.fixture(scope="module")
def trace_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write a UCI-format trace: 0.5 kW, with whole hours at the crafted peaks, into November."""
    path = tmp_path_factory.mktemp("trace") / "crafted.txt"
    start_utc = TRACE_START.astimezone(UTC)
    minutes = int((datetime(2026, 11, 2, tzinfo=OSLO) - TRACE_START).total_seconds() // 60)

    def rows() -> Iterator[str]:
        yield ";".join(TRACE_COLUMNS)
        for minute in range(minutes):
            at = start_utc + timedelta(minutes=minute)
            hour = at.replace(minute=0)
            power_kw = TRACE_PEAKS_KW.get(hour, BASE_KW)
            yield f"30/09/2026;00:00:00;{power_kw:.3f};0.000;230.000;1.0;0.000;0.000;0.000"

    path.write_text("\n".join(rows()) + "\n")
    return path


def test_trace_hours_meter_exactly_their_power(trace_path: Path) -> None:
    household = Household(SiteConfig(seed=3, phases=3, replay_trace=trace_path))
    hour = local_hour(14, 20)
    assert household.energy_between(hour, hour + timedelta(hours=1)) == pytest.approx((9.5, 0.0))


@pytest.mark.anyio
async def test_tariff_json_follows_the_rule_through_the_simulator(trace_path: Path) -> None:
    app = make_app(start=datetime(2026, 10, 26, 11, 30, tzinfo=OSLO), replay_trace=trace_path)
    async with client_for(app) as client:
        tariff = (await client.get("/tariff.json")).json()
        data = (await client.get("/data.json")).json()
    # by hand: day peaks 3rd 7.25, 7th 4.0, 14th 9.5, 25th 8.0 (the repeated 02:00), others 0.5;
    # September's 20 kWh hour is gone. Top three: (9.5 + 8.0 + 7.25) / 3 = 8.25 -> step 10.
    assert tariff == {
        "t": [5, 10, 15, 20, 25, 50, 75, 100, 150, 65535],
        "p": [{"d": 3, "h": 18, "v": 7.25}, {"d": 14, "h": 20, "v": 9.5}, {"d": 25, "h": 2, "v": 8}],
        "c": 10,
        "m": 8.25,
    }
    _, peaks = capacity_from_tariff_json(tariff)  # what the hub reads back: peaks with their hours
    read_back = [(peak.day, peak.hour, peak.energy_kwh) for peak in peaks]
    assert read_back == [(3, 18, 7.25), (14, 20, 9.5), (25, 2, 8.0)]
    assert data["ea"]["x"] == 8.25 and data["ea"]["t"] == 10
    assert data["ea"]["p"] == [9.5, 8.0, 7.25]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("local_now", "expected"),
    [
        (datetime(2026, 11, 1, 0, 30), {"p": [], "c": 5, "m": 0.0}),
        (datetime(2026, 11, 1, 2, 30), {"p": [{"d": 1, "h": 1, "v": 3.5}], "c": 5, "m": 3.5}),
    ],
)
async def test_tariff_json_resets_at_month_change(
    trace_path: Path, local_now: datetime, expected: dict[str, Any]
) -> None:
    app = make_app(start=local_now.replace(tzinfo=OSLO), replay_trace=trace_path)
    async with client_for(app) as client:
        tariff = (await client.get("/tariff.json")).json()
    assert {key: tariff[key] for key in ("p", "c", "m")} == expected
