"""The demo in a real browser: build a place from its meters, price it, and check what it shows.

``meterhub demo`` runs as a user starts it (a subprocess with the five vendor simulators). In
chromium an admin builds a place from the demo's meters through the manage pages, attaches them
by role, sets a time-of-use tariff through the form and imports a price series; the place page's
energy flow and cost then equal the API's answers for the same day, the prices page shows the
series against the place's cost, and a viewer it is shared with can read it but reach no manage
page, by link or by URL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.cli.test_demo import free_port, serving, terminate
from tests.waiting import wait_until
from tests.web.browser import Guard, guarded_context
from tests.web.helpers import add_user_and_share, loaded, notice, save_tariff

pytestmark = pytest.mark.slow

PLACE, OSLO = "e2e-farm", ZoneInfo("Europe/Oslo")
ROLES = {"demo-farm-grid": "grid", "demo-farm-solar": "solar", "demo-smartmac": "special"}
VIEWER, VIEWER_PASSWORD = "e2e-viewer", "e2e-viewer-pass-1"
FLOW = ("from_grid_kwh", "to_grid_kwh", "yield_kwh", "consumption_kwh")


@dataclass
class Demo:
    """A running ``meterhub demo``: its URL and the admin password it printed."""

    url: str
    password: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """Run the demo with 30 hours of history, so yesterday is whole, until it polls live."""
    folder: Path = tmp_path_factory.mktemp("demo")
    port = free_port()
    command = [sys.executable, "-m", "meterhub", "--database-url", f"sqlite:///{folder / 'demo.db'}",
               "demo", "--port", str(port), "--history-h", "30"]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=folder, env={**os.environ, "COLUMNS": "200"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:  # the backfill is done when it polls live
            lines.append(line)
            if line.startswith("Polling live."):
                break
        dashboard = next(line for line in lines if line.startswith("Dashboard: "))
        wait_until(lambda: serving(process, port), "the demo to answer /healthz")
        yield Demo(f"http://127.0.0.1:{port}", dashboard.rsplit("password ", 1)[1].rstrip(")\n"))
    finally:
        _, err = terminate(process)
        assert "Traceback" not in err, err


def sign_in(page: Page, demo: Demo, user: str, password: str, path: str) -> Page:
    """Sign in on the form the dashboard sends a browser to, and come back to ``path``."""
    page.goto(demo.url + path)
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(demo.url + path)
    return page


def build_place(page: Page, demo: Demo) -> None:
    """Create the place, attach the demo's meters by role, and set a time-of-use tariff."""
    page.goto(demo.url + "/manage/places")
    form = page.get_by_role("form", name="Add a place")
    form.get_by_label("Id").fill(PLACE)
    form.get_by_label("Name").fill("Farm, by hand")
    form.get_by_label("Time zone").fill("Europe/Oslo")
    form.get_by_role("button", name="Add place").click()
    notice(page, f"Place {PLACE} added.")
    for meter, role in ROLES.items():
        attach = page.get_by_role("form", name="Attach a meter")
        attach.get_by_label("Meter").select_option(meter)
        attach.get_by_label("Role").select_option(role)
        attach.get_by_role("button", name="Attach").click()
        notice(page, "Meter attached")
    save_tariff(page, PLACE, {
        "Currency": "NOK", "Peak price per kWh": "1.40", "Off-peak price per kWh": "0.70",
        "Peak starts at hour": "6", "Peak ends at hour": "22", "Peak on": "all",
        "Flat export price per kWh": "0.30", "Fee per day": "5",
    })  # fmt: skip


def import_prices(page: Page, demo: Demo, day: datetime) -> None:
    """Import an hourly price series for ``day`` and the next through the API, as the signed-in admin."""
    rows = [
        f"{(day + timedelta(hours=h)).isoformat()},60m,{0.2 + 0.03 * (h % 24):.2f},NOK" for h in range(48)
    ]
    answer = page.request.post(
        f"{demo.url}/api/v1/prices/e2e-spot",
        data="start,resolution,price,currency\n" + "\n".join(rows) + "\n",
        headers={
            "Content-Type": "text/csv",
            "X-CSRF-Token": page.locator('meta[name="csrf-token"]').get_attribute("content") or "",
        },
    )
    assert answer.ok, answer.text()


