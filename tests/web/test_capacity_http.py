"""The capacity-tariff month over loopback HTTP, against figures worked out by hand.

A grid meter in Europe/Oslo reports every 15 minutes through October 2026 (written through the
Ingestor into a real SQLite file). Every local hour imports 1 kWh except a few chosen ones, so
each day's peak, the top three days, the month value and the step are known by hand; one peak
is the second 02:00 of 25 October (CET), the night with 25 hours. The dashboard's data route
and /api/v1/places/{id}/capacity must both give these figures; a place not shared is a 404.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from meterhub.analytics.capacity import capacity_of_hours
from meterhub.analytics.energy import EnergyBucket
from meterhub.model import Meter, Place, Reading, Role, UserRole
from meterhub.store import open_store
from meterhub.web.capacity_views import capacity_view, hour_cap_kwh
from tests.api.conftest import USER_PASSWORD, ApiServer, no_unexpected_errors, serve_api
from tests.web.helpers import served, signed_in, store_readings

__all__ = ["no_unexpected_errors", "serve_api"]

GRID, OTHER_METER = "cap-grid", "cap-other-grid"
FLAT, OTHER = "cap-flat", "cap-other"
VIEWER = "vera"
MONTH_START = datetime(2026, 9, 30, 22, tzinfo=UTC)
"""1 October 2026 00:00 CEST."""
MONTH_END = datetime(2026, 10, 31, 23, tzinfo=UTC)
"""1 November 2026 00:00 CET."""
STEP = timedelta(minutes=15)
BASE_KWH = 1.0
PEAKS_KWH = {
    datetime(2026, 10, 5, 16, tzinfo=UTC): 6.2,  # 18:00 CEST
    datetime(2026, 10, 12, 6, tzinfo=UTC): 4.9,  # 08:00 CEST
    datetime(2026, 10, 20, 17, tzinfo=UTC): 4.1,  # 19:00 CEST
    datetime(2026, 10, 25, 0, tzinfo=UTC): 3.0,  # the first 02:00 (CEST)
    datetime(2026, 10, 25, 1, tzinfo=UTC): 7.5,  # the second 02:00 (CET)
    datetime(2026, 10, 26, 9, tzinfo=UTC): 2.0,  # 10:00 CET
}
"""Hours (UTC start) importing other than 1 kWh; Oslo's hours are whole UTC hours."""


def hour_kwh(hour_start: datetime) -> float:
    return PEAKS_KWH.get(hour_start, BASE_KWH)


def month_readings(meter: str, start: datetime, end: datetime) -> Iterator[Reading]:
    """Yield a reading every 15 minutes from ``start`` to ``end`` inclusive, each hour importing its kWh."""
    register = 1000.0
    ts = start
    while ts <= end:
        kwh = hour_kwh(ts.replace(minute=0))
        yield Reading(meter, ts, 0, 230.0, kwh * 1000 / 230, kwh * 1000, energy_import_kwh=register)
        register += kwh / 4
        ts += STEP


def seed(store: Any, end: datetime = MONTH_END + STEP) -> None:
    """Add the flat (grid meter GRID) and another place, and the flat's month of readings."""
    for meter in (GRID, OTHER_METER):
        store.add_meter(Meter(meter, "file", 1, "Europe/Oslo", 900, meter))
    store.add_place(Place(FLAT, "Europe/Oslo", "Flat", ((GRID, Role.GRID),)))
    store.add_place(Place(OTHER, "Europe/Oslo", "Elsewhere", ((OTHER_METER, Role.GRID),)))
    store_readings(store, (), month_readings(GRID, MONTH_START, end))


@pytest.fixture
def hub(serve_api: Callable[..., ApiServer]) -> ApiServer:
    api = served(serve_api)
    seed(api.store)
    return api


@pytest.fixture
def viewer(hub: ApiServer) -> httpx.Client:
    return hub.user(VIEWER, UserRole.VIEWER, [("place", FLAT)])


