"""The prices page in a real browser, on the shared hub: the crafted series of test_prices_http
(25 October 2026 in quarter hours, 26 October hourly) drawn as steps, its cheapest and dearest
hours read off the page equal to the data route's, and a place's cost on a second axis.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from meterhub.errors import UnknownPlaceError
from meterhub.model import Direction, Place, PricePoint, Role
from tests.web.conftest import HOUSE, RunningHub, sign_in
from tests.web.helpers import admin_on, api_json, loaded, shot
from tests.web.test_prices_http import SERIES, price_rows

pytestmark = pytest.mark.slow

PLACE = "cap-priced-house"


@pytest.fixture
def priced(hub: RunningHub) -> str:
    """Store the crafted series and a place whose tariff uses it (once per hub)."""
    if not any(name == SERIES for name, *_ in hub.store.price_series()):
        points = [PricePoint(s, e, p, "EUR", Direction.IMPORT, SERIES) for s, e, p in price_rows()]
        hub.store.write_prices(points)
    try:
        hub.store.get_place(PLACE)
    except UnknownPlaceError:
        tariff = {"currency": "EUR", "import_series": SERIES}
        hub.store.add_place(Place(PLACE, "Europe/Oslo", "Priced house", ((HOUSE, Role.GRID),), tariff))
    return PLACE


def test_the_prices_page_lists_the_hours_the_api_names_and_draws_the_cost(
    context: BrowserContext, hub: RunningHub, priced: str, tmp_path: Path
) -> None:
    query = f"series={SERIES}&day=2026-10-25&place={priced}"
    page = admin_on(context, hub, "/prices", query, "prices")
    view = api_json(page, f"{hub.url}/api/v1/dashboard/prices?{query}")
    expect(page.locator("#prices-title")).to_have_text("Sunday 25 October 2026 and Monday 26 October 2026")
    days = page.locator(".price-day")
    expect(days).to_have_count(2)
    for panel, day in zip(days.all(), view["days"], strict=True):
        assert panel.get_attribute("data-day") == day["day"]
        assert panel.locator('[data-field="facts"]').get_attribute("data-slots") == str(day["priced_slots"])
        for kind in ("cheapest", "dearest"):
            items = panel.locator(f".hour-list.{kind} li")
            shown = [
                (
                    item.locator('[data-field="hour"]').inner_text(),
                    item.locator('[data-field="price"]').inner_text(),
                )
                for item in items.all()
            ]
            assert shown == [(h["label"], f"{h['price']:.4f} EUR") for h in day[kind]], kind
    first = days.first
    expect(first.locator(".hour-list.cheapest li").first).to_contain_text("02:00 CET")
    expect(first.locator('[data-field="facts"]')).to_contain_text("100 slots of 15 min")
    expect(days.nth(1).locator('[data-field="facts"]')).to_contain_text("24 slots of 60 min")
    traces = page.evaluate(
        """() => document.getElementById('prices-chart').data.map((t) => (
             { shape: t.line && t.line.shape, yaxis: t.yaxis || 'y', n: t.y.length, y: t.y }))"""
    )
    line = next(t for t in traces if t["shape"] == "hv")
    assert line["n"] == len(view["line"]["price"]) == 126
    cost = next(t for t in traces if t["yaxis"] == "y2")
    api_cost = api_json(
        page,
        f"{hub.url}/api/v1/places/{priced}/cost?start=2026-10-25T00:00:00%2B02:00"
        "&end=2026-10-27T00:00:00%2B01:00&groupby=hour",
    )
    assert cost["y"] == pytest.approx([r["total_cost"] for r in api_cost["data"]], abs=1e-4)
    assert len(cost["y"]) == 49
    expect(page.locator("#cost-note")).to_contain_text(f"{api_cost['total_cost']:.2f} EUR")
    shot(page, "prices", tmp_path)
    page.locator("#next").click()
    loaded(page, "prices")
    expect(page).to_have_url(f"{hub.url}/prices?series={SERIES}&day=2026-10-26&place={priced}")
    expect(page.locator(".price-day").first.locator('[data-field="facts"]')).to_contain_text(
        "24 slots of 60 min"
    )


_FITS = """() => {
  const svg = document.querySelector('#prices-chart .main-svg');
  return document.documentElement.scrollWidth <= window.innerWidth
    && svg !== null && svg.getBoundingClientRect().right <= window.innerWidth;
}"""
"""Whether the page and the prices chart's drawing fit the window's width (no sideways scroll)."""

_TICKS_APART = """() => {
  const boxes = [...document.querySelectorAll('#prices-chart .xtick text')]
    .map((text) => text.getBoundingClientRect()).sort((a, b) => a.left - b.left);
  return boxes.length >= 3 && boxes.every((box, i) => i === 0 || box.left >= boxes[i - 1].right - 0.5);
}"""
"""Whether the time axis shows at least three labels and none overlaps the next."""

_LEGEND_CLEAR = """() => {
  const chart = document.getElementById('prices-chart');
  const legend = chart.querySelector('.legend').getBoundingClientRect();
  const below = [...chart.querySelectorAll('.xtick text, .g-xtitle text')]
    .map((t) => t.getBoundingClientRect());
  return below.length > 0 && below.every((box) => box.bottom <= legend.top + 0.5)
    && legend.bottom <= chart.getBoundingClientRect().bottom + 0.5;
}"""
"""Whether the legend lies below the time axis's labels and title, inside the chart's box."""


def test_the_prices_chart_fits_a_phone_and_follows_a_narrowed_window(
    browser_phone: Page, context: BrowserContext, hub: RunningHub, priced: str, tmp_path: Path
) -> None:
    query = f"series={SERIES}&day=2026-10-25&place={priced}"
    phone = sign_in(browser_phone, hub, "admin", "/prices")
    phone.goto(f"{hub.url}/prices?{query}")
    loaded(phone, "prices")
    assert phone.evaluate(_FITS)
    assert phone.evaluate(_TICKS_APART)
    assert phone.evaluate(_LEGEND_CLEAR)
    shot(phone, "phone-prices", tmp_path)
    desktop = admin_on(context, hub, "/prices", query, "prices")
    wide_px = desktop.evaluate("() => document.querySelector('#prices-chart .main-svg').clientWidth")
    assert wide_px > 600
    desktop.set_viewport_size({"width": 390, "height": 844})
    # Plotly redraws on the window's resize event: wait for the drawing to take the narrow width.
    svg_width = "document.querySelector('#prices-chart .main-svg').clientWidth"
    desktop.wait_for_function(f"() => {svg_width} < {wide_px}")
    desktop.wait_for_function(_FITS)
    desktop.wait_for_function(_TICKS_APART)
    desktop.wait_for_function(_LEGEND_CLEAR)
    shot(desktop, "phone-prices-narrowed", tmp_path)
