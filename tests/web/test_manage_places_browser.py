"""Managing places, users and keys in a real browser, as an admin; and nothing of it as a viewer.

The session's hub has meters house and garage; what is made here is named mp-... so the other
browser tests never meet it.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, expect

from tests.web.conftest import GARAGE, HOUSE, RunningHub, sign_in
from tests.web.helpers import add_user_and_share, notice, save_tariff, shot

pytestmark = pytest.mark.slow

PLACE, USER, USER_PASSWORD = "mp-home", "mp-guest", "mp-guest-pass-1"


def test_an_admin_builds_a_place_prices_it_shares_it_and_makes_a_key(
    context: BrowserContext, hub: RunningHub, tmp_path: Path
) -> None:
    page = sign_in(context.new_page(), hub, "admin", "/manage")
    expect(page.locator('[data-area="places"] .count')).to_have_text(re.compile(r"^\d+$"))
    page.locator('[data-area="places"]').get_by_role("link", name="Places").click()
    expect(page).to_have_url(hub.url + "/manage/places")

    form = page.get_by_role("form", name="Add a place")
    form.get_by_label("Id").fill(PLACE)
    form.get_by_label("Name").fill("Test home")
    form.get_by_label("Time zone").fill("Europe/Oslp")
    form.get_by_role("button", name="Add place").click()
    expect(page.locator("#tz-error")).to_contain_text("unknown time zone")
    expect(page.get_by_role("form", name="Add a place").get_by_label("Id")).to_have_value(PLACE)
    page.get_by_role("form", name="Add a place").get_by_label("Time zone").fill("Europe/Oslo")
    page.get_by_role("form", name="Add a place").get_by_role("button", name="Add place").click()
    notice(page, f"Place {PLACE} added.")

    attach = page.get_by_role("form", name="Attach a meter")
    for meter, role in ((HOUSE, "grid"), (GARAGE, "special")):
        attach.get_by_label("Meter").select_option(meter)
        attach.get_by_label("Role").select_option(role)
        attach.get_by_role("button", name="Attach").click()
        notice(page, "Meter attached")
    expect(page.locator(f'tr[data-meter="{HOUSE}"] td[data-role="grid"]')).to_be_visible()
    expect(page.locator(f'tr[data-meter="{GARAGE}"] td[data-role="special"]')).to_be_visible()

    tariff = page.get_by_role("form", name="Tariff")
    expect(tariff.locator("#peak_per_kwh-hint")).to_contain_text("inside the peak hours")
    tariff.get_by_label("Currency").fill("NOK")
    tariff.get_by_label("Peak price per kWh", exact=True).fill("-1")
    tariff.get_by_label("Off-peak price per kWh").fill("0.61")
    tariff.get_by_role("button", name="Save tariff").click()
    expect(page.locator("#peak_per_kwh-error")).to_contain_text("cannot be negative")
    tariff = page.get_by_role("form", name="Tariff")
    expect(tariff.get_by_label("Off-peak price per kWh")).to_have_value("0.61")
    save_tariff(page, PLACE, {
        "Peak price per kWh": "1.23", "Peak starts at hour": "6", "Peak ends at hour": "22",
        "Peak on": "weekdays", "Import adder per kWh": "0.1", "Fee per month": "399",
        "Capacity thresholds in kWh": "2,5,10", "Number of peak days": "3",
    })  # fmt: skip
    shot(page, "manage", tmp_path)  # the place as saved, each field with what it means

    with httpx.Client(base_url=hub.url) as api:
        api.cookies.update({c["name"]: c["value"] for c in context.cookies()})
        shown = api.get(f"/api/v1/places/{PLACE}/tariff").json()
        members = api.get(f"/api/v1/places/{PLACE}").json()["meters"]
    assert members == [{"meter": GARAGE, "role": "special"}, {"meter": HOUSE, "role": "grid"}]
    assert {
        k: shown[k]
        for k in ("currency", "peak_per_kwh", "offpeak_per_kwh", "peak_start_hour", "peak_end_hour")
    } == {
        "currency": "NOK",
        "peak_per_kwh": 1.23,
        "offpeak_per_kwh": 0.61,
        "peak_start_hour": 6,
        "peak_end_hour": 22,
    }
    assert shown["peak_weekdays_only"] is True and shown["import_adder_per_kwh"] == 0.1
    assert shown["fee_per_month"] == 399 and shown["capacity_thresholds_kwh"] == [2, 5, 10]
    assert shown["capacity_peak_days"] == 3 and shown["import_per_kwh"] is None

    add_user_and_share(page, hub.url, USER, USER_PASSWORD, f"place:{PLACE}")
    expect(page.locator(f'li[data-share="place:{PLACE}"]')).to_be_visible()

    page.goto(hub.url + "/manage/keys")
    create = page.get_by_role("form", name="Create a key")
    create.get_by_label("User").select_option(USER)
    create.get_by_label("Name").fill("mp-display")
    create.get_by_role("button", name="Create key").click()
    expect(page.get_by_text("it will not be shown again")).to_be_visible()
    key = page.locator("#new-key").inner_text().strip()
    assert key.startswith("mh_")
    with httpx.Client(base_url=hub.url, headers={"X-API-Key": key}) as program:
        assert program.get(f"/api/v1/places/{PLACE}").json()["meters"] == members
        assert program.get("/api/v1/users").status_code == 403
    page.goto(hub.url + "/manage/keys")
    expect(page.locator("#new-key")).to_have_count(0)
    assert key not in page.content() and key.split("_", 2)[2] not in page.content()
    expect(page.locator("tr", has_text="mp-display")).to_contain_text(USER)


def test_a_viewer_sees_no_manage_link_and_no_manage_page(context: BrowserContext, hub: RunningHub) -> None:
    page = sign_in(context.new_page(), hub, "viewer")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Overview")).to_be_visible()
    expect(page.get_by_role("link", name="Manage")).to_have_count(0)
    for path in ("/manage", "/manage/places", "/manage/users", "/manage/keys", "/manage/users/admin"):
        answer = page.goto(hub.url + path)
        assert answer is not None and answer.status == 404, path
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        expect(page.get_by_role("link", name="Manage")).to_have_count(0)