def dashboard(client: httpx.Client, place: str = FLAT, **params: str) -> dict[str, Any]:
    answer = client.get(f"/api/v1/dashboard/places/{place}/capacity", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def api_capacity(client: httpx.Client, place: str = FLAT, **params: str) -> dict[str, Any]:
    answer = client.get(f"/api/v1/places/{place}/capacity", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


# --- the month, by hand -------------------------------------------------------------------
def test_the_october_month_equals_the_figures_worked_out_by_hand(admin: httpx.Client) -> None:
    body = dashboard(admin, month="2026-10")
    assert body["month"] == "2026-10" and body["title"] == "October 2026"
    assert body["hours"] == 745  # 31 days of 24 hours, and the 25th's extra one
    assert body["peak_days"] == 3
    assert [(p["day"], p["hour"], p["energy_kwh"]) for p in body["peaks"]] == [
        ("2026-10-25", "02:00 CET (UTC+01:00)", pytest.approx(7.5, abs=1e-6)),
        ("2026-10-05", "18:00 CEST (UTC+02:00)", pytest.approx(6.2, abs=1e-6)),
        ("2026-10-12", "08:00 CEST (UTC+02:00)", pytest.approx(4.9, abs=1e-6)),
    ]
    assert body["month_value_kwh"] == pytest.approx(6.2, abs=1e-6)  # (7.5 + 6.2 + 4.9) / 3
    assert (body["step_kwh"], body["next_threshold_kwh"]) == (10.0, 15.0)
    assert body["left_in_step_kwh"] == pytest.approx(3.8, abs=1e-6)
    assert body["month_import_kwh"] == pytest.approx(766.7, abs=1e-5)  # 745 + 21.7 above the base
    assert body["estimated"] is False and body["live"] is None
    assert (body["previous_month"], body["next_month"]) == ("2026-09", "2026-11")


def test_each_day_is_a_bar_and_the_top_days_are_flagged(admin: httpx.Client) -> None:
    days = dashboard(admin, month="2026-10")["days"]
    assert len(days["day"]) == len(days["peak_kwh"]) == len(days["top"]) == 31
    by_day = dict(
        zip(days["day"], zip(days["peak_kwh"], days["hour"], days["top"], strict=True), strict=True)
    )
    assert by_day["2026-10-25"] == (pytest.approx(7.5, abs=1e-6), "02:00 CET (UTC+01:00)", True)
    assert by_day["2026-10-20"] == (pytest.approx(4.1, abs=1e-6), "19:00 CEST (UTC+02:00)", False)
    assert by_day["2026-10-26"] == (pytest.approx(2.0, abs=1e-6), "10:00 CET (UTC+01:00)", False)
    # a day of 1 kWh hours keeps its first: midnight, local
    assert by_day["2026-10-02"] == (pytest.approx(1.0, abs=1e-6), "00:00 CEST (UTC+02:00)", False)
    assert [d for d, top in zip(days["day"], days["top"], strict=True) if top] == [
        "2026-10-05",
        "2026-10-12",
        "2026-10-25",
    ]


def test_the_dashboard_and_the_api_agree(admin: httpx.Client) -> None:
    mine, api = dashboard(admin, month="2026-10"), api_capacity(admin, month="2026-10")
    for name in ("month_value_kwh", "month_import_kwh"):
        assert mine[name] == pytest.approx(api[name], abs=1e-4), name
    for name in ("step_kwh", "next_threshold_kwh", "thresholds_kwh", "hours", "estimated", "month"):
        assert mine[name] == api[name], name
    assert [(p["day"], datetime.fromisoformat(p["hour_start"])) for p in mine["peaks"]] == [
        (p["day"], datetime.fromisoformat(p["hour_start"])) for p in api["peaks"]
    ]
    assert api["peaks"][0]["hour_start"] == "2026-10-25T02:00:00+01:00"


def test_other_thresholds_give_another_step_and_what_is_left(admin: httpx.Client) -> None:
    body = dashboard(admin, month="2026-10", thresholds="2,5,7,9")
    assert body["thresholds_kwh"] == [2.0, 5.0, 7.0, 9.0]
    assert (body["step_kwh"], body["next_threshold_kwh"]) == (7.0, 9.0)
    assert body["left_in_step_kwh"] == pytest.approx(0.8, abs=1e-6)  # 7 - 6.2
    above = dashboard(admin, month="2026-10", thresholds="2,5")
    assert (above["step_kwh"], above["next_threshold_kwh"], above["left_in_step_kwh"]) == (None, None, None)
    assert api_capacity(admin, month="2026-10", thresholds="2,5,7,9")["step_kwh"] == 7.0


def test_a_month_before_the_readings_has_no_peaks(admin: httpx.Client) -> None:
    body = dashboard(admin, month="2026-09")
    assert body["peaks"] == [] and body["hours"] == 0 and body["month_value_kwh"] == 0
    assert len(body["days"]["day"]) == 30 and set(body["days"]["peak_kwh"]) == {None}
    assert body["step_kwh"] == 5.0


# --- who may see it -----------------------------------------------------------------------
def test_a_viewer_sees_the_shared_place_and_not_the_other(viewer: httpx.Client) -> None:
    assert dashboard(viewer, month="2026-10")["month_value_kwh"] == pytest.approx(6.2, abs=1e-6)
    for place in (OTHER, "cap-nowhere"):
        answer = viewer.get(f"/api/v1/dashboard/places/{place}/capacity", params={"month": "2026-10"})
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_the_page_is_a_404_for_a_place_not_shared(hub: ApiServer, viewer: httpx.Client) -> None:
    browser = signed_in(hub.client(), VIEWER, USER_PASSWORD)
    shown = browser.get(f"/places/{FLAT}/capacity", params={"month": "2026-10"})
    assert shown.status_code == 200
    assert f'data-place="{FLAT}"' in shown.text and 'data-month="2026-10"' in shown.text
    assert f'href="/places/{FLAT}/capacity?month=2026-09"' in shown.text
    assert f'href="/places/{FLAT}/capacity?month=2026-11"' in shown.text
    for place in (OTHER, "cap-nowhere"):
        hidden = browser.get(f"/places/{place}/capacity")
        assert hidden.status_code == 404 and "Not found" in hidden.text
    assert browser.get(f"/places/{FLAT}/capacity", params={"month": "2026-13"}).status_code == 400
    assert browser.get(f"/places/{FLAT}/capacity", params={"month": "2199-01"}).status_code == 400


def test_the_page_without_a_session_goes_to_sign_in(hub: ApiServer) -> None:
    answer = hub.client().get(f"/places/{FLAT}/capacity", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/login?next=%2Fplaces%2F{FLAT}%2Fcapacity"


# --- the hour in progress -----------------------------------------------------------------
def test_the_hour_in_progress_on_the_autumn_night(tmp_path: Path) -> None:
    """At 01:40 UTC on 25 October it is the second 02:00 (CET); readings reach 01:30 UTC."""
    now = datetime(2026, 10, 25, 1, 40, tzinfo=UTC)
    store = open_store(f"sqlite:///{tmp_path / 'live.db'}")
    try:
        seed(store, end=datetime(2026, 10, 25, 1, 30, tzinfo=UTC))
        body = capacity_view(store, store.get_place(FLAT), None, now)
    finally:
        store.close()
    assert body["month"] == "2026-10" and body["as_of"] == "2026-10-25T01:00:00+00:00"
    # ended hours: the 25th so far peaks at 3.0 (the first 02:00); the top days are 6.2, 4.9 and 4.1
    assert [p["energy_kwh"] for p in body["peaks"]] == [
        pytest.approx(6.2, abs=1e-6),
        pytest.approx(4.9, abs=1e-6),
        pytest.approx(4.1, abs=1e-6),
    ]
    assert body["month_value_kwh"] == 5.067  # 15.2 / 3, to the Wh as the API answers
    assert body["step_kwh"] == 10.0 and body["left_in_step_kwh"] == 4.933
    live = body["live"]
    assert (live["day"], live["hour"]) == ("2026-10-25", "02:00 CET (UTC+01:00)")
    assert (live["hour_start"], live["hour_end"]) == (
        "2026-10-25T01:00:00+00:00",
        "2026-10-25T02:00:00+00:00",
    )
    assert live["import_kwh"] == pytest.approx(3.75, abs=1e-6)  # 01:00 to 01:30 at 7.5 kWh/h
    assert live["hour_cap_kwh"] == pytest.approx(18.9, abs=1e-6)  # 3 x 10 - (6.2 + 4.9)
    assert live["allowance_kwh"] == pytest.approx(15.15, abs=1e-6)
    assert live["grid_meters"] == [GRID]
    assert live["registers"][GRID]["ts"] == "2026-10-25T01:30:00+00:00"


def test_the_hour_cap_is_where_the_rule_changes_step() -> None:
    """An hour of exactly the cap keeps the step; a little more moves the month value past it."""

    def hour(start: datetime, kwh: float) -> EnergyBucket:
        return EnergyBucket(start, start + timedelta(hours=1), kwh, 0.0, 3600.0, "registers", False)

    past = [hour(at, kwh) for at, kwh in sorted(PEAKS_KWH.items()) if at < datetime(2026, 10, 25, tzinfo=UTC)]
    day_peaks, _, _, step, _ = capacity_of_hours(past, "Europe/Oslo")
    assert step == 10.0
    this_hour = datetime(2026, 10, 25, 1, tzinfo=UTC)
    cap = hour_cap_kwh(day_peaks, this_hour.date(), 3, step)
    assert cap == pytest.approx(18.9, abs=1e-9)
    assert cap is not None
    _, _, value, kept, _ = capacity_of_hours([*past, hour(this_hour, cap)], "Europe/Oslo")
    assert value == pytest.approx(10.0, abs=1e-9) and kept == 10.0
    _, _, _, passed, _ = capacity_of_hours([*past, hour(this_hour, cap + 0.01)], "Europe/Oslo")
    assert passed == 15.0
    assert hour_cap_kwh(day_peaks, this_hour.date(), 3, None) is None
    # the first day of a month: the hour alone makes the month value
    assert hour_cap_kwh((), this_hour.date(), 3, 5.0) == pytest.approx(5.0)
