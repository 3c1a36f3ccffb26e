"""The dashboard in a real browser: sign-in, live overview, a meter's calendar, zoom, downloads, roles."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.web.conftest import GARAGE, HOUSE, PASSWORDS, RunningHub, sign_in
from tests.web.helpers import admin_on, loaded, shot

pytestmark = pytest.mark.slow


def house_day(context: BrowserContext, hub: RunningHub, day: str) -> Page:
    """Sign in as the admin and open the house's meter page on ``day``, drawn."""
    return admin_on(context, hub, f"/meters/{HOUSE}", f"range=day&anchor={day}", "meter")


def bars(page: Page) -> int:
    """Return how many energy periods the meter page draws, as its caption and chart say."""
    caption = page.locator("#energy-caption")
    drawn = page.locator("#energy-chart g.trace.bars").first.locator("g.point").count()
    assert int(caption.get_attribute("data-bars") or -1) == drawn
    return drawn


def test_sign_in_and_see_the_overview_update_live(
    context: BrowserContext, hub: RunningHub, tmp_path: Path
) -> None:
    page = sign_in(context.new_page(), hub, "admin")
    cards = page.locator(".card")
    expect(cards).to_have_count(2)
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    house = page.locator(f'.card[data-meter="{HOUSE}"]')
    expect(house.locator('[data-field="import_today"]')).not_to_have_text("\u2013")
    hub.ingest_now(HOUSE, 4321.0)
    expect(house.locator('[data-field="power"]')).to_have_text("4321")
    expect(house.locator('[data-field="age"]')).to_contain_text("s ago")
    shot(page, "overview", tmp_path)


def test_a_meter_day_across_the_spring_dst_night_has_23_hourly_bars(
    context: BrowserContext, hub: RunningHub
) -> None:
    page = house_day(context, hub, "2026-03-29")
    expect(page.locator("#period-title")).to_have_text("Sunday 29 March 2026")
    assert bars(page) == 23
    page.get_by_role("button", name="Next period").click()
    loaded(page, "meter")
    expect(page.locator("#period-title")).to_have_text("Monday 30 March 2026")
    assert bars(page) == 24
    page.goto(f"{hub.url}/meters/{HOUSE}?range=day&anchor=2026-10-25")
    loaded(page, "meter")
    assert bars(page) == 25
    labels = page.evaluate("() => document.getElementById('energy-chart').data[0].x")
    assert "02:00 CEST" in labels and "02:00 CET" in labels, labels
    assert len(set(labels)) == 25


def test_month_and_year_views_and_the_previous_period(
    context: BrowserContext, hub: RunningHub, tmp_path: Path
) -> None:
    page = house_day(context, hub, "2026-03-29")
    page.get_by_role("button", name="Month").click()
    loaded(page, "meter")
    expect(page.locator("#period-title")).to_have_text("March 2026")
    assert bars(page) == 31
    page.get_by_role("button", name="Previous period").click()
    loaded(page, "meter")
    expect(page.locator("#period-title")).to_have_text("February 2026")
    assert bars(page) == 28
    page.get_by_role("button", name="Year").click()
    loaded(page, "meter")
    expect(page.locator("#period-title")).to_have_text("2026")
    assert bars(page) == 12
    expect(page).to_have_url(f"{hub.url}/meters/{HOUSE}?range=year&anchor=2026-01-01")
    page.get_by_label("Compare with the previous period").check()
    loaded(page, "meter")
    expect(page.locator("#energy-caption")).to_contain_text("vs 2025")
    page.get_by_label("Compare with the previous period").uncheck()
    loaded(page, "meter")
    shot(page, "meter-year", tmp_path)


