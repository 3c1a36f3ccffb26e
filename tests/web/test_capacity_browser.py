"""The capacity-tariff page in a real browser, on the shared hub: figures read off the page equal
the API's, and the hour in progress follows the live stream.

The place ``cap-house`` has the household's meter as its grid meter; October 2026 holds the
25-hour night and three silent hours, so its figures are estimated.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from meterhub.errors import UnknownPlaceError
from meterhub.ingest import Ingestor
from meterhub.model import Place, Role, utc_now
from tests.waiting import wait_until
from tests.web.conftest import HOUSE, RunningHub, household_reading, sign_in
from tests.web.helpers import admin_on, api_json, loaded, shot

pytestmark = pytest.mark.slow

PLACE = "cap-house"


@pytest.fixture
def place(hub: RunningHub) -> str:
    """Put the household's meter in a place of its own (once per hub)."""
    try:
        hub.store.get_place(PLACE)
    except UnknownPlaceError:
        hub.store.add_place(Place(PLACE, "Europe/Oslo", "Our house", ((HOUSE, Role.GRID),)))
    return PLACE


def test_the_october_page_shows_the_apis_figures(
    context: BrowserContext, hub: RunningHub, place: str, tmp_path: Path
) -> None:
    page = admin_on(context, hub, f"/places/{place}/capacity", "month=2026-10", "capacity")
    api = api_json(page, f"{hub.url}/api/v1/places/{place}/capacity?month=2026-10")
    expect(page.locator("#month-title")).to_have_text("October 2026")
    expect(page.locator('[data-field="month_value_kwh"]')).to_have_text(f"{api['month_value_kwh']:.2f}")
    expect(page.locator('[data-field="step"]')).to_have_attribute("data-value", f"{api['step_kwh']:g}")
    left = api["step_kwh"] - api["month_value_kwh"]
    expect(page.locator('[data-field="left_in_step_kwh"]')).to_have_text(f"{left:.2f}")
    rows = page.locator("#peaks tbody tr")
    expect(rows).to_have_count(len(api["peaks"]))
    assert len(api["peaks"]) == 3
    for row, peak in zip(rows.all(), api["peaks"], strict=True):
        assert row.get_attribute("data-day") == peak["day"]
        assert row.locator('[data-field="energy_kwh"]').inner_text() == f"{peak['energy_kwh']:.3f}"
        hour = row.locator('[data-field="hour"]').inner_text()
        assert hour.startswith(peak["hour_start"][11:16]) and "(UTC+0" in hour, (hour, peak)
    expect(page.locator("#estimated")).to_be_visible(visible=api["estimated"])
    assert api["estimated"], "the three silent hours of 24 October make the month estimated"
    expect(page.locator("#chart-caption")).to_have_attribute("data-bars", "31")
    drawn = page.evaluate(
        "() => document.getElementById('capacity-chart').data[0].y.filter((v) => v !== null)"
    )
    assert sorted(drawn, reverse=True)[:3] == pytest.approx([p["energy_kwh"] for p in api["peaks"]], abs=1e-4)
    expect(page.locator("#live-hour")).to_be_hidden()
    expect(page.locator("#next")).to_have_attribute("href", f"/places/{place}/capacity?month=2026-11")
    shot(page, "capacity", tmp_path)


def test_the_hour_in_progress_follows_the_live_stream(
    context: BrowserContext, hub: RunningHub, place: str
) -> None:
    page = sign_in(context.new_page(), hub, "admin", f"/places/{place}/capacity")
    loaded(page, "capacity")
    expect(page.locator("#live-hour")).to_be_visible()
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    so_far = page.locator('[data-field="hour_import_kwh"]')
    before = float(so_far.get_attribute("data-value") or "nan")
    latest = hub.store.latest([HOUSE])[0]
    register = (latest.energy_import_kwh or 0.0) + 1.0  # a whole kWh more: far above the stream's rounding
    report = Ingestor(hub.store).ingest(
        [household_reading(HOUSE, utc_now().replace(microsecond=0), 2500.0, register)]
    )
    assert report.stored == 1, report
    view = api_json(page, f"{hub.url}/api/v1/dashboard/places/{place}/capacity")
    live = view["live"]
    assert live["import_kwh"] > before, "the new reading adds to this hour"

    def shown() -> float:
        return float(so_far.get_attribute("data-value") or "nan")

    # the stream sends registers to the Wh: the page's sum may differ from the rollups' by that
    wait_until(lambda: abs(shown() - live["import_kwh"]) < 1.1e-3, "the page to count the new reading")
    allowance = page.locator('[data-field="allowance_text"]')
    if live["hour_cap_kwh"] is None:
        expect(allowance).to_contain_text("above the last threshold")
    else:
        value = float(allowance.get_attribute("data-value") or "nan")
        assert value == pytest.approx(live["allowance_kwh"], abs=1.1e-3)
        expect(allowance).to_contain_text(f"passes {view['step_kwh']:g} kWh/h")
