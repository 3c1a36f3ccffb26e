"""The hub's default zone on the manage page, in a real browser, as an admin."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.web.conftest import RunningHub, sign_in
from tests.web.helpers import shot

pytestmark = pytest.mark.slow


def test_an_admin_sees_and_sets_the_default_zone(
    context: BrowserContext, hub: RunningHub, tmp_path: Path
) -> None:
    page = sign_in(context.new_page(), hub, "admin", "/manage")
    form = page.locator('[data-form="settings"]')
    before = form.locator("[data-default-tz]").inner_text()
    form.get_by_label("Default zone").fill("Europe/Oslp")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#default_tz-error")).to_contain_text("unknown time zone 'Europe/Oslp'")
    page.locator('[data-form="settings"]').get_by_label("Default zone").fill("Europe/Oslo")
    page.locator('[data-form="settings"]').get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text(
        "The default zone is Europe/Oslo (the hub's default zone)."
    )
    expect(page.locator("[data-default-tz]")).to_have_text("Europe/Oslo")
    shot(page, "manage-home", tmp_path)
    page.locator('[data-form="settings"]').get_by_label("Default zone").fill("")  # leave the hub as found
    page.locator('[data-form="settings"]').get_by_role("button", name="Save").click()
    expect(page.locator("[data-default-tz]")).to_have_text(before)