def test_a_day_with_a_silence_draws_a_gap_and_zooms(
    context: BrowserContext, hub: RunningHub, tmp_path: Path
) -> None:
    page = house_day(context, hub, "2026-10-24")
    gaps = page.evaluate(
        """() => {
          const avg = document.getElementById('power-chart').data.find((t) => t.name === 'average');
          return avg.y.filter((v) => v === null).length;
        }"""
    )
    assert gaps == 1, "the three silent hours are one gap, and nothing else is"
    shot(page, "meter-day", tmp_path)
    before = page.evaluate(
        "() => document.getElementById('power-chart').data.find((t) => t.name === 'average').x.length"
    )
    box = page.locator("#power-chart .nsewdrag").first.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    expect(page.locator("#period-title")).to_contain_text("(zoomed)")
    loaded(page, "meter")
    after = page.evaluate(
        """() => {
          const avg = document.getElementById('power-chart').data.find((t) => t.name === 'average');
          const wall = (ms) => new Date(ms).toISOString();
          return [avg.x.length, wall(avg.x[0]), wall(avg.x[avg.x.length - 1])];
        }"""
    )
    assert after[0] > 0 and after[1] > "2026-10-24T12" and after[2] < "2026-10-24T16", (before, after)


def test_csv_and_png_of_the_view_download(context: BrowserContext, hub: RunningHub) -> None:
    page = house_day(context, hub, "2026-03-29")
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    text = Path(download.value.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) > 100 and "power_avg_w" in rows[0]
    assert rows[0]["start"].startswith("2026-03-28T23:00")
    with page.expect_download() as picture:
        page.get_by_role("link", name="PNG").click()
    assert Path(picture.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_viewer_sees_only_shared_meters_and_no_write_control(
    context: BrowserContext, hub: RunningHub
) -> None:
    page = sign_in(context.new_page(), hub, "viewer")
    expect(page.locator(".card")).to_have_count(1)
    expect(page.locator(f'.card[data-meter="{HOUSE}"]')).to_be_visible()
    expect(page.locator(f'.card[data-meter="{GARAGE}"]')).to_have_count(0)
    forms = page.locator("form")
    expect(forms).to_have_count(1)
    expect(forms.first).to_have_attribute("action", "/logout")
    page.goto(f"{hub.url}/meters/{GARAGE}")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    page.goto(f"{hub.url}/health")
    expect(page.locator(".health")).to_have_count(1)
    answer = page.request.get(f"{hub.url}/api/v1/dashboard/meters/{GARAGE}/view?range=day")
    assert answer.status == 404


def test_sign_out_ends_the_session(context: BrowserContext, hub: RunningHub) -> None:
    page = sign_in(context.new_page(), hub, "viewer")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{hub.url}/login")
    assert page.request.get(f"{hub.url}/api/v1/session").status == 401
    page.goto(f"{hub.url}/")
    expect(page).to_have_url(f"{hub.url}/login?next=%2F")


def test_a_wrong_password_says_so(context: BrowserContext, hub: RunningHub) -> None:
    page = context.new_page()
    page.goto(f"{hub.url}/login")
    page.get_by_label("User name").fill("viewer")
    page.get_by_label("Password").fill(PASSWORDS["viewer"] + "x")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")


def test_the_phone_layout_fits_the_screen(browser_phone: Page, hub: RunningHub, tmp_path: Path) -> None:
    page = sign_in(browser_phone, hub, "admin")
    expect(page.locator(".card")).to_have_count(2)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "phone-overview", tmp_path)
    page.goto(f"{hub.url}/meters/{HOUSE}?range=day&anchor=2026-10-24")
    loaded(page, "meter")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "phone-meter", tmp_path)


def test_health_shows_each_meter(context: BrowserContext, hub: RunningHub, tmp_path: Path) -> None:
    page = sign_in(context.new_page(), hub, "admin", "/health")
    expect(page.locator(".health")).to_have_count(2)
    house = page.locator(f'.health[data-meter="{HOUSE}"]')
    expect(house.locator('[data-field="cadence"]')).to_contain_text("not polled")
    expect(house.locator('[data-field="newest"]')).to_contain_text("ago")
    shot(page, "health", tmp_path)


def test_api_docs_load_offline_and_try_it_out_uses_the_session(
    context: BrowserContext, hub: RunningHub
) -> None:
    page = sign_in(context.new_page(), hub, "admin", "/docs")
    operation = page.locator("#operations-auth-who_am_i_api_v1_session_get")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status").first
    expect(status).to_have_text("200")
    expect(operation.locator(".live-responses-table .microlight").first).to_contain_text('"user": "admin"')