def api(page: Page, demo: Demo, what: str, day: datetime) -> Any:
    """Return the API's answer about the place for one local day, read with the page's session."""
    span = {"start": day.isoformat(), "end": (day + timedelta(days=1)).isoformat(), "bucket": "1d"}
    answer = page.request.get(f"{demo.url}/api/v1/places/{PLACE}/{what}", params=span)
    assert answer.ok, answer.text()
    return answer.json()


def shown_while_settled(page: Page, demo: Demo, day: datetime) -> Any:
    """Load the place's day page between two equal API answers; return that answer.

    The demo keeps polling, and a vendor's late history can still change the day, so the page
    is compared with figures that held from before it loaded until after (at most 20 tries).
    """
    for _ in range(20):
        (before,) = api(page, demo, "energy", day)["data"]
        page.goto(f"{demo.url}/places/{PLACE}?range=day&anchor={day.date().isoformat()}")
        loaded(page, "place")
        (after,) = api(page, demo, "energy", day)["data"]
        if before == after:
            return after
    raise AssertionError(f"the place's figures for {day.date()} kept changing: {before} then {after}")


def test_a_place_built_from_the_demo_meters_shows_the_apis_figures(
    context: BrowserContext, browser: Browser, guard: Guard, demo: Demo
) -> None:
    page = sign_in(context.new_page(), demo, "admin", demo.password, "/manage")
    build_place(page, demo)
    yesterday = (datetime.now(UTC).astimezone(OSLO) - timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    import_prices(page, demo, yesterday)

    energy = shown_while_settled(page, demo, yesterday)
    for figure in FLOW:
        box = page.locator(f'#flow [data-figure="{figure}"]')
        expect(box.locator('[data-field="value"]')).to_have_text(f"{energy[figure]:.2f}")
    assert energy["consumption_kwh"] > 0 and energy["from_grid_kwh"] > 0, energy
    ratio = page.locator('#flow [data-figure="self_sufficiency_pct"] [data-field="value"]')
    expect(ratio).to_have_text(f"{100 * energy['self_sufficiency_ratio']:.1f}")
    cost = api(page, demo, "cost", yesterday)
    total = page.locator('#cost-totals [data-total="total_cost"]')
    expect(total.locator('[data-field="value"]')).to_have_text(f"{cost['total_cost']:.2f}")
    assert cost["currency"] == "NOK" and cost["total_cost"] > 5.0  # the day's fee and its energy

    page.goto(f"{demo.url}/prices?series=e2e-spot&day={yesterday.date().isoformat()}&place={PLACE}")
    loaded(page, "prices")
    expect(page.locator("#prices-chart")).to_be_visible()
    expect(page.get_by_text("Cheapest hours").first).to_be_visible()
    names = page.evaluate("() => document.getElementById('prices-chart').data.map((t) => t.name)")
    assert any("e2e-spot" in name for name in names) and any("cost" in name for name in names), names

    add_user_and_share(page, demo.url, VIEWER, VIEWER_PASSWORD, f"place:{PLACE}")

    viewer = guarded_context(browser, guard)
    viewer.on("page", guard.watch)
    try:
        the_viewer_reads_the_place_and_reaches_no_manage_page(viewer.new_page(), demo)
    finally:
        viewer.close()


def the_viewer_reads_the_place_and_reaches_no_manage_page(page: Page, demo: Demo) -> None:
    """Sign in as the viewer the place is shared with: read it, and find no way to manage."""
    sign_in(page, demo, VIEWER, VIEWER_PASSWORD, f"/places/{PLACE}")
    loaded(page, "place")
    expect(page.get_by_role("link", name="Manage")).to_have_count(0)
    for path in ("/manage", "/manage/meters", "/manage/places", f"/manage/places/{PLACE}", "/manage/users",
                 "/manage/keys", "/manage/backfill", "/manage/meters/new"):  # fmt: skip
        answer = page.goto(demo.url + path)
        assert answer is not None and answer.status == 404, path
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    token = page.evaluate("() => document.querySelector('meta[name=\"csrf-token\"]').content")
    posted = page.request.post(
        f"{demo.url}/manage/places",
        form={"csrf_token": token, "id": "sneaky", "name": "x", "tz": "Europe/Oslo"},
    )
    assert posted.status == 404
    places = page.request.get(f"{demo.url}/api/v1/places").json()
    assert [p["id"] for p in places] == [PLACE]
