"""A place's page in a real browser: energy flow equal to the API's, live power flow, cost, roles."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from meterhub.errors import UnknownPlaceError
from meterhub.ingest import Ingestor
from meterhub.model import Place, Role
from tests.web.conftest import GARAGE, HOUSE, RunningHub, household_reading, sign_in
from tests.web.helpers import admin_on, loaded, shot

pytestmark = pytest.mark.slow

PLACE, BARE = "pl-house", "pl-bare"
TARIFF = {"currency": "NOK", "import_per_kwh": 1.5, "export_per_kwh": 0.5, "fee_per_day": 3.0}
GARAGE_SILENT = {"special_load_kwh"}
"""The garage (the special load) reports only over the last two days, not in June."""
FIGURES = {
    "from_grid_kwh": "from_grid_kwh",
    "to_grid_kwh": "to_grid_kwh",
    "consumption_kwh": "consumption_kwh",
    "self_use_kwh": "self_use_kwh",
    "special_load_kwh": "special_load_kwh",
}


@pytest.fixture(scope="module")
def places(hub: RunningHub) -> Iterator[RunningHub]:
    """Add a priced place (the house as its grid meter, the garage as a special load), shared
    with the viewer, and a place without a tariff that nobody shares."""
    for place in (
        Place(PLACE, "Europe/Oslo", "Our home", ((GARAGE, Role.SPECIAL), (HOUSE, Role.GRID)), TARIFF),
        Place(BARE, "Europe/Oslo", "Bare land", ((GARAGE, Role.GRID),)),
    ):
        try:
            hub.store.get_place(place.id)
        except UnknownPlaceError:
            hub.store.add_place(place)
    hub.store.share("viewer", "place", PLACE)
    yield hub
    hub.store.unshare("viewer", "place", PLACE)


def ingest_after(hub: RunningHub, meter: str, power_w: float) -> None:
    """Store a reading a second after the meter's newest, through the Ingestor as a poll would."""
    (newest,) = hub.store.latest([meter])
    reading = household_reading(
        meter, newest.ts + timedelta(seconds=1), power_w, newest.energy_import_kwh or 0.0
    )
    report = Ingestor(hub.store).ingest([reading])
    assert report.stored == 1, report


def api(page: Page, hub: RunningHub, what: str, start: str, end: str, groupby: str) -> Any:
    """Return the API's answer for a place's span, read with the page's own session."""
    answer = page.request.get(
        f"{hub.url}/api/v1/places/{PLACE}/{what}", params={"start": start, "end": end, "bucket": groupby}
    )
    assert answer.ok, answer.text()
    return answer.json()


def shown_span(page: Page, hub: RunningHub, params: str) -> dict[str, Any]:
    """Return the span the page shows, as its data route answers it."""
    answer = page.request.get(f"{hub.url}/api/v1/dashboard/places/{PLACE}/view?{params}")
    assert answer.ok, answer.text()
    body: dict[str, Any] = answer.json()
    return body


def check_flow_equals_the_api(page: Page, hub: RunningHub, params: str, unmeasured: set[str]) -> None:
    """Check each energy-flow figure the page shows against the energy route for its day."""
    span = shown_span(page, hub, params)
    (day,) = api(page, hub, "energy", span["start"], span["end"], "day")["data"]
    for figure, name in FIGURES.items():
        box = page.locator(f'#flow [data-figure="{figure}"]')
        if figure in unmeasured:  # no reading of its meters in the period: a dash, not a zero
            expect(box.locator('[data-field="source"]')).to_have_text("no data")
            expect(box.locator('[data-field="value"]')).to_have_text("\u2013")
            assert day[name] == 0
            continue
        expect(box.locator('[data-field="value"]')).to_have_text(f"{day[name]:.2f}")
        # The page keeps 0.1 Wh, the API the Wh.
        assert float(box.get_attribute("data-value") or "nan") == pytest.approx(day[name], abs=5.5e-4), figure
        expect(box.locator('[data-field="source"]')).to_contain_text(day["source"].split("+")[0])
    ratio = page.locator('#flow [data-figure="self_sufficiency_pct"] [data-field="value"]')
    expect(ratio).to_have_text(f"{100 * day['self_sufficiency_ratio']:.1f}")
    solar = page.locator('#flow [data-figure="yield_kwh"] [data-field="source"]')
    expect(solar).to_have_text("no meter")


def test_an_admin_sees_the_energy_flow_the_api_answers_and_a_dst_days_bars(
    context: BrowserContext, places: RunningHub, tmp_path: Path
) -> None:
    hub = places
    page = admin_on(context, hub, f"/places/{PLACE}", "range=day&anchor=2026-06-15", "place")
    expect(page.locator("#period-title")).to_have_text("Monday 15 June 2026")
    check_flow_equals_the_api(page, hub, "range=day&anchor=2026-06-15", GARAGE_SILENT)
    expect(page.locator('#flow [data-figure="from_grid_kwh"] [data-field="source"]')).to_contain_text(
        "measured"
    )
    expect(page.locator("#energy-chart")).to_have_attribute("data-bars", "24")
    page.get_by_label("Compare with the previous period").check()
    loaded(page, "place")
    before = page.locator('#flow [data-figure="from_grid_kwh"] [data-field="before"]')
    expect(before).to_contain_text("Sunday 14 June 2026")
    shot(page, "place", tmp_path)
    page.goto(f"{hub.url}/places/{PLACE}?range=day&anchor=2026-03-29")
    loaded(page, "place")
    expect(page.locator("#energy-chart")).to_have_attribute("data-bars", "23")
    labels = page.evaluate("() => document.getElementById('energy-chart').data[0].x")
    assert labels[:3] == ["00:00", "01:00", "03:00"] and len(set(labels)) == 23
    page.get_by_role("button", name="Next period").click()
    loaded(page, "place")
    expect(page.locator("#period-title")).to_have_text("Monday 30 March 2026")
    expect(page.locator("#energy-chart")).to_have_attribute("data-bars", "24")


