"""The meter page's Device panel in a real browser: last values with unit and age, and small charts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect

from meterhub.model import Extra, utc_now
from meterhub.timeutil import get_zone
from tests.web.conftest import GARAGE, HOUSE, RunningHub, sign_in
from tests.web.helpers import admin_on, loaded, shot

pytestmark = pytest.mark.slow

STEPS = 37
"""Six hours of reports ten minutes apart: k = 0 .. 36."""


def _write_device_reports(hub: RunningHub) -> str:
    """Store the garage device's reports of the last six hours; return a custom range holding them."""
    now = utc_now().replace(second=0, microsecond=0)
    base = now - timedelta(minutes=now.minute % 10) - timedelta(hours=6)
    extras: list[Extra] = []
    for k in range(STEPS):
        ts = base + timedelta(minutes=10 * k)
        extras += [
            Extra(GARAGE, ts, "temperature_c", 35.0 + (k % 5) * 0.5),
            Extra(GARAGE, ts, "rssi_dbm", -60.0 - (k % 4)),
            Extra(GARAGE, ts, "relay_on", 1.0 if (k // 6) % 2 == 0 else 0.0),
            Extra(GARAGE, ts, "uptime_s", 273_600.0 + 600 * k),
        ]
    hub.store.write_extras(extras)
    zone = get_zone("Europe/Oslo")
    start = (base - timedelta(hours=1)).astimezone(zone).strftime("%Y-%m-%dT%H:%M")
    end = (now + timedelta(hours=1)).astimezone(zone).strftime("%Y-%m-%dT%H:%M")
    return f"range=custom&start={start}&end={end}"


def test_the_device_panel_shows_last_values_and_charts_of_the_period(
    context: BrowserContext, hub: RunningHub, tmp_path: Path
) -> None:
    query = _write_device_reports(hub)
    page = admin_on(context, hub, f"/meters/{GARAGE}", query, "meter")
    panel = page.locator("#device")
    expect(panel).to_be_visible()
    rows = panel.locator("#device-table tbody tr")
    expect(rows).to_have_count(4)

    def cell(series: str, field: str) -> Any:
        return panel.locator(f'tr[data-series="{series}"] td[data-field="{field}"]')

    # The last report is k = 36: 35.0 + (36 % 5) * 0.5 = 35.5 °C, -60 - (36 % 4) = -60 dBm,
    # (36 // 6) % 2 = 0 so the relay is on, and 273600 + 600 * 36 = 295200 s = 3 d 10 h of uptime.
    expect(cell("temperature_c", "value")).to_have_text("35.5 °C")
    expect(cell("rssi_dbm", "value")).to_have_text("-60 dBm")
    expect(cell("relay_on", "value")).to_have_text("on")
    expect(cell("uptime_s", "value")).to_have_text("3 d 10 h")
    expect(cell("temperature_c", "age")).to_contain_text("ago")
    expect(cell("temperature_c", "count")).to_have_text(str(STEPS))
    # Uptime is a running total: listed, not drawn.
    charts = panel.locator("#device-charts .device-chart")
    expect(charts).to_have_count(3)
    drawn = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#device-charts .device-chart')].map(
             (el) => [el.dataset.series, el.data.map((t) => ({ n: t.y.length, shape: t.line.shape }))]))"""
    )
    assert drawn == {
        "relay_on": [{"n": STEPS, "shape": "hv"}],
        "rssi_dbm": [{"n": STEPS, "shape": "linear"}],
        "temperature_c": [{"n": STEPS, "shape": "linear"}],
    }
    relay_ticks = page.evaluate(
        "() => document.querySelector('.device-chart[data-series=\"relay_on\"]').layout.yaxis.ticktext"
    )
    assert relay_ticks == ["off", "on"]
    panel.scroll_into_view_if_needed()
    shot(page, "meter-device", tmp_path)


def test_a_meter_without_device_series_shows_no_device_panel(
    context: BrowserContext, hub: RunningHub
) -> None:
    page = sign_in(context.new_page(), hub, "viewer", f"/meters/{HOUSE}")
    loaded(page, "meter")
    expect(page.locator("#power-chart .main-svg").first).to_be_attached()
    expect(page.locator("#device")).to_be_hidden()
