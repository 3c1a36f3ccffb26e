"""Managing meters in a real browser: add one through discovery, edit it, backfill it, remove it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from meterhub.model import utc_now
from tests.simservers import simulator
from tests.web.conftest import RunningHub, sign_in
from tests.web.helpers import shot

pytestmark = pytest.mark.slow


def test_an_admin_adds_a_meter_by_discovery_edits_backfills_and_removes_it(
    context: BrowserContext, hub: RunningHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulator("umeter") as sim:
        info = sim.info()
        monkeypatch.setenv("T_BROWSER_UMETER_USER", info["credentials"]["username"])
        monkeypatch.setenv("T_BROWSER_UMETER_PASSWORD", info["credentials"]["password"])
        meter_id = f"umeter-{info['eans'][0]}"
        page = sign_in(context.new_page(), hub, "admin", "/manage/meters")

        page.get_by_role("link", name="Add a meter").click()
        page.get_by_label("Vendor").select_option("umeter")
        page.get_by_role("button", name="Show its options").click()
        page.locator('[name="opt_base_url"]').fill(sim.base_url)
        page.locator('[name="env_username"]').fill("T_BROWSER_UMETER_USER")
        page.locator('[name="env_password"]').fill("T_BROWSER_UMETER_PASSWORD")
        page.get_by_role("button", name="Discover").click()
        picks = page.locator('input[name="pick"]')
        expect(picks).to_have_count(len(info["eans"]))
        for other in info["eans"][1:]:
            page.get_by_label(f"Add umeter-{other}").uncheck()
        page.get_by_role("button", name="Add the meters picked").click()
        place_id = f"umeter-{info['eans'][0]}"  # the address's place, priced by the account's tariff
        expect(page.locator(".notice")).to_have_text(
            f"Added 1 meter(s): {meter_id}. added place {place_id} (Europe/Amsterdam, with the vendor's"
            f" tariff): meter {meter_id} is its grid meter."
        )
        assert hub.store.get_place(place_id).tariff["currency"] == "EUR"
        expect(page.locator(f'tr[data-meter="{meter_id}"]')).to_contain_text("umeter")
        assert info["credentials"]["password"] not in page.content()

        page.get_by_role("link", name=f"Edit {meter_id}").click()
        expect(page.locator('[name="env_password"]')).to_have_value("T_BROWSER_UMETER_PASSWORD")
        page.locator('[name="name"]').fill("Flat in town")
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".notice")).to_have_text(f"Saved meter {meter_id}.")
        expect(page.locator(f'tr[data-meter="{meter_id}"]')).to_contain_text("Flat in town")
        shot(page, "manage-meters", tmp_path)

        page.goto(f"{hub.url}/manage/backfill")
        page.locator('select[name="meter"]').select_option(meter_id)
        page.locator('[name="since"]').fill("now-3d")
        page.get_by_role("button", name="Start the backfill").click()
        expect(page.locator(".notice")).to_have_text(f"Started a backfill of {meter_id}.")
        run = page.locator(f'.run[data-meter="{meter_id}"]')
        expect(run.locator('[data-field="percent"]')).to_have_text("100%")
        expect(run).to_have_attribute("data-state", "done")
        expect(run.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
        now = utc_now()
        assert hub.store.intervals(meter_id, now - timedelta(days=3), now), "the backfill stored nothing"

    page.goto(f"{hub.url}/manage/meters")
    page.get_by_role("link", name=f"Remove {meter_id}").click()
    expect(page.locator("main")).to_contain_text("all its data")
    page.get_by_label("Delete the meter and its data").check()
    page.get_by_role("button", name="Remove the meter").click()
    expect(page.locator(".notice")).to_contain_text(f"Removed meter {meter_id}")
    expect(page.locator(f'tr[data-meter="{meter_id}"]')).to_have_count(0)
    assert meter_id not in {m.id for m in hub.store.list_meters()}
    hub.store.remove_place(place_id)  # leave the session's hub as the other browser tests expect it
