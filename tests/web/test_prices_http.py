"""The prices page's data over loopback HTTP: a crafted series with a 15-minute and an hourly day.

The series is imported through POST /api/v1/prices/{series} into a real SQLite file: 25 October
2026 (Oslo's 25-hour day) in 100 quarter hours, 26 October in 24 hourly slots, and 29 March
2026 (23 hours) in 92 quarter hours. Each hour's price is chosen, and its quarters straddle it
evenly, so the cheapest and dearest hours are known by hand. A place whose grid imports 1 kWh
every hour under a tariff on the series costs its hour's price each hour, as
/api/v1/places/{id}/cost says too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from meterhub.model import Meter, Place, Reading, Role, UserRole
from tests.api.conftest import USER_PASSWORD, ApiServer, no_unexpected_errors, serve_api
from tests.web.helpers import served, signed_in, store_readings

__all__ = ["no_unexpected_errors", "serve_api"]

SERIES = "cap-spot"
HOME, OTHER = "cap-home", "cap-other"
METER, OTHER_METER = "cap-meter", "cap-other-meter"
VIEWER = "vera"
QUARTER = timedelta(minutes=15)
QUARTER_OFFSETS = (-0.003, -0.001, 0.001, 0.003)
"""What each quarter of an hour adds to the hour's price: they average to nothing."""
AUTUMN_DAY = datetime(2026, 10, 24, 22, tzinfo=UTC)
"""25 October 2026 00:00 CEST: 25 hours."""
AUTUMN_HOURS = {0: 0.07, 2: 0.06, 3: 0.05, 8: 0.85, 18: 0.95, 19: 0.90}
"""Chosen hours of 25 October, by index (2 is 02:00 CEST, 3 the second 02:00, CET); else 0.20 + 0.01 h."""
NEXT_DAY = datetime(2026, 10, 25, 23, tzinfo=UTC)
"""26 October 2026 00:00 CET: 24 hourly slots."""
NEXT_HOURS = {3: 0.03, 4: 0.01, 5: 0.02}
"""Chosen hours of 26 October; else 0.30 + 0.02 h."""
SPRING_DAY = datetime(2026, 3, 28, 23, tzinfo=UTC)
"""29 March 2026 00:00 CET: 23 hours, every hour 0.40 + 0.01 h."""


def autumn_price(h: int) -> float:
    return AUTUMN_HOURS.get(h, 0.20 + 0.01 * h)


def next_price(h: int) -> float:
    return NEXT_HOURS.get(h, 0.30 + 0.02 * h)


def price_rows() -> Iterator[tuple[datetime, datetime, float]]:
    for h in range(25):
        for q, offset in enumerate(QUARTER_OFFSETS):
            start = AUTUMN_DAY + timedelta(hours=h) + q * QUARTER
            yield start, start + QUARTER, round(autumn_price(h) + offset, 6)
    for h in range(24):
        start = NEXT_DAY + timedelta(hours=h)
        yield start, start + timedelta(hours=1), round(next_price(h), 6)
    for h in range(23):
        for q, offset in enumerate(QUARTER_OFFSETS):
            start = SPRING_DAY + timedelta(hours=h) + q * QUARTER
            yield start, start + QUARTER, round(0.40 + 0.01 * h + offset, 6)


def price_csv() -> str:
    lines = ["start,end,price,currency"]
    lines += [f"{s.isoformat()},{e.isoformat()},{p},EUR" for s, e, p in price_rows()]
    return "\n".join(lines) + "\n"


def grid_readings(meter: str) -> Iterator[Reading]:
    """1 kWh in every hour of 25 and 26 October, read every 15 minutes."""
    register, ts = 500.0, AUTUMN_DAY
    while ts <= NEXT_DAY + timedelta(hours=24):
        yield Reading(meter, ts, 0, 230.0, 1000 / 230, 1000.0, energy_import_kwh=register)
        register += 0.25
        ts += QUARTER