def test_the_cost_panel_equals_the_cost_route(
    context: BrowserContext, places: RunningHub, tmp_path: Path
) -> None:
    hub = places
    page = admin_on(context, hub, f"/places/{PLACE}", "range=month&anchor=2026-06-01", "place")
    span = shown_span(page, hub, "range=month&anchor=2026-06-01")
    cost = api(page, hub, "cost", span["start"], span["end"], "day")
    total = page.locator('#cost-totals [data-total="total_cost"]')
    expect(total.locator('[data-field="value"]')).to_have_text(f"{cost['total_cost']:.2f}")
    assert float(total.get_attribute("data-value") or "nan") == round(cost["total_cost"], 2)
    expect(total.locator(".currency")).to_have_text("NOK")
    expect(page.locator("#cost-caption")).to_contain_text("30 days")
    bars = page.evaluate("() => document.getElementById('cost-chart').data[0].y")
    assert bars == pytest.approx([row["import_cost"] for row in cost["data"]], abs=6e-5)
    today = page.locator('#cost-now [data-cost="today"] [data-field="value"]')
    expect(today).to_contain_text("NOK")
    expect(page.locator('#cost-now [data-cost="last_month"] [data-field="detail"]')).to_contain_text("fees")
    page.locator("#cost-panel").scroll_into_view_if_needed()
    shot(page, "cost", tmp_path)


def test_the_power_flow_changes_when_a_reading_is_stored(context: BrowserContext, places: RunningHub) -> None:
    hub = places
    page = sign_in(context.new_page(), hub, "admin", f"/places/{PLACE}")
    expect(page.locator("#place")).to_have_attribute("data-now-loaded", "true")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    hub.ingest_now(HOUSE, 4321.0)
    imported = page.locator('#powerflow [data-flow="import_w"]')
    expect(imported.locator('[data-field="value"]')).to_have_text("4321")
    expect(page.locator('#powerflow [data-flow="export_w"] [data-field="value"]')).to_have_text("0")
    expect(imported).to_have_attribute("data-kind", "measured")
    home = page.locator('#powerflow [data-flow="home_w"]')
    expect(home).to_have_attribute("data-kind", "derived")
    (garage,) = hub.store.latest([GARAGE])
    special = page.locator('#powerflow [data-flow="special_w"]')
    assert float(special.get_attribute("data-value") or "nan") == round(garage.power_w or 0.0, 1)
    expect(home.locator('[data-field="value"]')).to_have_text("4321")  # no solar meter: home is what comes in
    ingest_after(hub, HOUSE, -1500.0)
    expect(page.locator('#powerflow [data-flow="export_w"] [data-field="value"]')).to_have_text("1500")
    expect(imported.locator('[data-field="value"]')).to_have_text("0")
    expect(page.locator(f'#meters-now tr[data-meter="{HOUSE}"] td.num')).to_have_text("-1500.0")


def test_a_viewer_with_the_place_shared_sees_its_figures_and_not_another_place(
    context: BrowserContext, places: RunningHub
) -> None:
    hub = places
    page = sign_in(context.new_page(), hub, "viewer", "/places")
    expect(page.locator(f'.place-card[data-place="{PLACE}"]')).to_contain_text("Our home")
    expect(page.locator(f'.place-card[data-place="{BARE}"]')).to_have_count(0)
    page.get_by_role("link", name="Our home").click()
    loaded(page, "place")
    page.goto(f"{hub.url}/places/{PLACE}?range=day&anchor=2026-06-15")
    loaded(page, "place")
    check_flow_equals_the_api(page, hub, "range=day&anchor=2026-06-15", GARAGE_SILENT)
    expect(page.locator("#cost-totals")).to_be_visible()
    answer = page.goto(f"{hub.url}/places/{BARE}")
    assert answer is not None and answer.status == 404
    expect(page.get_by_text(f"There is no place '{BARE}' you may see.")).to_be_visible()


def test_a_place_without_a_tariff_says_so_and_links_to_its_settings(
    context: BrowserContext, places: RunningHub
) -> None:
    hub = places
    page = sign_in(context.new_page(), hub, "admin", f"/places/{BARE}")
    loaded(page, "place")
    note = page.locator("#cost-note")
    expect(note).to_contain_text("no tariff")
    expect(note.get_by_role("link", name="Set its tariff")).to_have_attribute(
        "href", f"/manage/places/{BARE}"
    )
    expect(page.locator("#cost-chart")).to_have_count(0)
