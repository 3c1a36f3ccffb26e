"""A place's page and data routes over loopback HTTP: figures equal the API's for the same period.

A place in Europe/Oslo has a grid meter, a solar meter and an EV charger (special load), each
reporting every minute (through the Ingestor into a real SQLite file) over the spring DST day
of 2026 and the days around it. Another place has no tariff and is shared with nobody.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from meterhub.model import Meter, Place, Reading, Role, UserRole
from tests.api.conftest import USER_PASSWORD, ApiServer, no_unexpected_errors, password_hash, serve_api
from tests.web.helpers import served, signed_in

__all__ = ["no_unexpected_errors", "serve_api"]

HOME, CABIN = "pl-home", "pl-cabin"
GRID, SUN, EV, SHED = "pl-grid", "pl-sun", "pl-ev", "pl-shed"
SPAN = (datetime(2026, 3, 26, 23, tzinfo=UTC), datetime(2026, 4, 1, 1, tzinfo=UTC))
"""27 March to 31 March, local to Oslo, with an hour of margin either side."""
TARIFF = {
    "currency": "NOK",
    "import_per_kwh": 1.25,
    "export_per_kwh": 0.4,
    "fee_per_day": 2.0,
    "fee_per_month": 30.0,
}
VIEWER = "vera"
OSLO = ZoneInfo("Europe/Oslo")


def watts(ts: datetime) -> tuple[float, float, float]:
    """Return the solar, house and EV power at an instant: sun around noon, the EV in the evening."""
    hour = ts.hour + ts.minute / 60
    solar = 3200.0 * max(0.0, math.sin(math.pi * (hour - 6) / 11)) if 6 <= hour <= 17 else 0.0
    house = 450.0 + 900.0 * math.exp(-(((hour - 16.5) / 1.5) ** 2)) + 40.0 * (ts.minute % 7)
    ev = 3600.0 if 19 <= ts.hour < 21 and ts.day % 2 else 0.0
    return solar, house, ev


def readings(start: datetime, end: datetime) -> Iterator[Reading]:
    """Yield one reading a minute of each meter, their registers integrating the power."""
    imported = exported = sun = ev_kwh = shed = 100.0
    ts = start
    while ts < end:
        solar, house, ev = watts(ts)
        grid = house + ev - solar
        yield Reading(
            GRID, ts, 0, 230.0, abs(grid) / 230, grid, energy_import_kwh=imported, energy_export_kwh=exported
        )
        yield Reading(SUN, ts, 0, 230.0, solar / 230, solar, energy_import_kwh=sun, energy_export_kwh=0.0)
        yield Reading(EV, ts, 0, 230.0, ev / 230, ev, energy_import_kwh=ev_kwh, energy_export_kwh=0.0)
        yield Reading(SHED, ts, 0, 230.0, 1.0, 230.0, energy_import_kwh=shed, energy_export_kwh=0.0)
        imported += max(grid, 0.0) / 60_000
        exported += max(-grid, 0.0) / 60_000
        sun += solar / 60_000
        ev_kwh += ev / 60_000
        shed += 230.0 / 60_000
        ts += timedelta(minutes=1)


@pytest.fixture
def hub(serve_api: Callable[..., ApiServer]) -> ApiServer:
    meters = [Meter(meter, "file", 1, "Europe/Oslo", 60, meter) for meter in (GRID, SUN, EV, SHED)]
    api = served(serve_api, meters, readings(*SPAN))
    roles = ((EV, Role.SPECIAL), (GRID, Role.GRID), (SUN, Role.SOLAR))
    api.store.add_place(Place(HOME, "Europe/Oslo", "Home", roles, TARIFF))
    api.store.add_place(Place(CABIN, "Europe/Oslo", "Cabin", ((SHED, Role.GRID),)))
    return api


@pytest.fixture
def viewer(hub: ApiServer) -> httpx.Client:
    return hub.user(VIEWER, UserRole.VIEWER, [("place", HOME)])


def ok(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    return answer.json()


def view(client: httpx.Client, place: str = HOME, **params: str) -> dict[str, Any]:
    body: dict[str, Any] = ok(client.get(f"/api/v1/dashboard/places/{place}/view", params=params))
    return body


def api_rows(client: httpx.Client, what: str, body: dict[str, Any], groupby: str) -> dict[str, Any]:
    """Return the API's energy or cost of the view's span by ``groupby``."""
    params = {"start": body["start"], "end": body["end"], "bucket": groupby}
    answer: dict[str, Any] = ok(client.get(f"/api/v1/places/{body['place']}/{what}", params=params))
    return answer


def near(shown: list[float | None], api: list[float | None]) -> bool:
    """Tell whether the page's figures (to 0.1 Wh) are the API's (to the Wh), value by value."""
    return len(shown) == len(api) and all(
        (s is None) == (a is None) and (s is None or a is None or abs(s - a) <= 5.5e-4)
        for s, a in zip(shown, api, strict=True)
    )


def test_a_dst_days_bars_and_flow_equal_the_energy_route(admin: httpx.Client) -> None:
    body = view(admin, range="day", anchor="2026-03-29")
    bars = body["bars"]
    assert body["unit"] == bars["unit"] == "hour"
    assert len(bars["label"]) == 23 and len(set(bars["label"])) == 23
    assert bars["label"][:3] == ["00:00", "01:00", "03:00"]
    rows = api_rows(admin, "energy", body, "hour")["data"]
    assert [datetime.fromisoformat(r["start"]) for r in rows] == [
        datetime.fromisoformat(s) for s in bars["start"]
    ]
    for column in ("from_grid_kwh", "to_grid_kwh", "yield_kwh", "self_use_kwh", "consumption_kwh",
                   "special_load_kwh"):  # fmt: skip
        assert near(bars[column], [r[column] for r in rows]), column
    assert bars["source"] == [r["source"] for r in rows]
    assert max(bars["to_grid_kwh"]) > 0.5 and max(bars["special_load_kwh"]) > 3.0  # export at noon, the EV
    (day,) = api_rows(admin, "energy", body, "day")["data"]
    flow = body["flow"]
    for column in ("from_grid_kwh", "to_grid_kwh", "yield_kwh", "self_use_kwh", "consumption_kwh",
                   "special_load_kwh"):  # fmt: skip
        assert near([flow[column]["kwh"]], [day[column]]), column
    assert flow["self_sufficiency_pct"]["pct"] == pytest.approx(100 * day["self_sufficiency_ratio"], abs=0.06)
    assert (flow["source"], flow["estimated"]) == (day["source"], day["estimated"])
    assert flow["from_grid_kwh"]["label"] == f"measured · {day['source']}"


def test_a_dst_days_cost_equals_the_cost_route(admin: httpx.Client) -> None:
    body = view(admin, range="day", anchor="2026-03-29")
    cost = body["cost"]
    api = api_rows(admin, "cost", body, "hour")
    assert len(cost["label"]) == len(api["data"]) == 23
    for column in ("import_cost", "export_credit", "fees", "total_cost"):
        assert cost[column] == [r[column] for r in api["data"]], column  # rounded alike
    assert cost["totals"]["total_cost"] == round(api["total_cost"], 2)
    assert cost["currency"] == api["currency"] == "NOK"
    # a day's fee and its share of March by time: 23 of its 743 hours
    assert cost["totals"]["fees"] == pytest.approx(2.0 + 30.0 * 23 / 743, abs=0.005)
    assert cost["totals"]["export_credit"] > 0 and body["cost_note"] is None


def test_a_month_view_has_daily_bars_and_month_figures_of_the_api(admin: httpx.Client) -> None:
    body = view(admin, range="month", anchor="2026-03-15")
    assert body["unit"] == "day" and len(body["bars"]["label"]) == 31
    (month,) = api_rows(admin, "energy", body, "month")["data"]
    assert near([body["flow"]["yield_kwh"]["kwh"]], [month["yield_kwh"]]) and month["yield_kwh"] > 10
    assert near([body["flow"]["self_use_kwh"]["kwh"]], [month["self_use_kwh"]])
    days = api_rows(admin, "cost", body, "day")
    assert body["cost"]["total_cost"] == [r["total_cost"] for r in days["data"]]
    # days without readings have no bars (None), not zeros
    assert body["bars"]["from_grid_kwh"][0] is None and body["bars"]["source"][0] == "none"
    assert body["flow"]["estimated"] is True  # readings cover five days of the month


def test_comparing_adds_the_previous_periods_figures(admin: httpx.Client) -> None:
    body = view(admin, range="day", anchor="2026-03-30", compare="true")
    before = view(admin, range="day", anchor="2026-03-29")
    compare = body["compare"]
    assert compare["title"] == before["title"] == "Sunday 29 March 2026"
    assert compare["flow"] == before["flow"]
    assert compare["bars"]["consumption_kwh"] == before["bars"]["consumption_kwh"]
    assert compare["cost"]["totals"] == before["cost"]["totals"]
    assert len(body["bars"]["label"]) == 24 and "compare" not in before
    assert body["flow"]["special_load_kwh"]["kwh"] == 0 and compare["flow"]["special_load_kwh"]["kwh"] > 7


def test_previous_and_next_step_by_the_places_calendar(admin: httpx.Client) -> None:
    week = view(admin, range="week", anchor="2026-03-29")
    assert (week["anchor"], week["previous_anchor"], week["next_anchor"]) == (
        "2026-03-23",
        "2026-03-16",
        "2026-03-30",
    )
    assert week["unit"] == "day" and len(week["bars"]["label"]) == 7
    year = view(admin, range="year", anchor="2026-03-29")
    assert year["unit"] == "month" and len(year["bars"]["label"]) == 12
    assert view(admin, range="day", anchor="2026-03-29")["start"] == "2026-03-28T23:00:00+00:00"


def test_a_place_without_a_tariff_says_so_and_has_no_cost(admin: httpx.Client) -> None:
    body = view(admin, CABIN, range="day", anchor="2026-03-29")
    assert body["cost"] is None and "no tariff" in body["cost_note"]
    assert body["flow"]["from_grid_kwh"]["kwh"] == pytest.approx(0.23 * 23, abs=0.01)
    assert body["flow"]["yield_kwh"] == {
        "kwh": None,
        "source": "none",
        "estimated": True,
        "label": "no meter",
    }
    now = ok(admin.get(f"/api/v1/dashboard/places/{CABIN}/now"))
    assert "no tariff" in now["cost"]["note"]


def test_the_power_flow_now_is_made_of_the_newest_readings_by_role(admin: httpx.Client) -> None:
    body = ok(admin.get(f"/api/v1/dashboard/places/{HOME}/now"))
    last = SPAN[1] - timedelta(minutes=1)
    solar, house, ev = watts(last)
    grid = house + ev - solar
    by_meter = {m["meter"]: m for m in body["power"]["meters"]}
    assert by_meter[GRID]["role"] == "grid" and by_meter[GRID]["ts"] == last.isoformat()
    flow = body["power"]["flow"]
    assert flow["grid_w"] == pytest.approx(grid, abs=0.1)
    assert flow["import_w"] == pytest.approx(max(grid, 0), abs=0.1)
    assert flow["home_w"] == pytest.approx(max(grid, 0) + max(0.0, solar - max(-grid, 0)), abs=0.2)
    assert flow["other_w"] is None
    cost = body["cost"]
    assert cost["note"] is None and cost["today"]["currency"] == "NOK"
    assert cost["month"]["fees"] > 0  # fees accrue whether or not there are readings


def test_cost_so_far_is_the_cost_routes_for_the_same_hours(admin: httpx.Client) -> None:
    cost = ok(admin.get(f"/api/v1/dashboard/places/{HOME}/now"))["cost"]
    for part in ("today", "month", "last_month"):
        figures = cost[part]
        span = {"start": figures["start"], "end": figures["end"], "groupby": "hour"}
        api = ok(admin.get(f"/api/v1/places/{HOME}/cost", params=span))
        assert figures["total_cost"] == round(api["total_cost"], 2), part
    month_start = datetime.fromisoformat(cost["month"]["start"]).astimezone(OSLO)
    last_start = datetime.fromisoformat(cost["last_month"]["start"]).astimezone(OSLO)
    assert (month_start.day, month_start.hour, last_start.day, last_start.hour) == (1, 0, 1, 0)
    assert last_start < month_start
    assert datetime.fromisoformat(cost["last_month"]["end"]) <= month_start


def test_a_viewer_reads_a_shared_place_and_gets_404_for_another(viewer: httpx.Client) -> None:
    assert view(viewer, HOME, range="day", anchor="2026-03-29")["place"] == HOME
    for path in (f"/api/v1/dashboard/places/{CABIN}/view", f"/api/v1/dashboard/places/{CABIN}/now",
                 "/api/v1/dashboard/places/no-such/view"):  # fmt: skip
        hidden = viewer.get(path)
        assert hidden.status_code == 404, path
        assert hidden.headers["content-type"].startswith("application/problem+json")
        assert "Cabin" not in hidden.text


def test_the_places_pages_list_and_show_only_what_a_user_may_see(
    hub: ApiServer, viewer: httpx.Client
) -> None:
    browser = signed_in(hub.client(), VIEWER, USER_PASSWORD)
    listed = browser.get("/places")
    assert listed.status_code == 200
    assert f'href="/places/{HOME}"' in listed.text and CABIN not in listed.text
    assert "grid</span> pl-grid" in listed.text and "special</span> pl-ev" in listed.text
    shown = browser.get(f"/places/{HOME}")
    assert shown.status_code == 200 and 'data-tz="Europe/Oslo"' in shown.text
    assert 'data-anchor="2026-04-01"' in shown.text  # the local day of the newest reading
    assert "script-src 'self'" in shown.headers["content-security-policy"]
    hidden = browser.get(f"/places/{CABIN}")
    assert hidden.status_code == 404 and "Cabin" not in hidden.text
    admin = signed_in(hub.client())  # the admin
    cabin = admin.get(f"/places/{CABIN}")
    assert (
        cabin.status_code == 200
        and "no tariff" in cabin.text
        and f'href="/manage/places/{CABIN}"' in cabin.text
    )
    assert hub.client().get("/places", follow_redirects=False).status_code == 303


def test_no_places_is_said_in_words(hub: ApiServer) -> None:
    hub.store.add_user("nobody", UserRole.VIEWER, password_hash(USER_PASSWORD))
    browser = signed_in(hub.client(), "nobody", USER_PASSWORD)
    listed = browser.get("/places")
    assert listed.status_code == 200 and "none is shared with you yet" in listed.text


def test_a_custom_span_has_quarter_hour_bars_equal_to_the_energy_route(admin: httpx.Client) -> None:
    span = {"range": "custom", "start": "2026-03-30T10:00", "end": "2026-03-30T14:00"}
    body = view(admin, **span)
    assert body["unit"] == "15m" and len(body["bars"]["label"]) == 16
    assert (body["previous_anchor"], body["next_anchor"]) == (None, None)
    rows = api_rows(admin, "energy", body, "15m")["data"]
    assert near(body["bars"]["yield_kwh"], [r["yield_kwh"] for r in rows])
    assert sum(body["bars"]["yield_kwh"]) > 8  # four hours around noon
    compare = view(admin, **span, compare="true")["compare"]
    assert (body["start"], compare["start"]) == ("2026-03-30T08:00:00+00:00", "2026-03-30T04:00:00+00:00")


@pytest.mark.parametrize(
    ("params", "words"),
    [({"range": "hour"}, "range"), ({"range": "day", "anchor": "2026-02-30"}, "anchor"),
     ({"range": "year", "anchor": "9999-12-31"}, "out of range"),
     ({"range": "day", "anchor": "0001-01-01"}, "out of range"),
     ({"range": "custom", "start": "2026-03-30T10:00", "end": "2026-03-29T10:00"}, "after")],
)  # fmt: skip
def test_a_wrong_period_is_a_readable_422(admin: httpx.Client, params: dict[str, str], words: str) -> None:
    answer = admin.get(f"/api/v1/dashboard/places/{HOME}/view", params=params)
    assert answer.status_code == 422, answer.text
    assert words in answer.text