@pytest.fixture
def hub(serve_api: Callable[..., ApiServer]) -> ApiServer:
    api = served(serve_api, [Meter(m, "file", 1, "Europe/Oslo", 900, m) for m in (METER, OTHER_METER)])
    imported = api.client(api.admin_key).post(
        f"/api/v1/prices/{SERIES}", content=price_csv(), headers={"Content-Type": "text/csv"}
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["read"] == 100 + 24 + 92
    tariff = {"currency": "EUR", "import_series": SERIES}
    api.store.add_place(Place(HOME, "Europe/Oslo", "Home", ((METER, Role.GRID),), tariff))
    api.store.add_place(Place(OTHER, "Europe/Oslo", "Elsewhere", ((OTHER_METER, Role.GRID),), tariff))
    store_readings(api.store, (), grid_readings(METER))
    return api


@pytest.fixture
def viewer(hub: ApiServer) -> httpx.Client:
    return hub.user(VIEWER, UserRole.VIEWER, [("place", HOME)])


def prices(client: httpx.Client, **params: str) -> dict[str, Any]:
    answer = client.get("/api/v1/dashboard/prices", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def listed(day: dict[str, Any], kind: str) -> list[tuple[str, Any]]:
    return [(h["label"], h["price"]) for h in day[kind]]


def near(*hours: tuple[str, float]) -> list[tuple[str, Any]]:
    """Return (label, price) pairs whose prices compare as approximately equal."""
    return [(label, pytest.approx(price)) for label, price in hours]


def test_the_autumn_day_has_100_quarter_hours_and_its_cheapest_and_dearest_hours(admin: httpx.Client) -> None:
    body = prices(admin, series=SERIES, day="2026-10-25")
    assert (body["chosen"], body["direction"], body["currency"], body["tz"]) == (
        SERIES,
        "import",
        "EUR",
        "Europe/Oslo",
    )
    day = body["days"][0]
    assert (day["day"], day["resolution_min"], day["priced_slots"]) == ("2026-10-25", 15, 100)
    assert len(day["slots"]["price"]) == len(day["slots"]["t"]) == 100
    assert len(day["hours"]["label"]) == 25
    assert day["hours"]["label"][:5] == ["00:00", "01:00", "02:00 CEST", "02:00 CET", "03:00"]
    # the step values: the second 02:00's quarters, and the first quarter of the day
    assert day["slots"]["price"][12:16] == pytest.approx([0.047, 0.049, 0.051, 0.053])
    assert day["slots"]["price"][0] == pytest.approx(0.067)
    assert day["hours"]["price"][3] == pytest.approx(0.05)
    assert listed(day, "cheapest") == near(("02:00 CET", 0.05), ("02:00 CEST", 0.06), ("00:00", 0.07))
    assert listed(day, "dearest") == near(("17:00", 0.95), ("18:00", 0.90), ("07:00", 0.85))
    assert (day["min"], day["max"]) == (pytest.approx(0.047), pytest.approx(0.953))


def test_the_next_day_is_hourly(admin: httpx.Client) -> None:
    day = prices(admin, series=SERIES, day="2026-10-25")["days"][1]
    assert (day["day"], day["resolution_min"], day["priced_slots"]) == ("2026-10-26", 60, 24)
    assert day["slots"]["price"][:6] == pytest.approx([0.30, 0.32, 0.34, 0.03, 0.01, 0.02])
    assert day["hours"]["label"][:3] == ["00:00", "01:00", "02:00"]
    assert listed(day, "cheapest") == near(("04:00", 0.01), ("05:00", 0.02), ("03:00", 0.03))
    assert listed(day, "dearest") == near(("23:00", 0.76), ("22:00", 0.74), ("21:00", 0.72))


def test_the_step_line_spans_both_days_and_closes_at_the_end(admin: httpx.Client) -> None:
    body = prices(admin, series=SERIES, day="2026-10-25")
    line = body["line"]
    # 124 slot starts, then the end of the last slot with its price, then a break
    assert len(line["t"]) == len(line["price"]) == 100 + 24 + 2
    assert line["price"][-2:] == [pytest.approx(0.76), None]
    assert line["t"][-1] == body["x_end"]
    assert datetime.fromtimestamp(body["x_end"] / 1000, UTC) == datetime(2026, 10, 26, 23, tzinfo=UTC)
    # instants: the line runs forward through the repeated hour, 15 minutes a step
    assert all(later - earlier == 900_000 for earlier, later in itertools.pairwise(line["t"][:101]))
    assert line["label"][8:16:4] == ["2026-10-25 02:00 CEST", "2026-10-25 02:00 CET"]
    ticks = body["ticks"]
    assert ticks["label"][:3] == ["Sun 25 00:00", "03:00", "06:00"]  # local hours divisible by 3
    assert (
        len(ticks["t"]) == 17 and ticks["label"][8] == "Mon 26 00:00" and ticks["label"][-1] == "Tue 27 00:00"
    )
    assert ticks["t"][1] - ticks["t"][0] == 4 * 3_600_000  # 00:00 CEST to 03:00 CET: four hours


def test_the_spring_day_has_92_quarter_hours_and_the_day_after_none(admin: httpx.Client) -> None:
    body = prices(admin, series=SERIES, day="2026-03-29")
    spring, after = body["days"]
    assert (spring["priced_slots"], len(spring["hours"]["label"])) == (92, 23)
    assert "02:00" not in spring["hours"]["label"] and spring["hours"]["label"][2] == "03:00"
    assert listed(spring, "cheapest")[0] == ("00:00", pytest.approx(0.40))
    assert listed(spring, "dearest")[0] == ("23:00", pytest.approx(0.62))  # 0.40 + 0.01 x 22
    assert after["priced_slots"] == 0 and after["cheapest"] == [] and after["resolution_min"] is None
    assert set(after["slots"]["price"]) == {None}


def test_a_places_cost_per_hour_is_drawn_as_the_api_reckons_it(admin: httpx.Client) -> None:
    body = prices(admin, series=SERIES, day="2026-10-25", place=HOME)
    cost = body["cost"]
    assert (cost["place"], cost["currency"], len(cost["total_cost"])) == (HOME, "EUR", 49)
    # 1 kWh each hour: each hour costs its price
    assert cost["label"][3] == "02:00 CET" and cost["total_cost"][3] == pytest.approx(0.05)
    assert cost["total_cost"][25 + 4] == pytest.approx(0.01)
    api = admin.get(
        f"/api/v1/places/{HOME}/cost",
        params={"start": "2026-10-25T00:00:00+02:00", "end": "2026-10-27T00:00:00+01:00", "groupby": "hour"},
    )
    assert api.status_code == 200, api.text
    rows = api.json()["data"]
    assert [r["total_cost"] for r in rows] == pytest.approx(cost["total_cost"], abs=1e-5)
    assert [datetime.fromisoformat(r["start"]) for r in rows] == [
        datetime.fromisoformat(s) for s in cost["start"]
    ]
    assert cost["total"] == pytest.approx(api.json()["total_cost"], abs=1e-4)


def test_without_a_day_the_series_last_day_is_shown(admin: httpx.Client) -> None:
    """The series ends before today: its last local day is shown (26 October, and the 27th)."""
    body = prices(admin)
    assert body["chosen"] == SERIES and body["day"] == "2026-10-26"
    assert [s["series"] for s in body["series"]] == [SERIES]
    assert body["series"][0]["slots"] == 216


def test_places_and_series_one_may_not_see_are_404(viewer: httpx.Client, hub: ApiServer) -> None:
    assert prices(viewer, series=SERIES, day="2026-10-25", place=HOME)["cost"]["place"] == HOME
    for params in ({"place": OTHER}, {"place": "cap-nowhere"}, {"series": "cap-none"}):
        answer = viewer.get("/api/v1/dashboard/prices", params=params)
        assert answer.status_code == 404, (params, answer.text)
    assert viewer.get("/api/v1/dashboard/prices", params={"day": "2026-13-01"}).status_code == 422
    browser = signed_in(hub.client(), VIEWER, USER_PASSWORD)
    shown = browser.get("/prices", params={"place": HOME, "day": "2026-10-25"})
    assert shown.status_code == 200
    assert f'data-place="{HOME}"' in shown.text and 'data-day="2026-10-25"' in shown.text
    assert f'<option value="{OTHER}"' not in shown.text
    for place in (OTHER, "cap-nowhere"):
        hidden = browser.get("/prices", params={"place": place})
        assert hidden.status_code == 404 and "Not found" in hidden.text


def test_with_no_series_the_page_says_how_to_import_one(serve_api: Callable[..., ApiServer]) -> None:
    empty = serve_api(api_rate_per_s=0)
    body = prices(empty.client(empty.admin_key))
    assert (body["series"], body["chosen"], body["days"]) == ([], None, [])
    browser = signed_in(empty.client(), "admin", "admin-password-1")
    page = browser.get("/prices")
    assert page.status_code == 200
    assert "No price series is stored yet" in page.text
    assert "meterhub prices import FILE --series NAME" in page.text
    assert "POST /api/v1/prices/NAME" in page.text
    assert "prices.js" not in page.text
