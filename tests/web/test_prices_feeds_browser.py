"""The prices page shows each day-ahead price feed's state by its series, in a real browser.

Two real feeds run beside the shared hub, on its store, against the ENTSO-E simulator on loopback
(its clock at 14:00 CET of today's date in Oslo): ``feed-no1`` with the right token stores today
and tomorrow, ``feed-se3`` with a refused token fails. The page must tell, per feed, who fetches
it, its state, the last success and what it stored, the newest slot, whether tomorrow is
stored, the last error (never the token) and the next try, as ``/api/v1/status/prices`` does.
With no series stored yet, the page still shows why a feed fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import anyio
import anyio.from_thread
import httpx
import pytest
from playwright.sync_api import BrowserContext, expect

from meterhub.poller import Clock
from meterhub.pricefeeds.schedule import run_price_feeds
from meterhub.pricefeeds.sources import PriceSource
from meterhub.pricefeeds.state import FeedState, save_state
from meterhub.pricefeeds.zones import find_zone
from meterhub.status import price_feed_status
from meterhub.timeutil import get_zone
from tests.api.conftest import ApiServer, serve_api
from tests.pricefeeds.entsoesim import entsoe_simulator
from tests.pricefeeds.test_price_feed_hub import token_file
from tests.waiting import DEADLINE_S, wait_until
from tests.web.conftest import RunningHub
from tests.web.helpers import admin_on, api_json, shot, signed_in

__all__ = ["serve_api"]

pytestmark = pytest.mark.slow

WRONG_TOKEN = "wrong-token-web-5150"
GOOD, BAD = "feed-no1", "feed-se3"


@pytest.fixture
def feeding(hub: RunningHub, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    """Run the two feeds on the hub's store until both have looked; yield the worker's name."""
    caplog.set_level(logging.WARNING, logger="meterhub.pricefeeds")
    wrong = tmp_path / "wrong.token"
    wrong.write_text(WRONG_TOKEN)
    wrong.chmod(0o600)
    # The feeds' clock starts after the day-ahead publication (13:00 CET), and never behind the
    # real time the status reads: a next try would otherwise look long past, "overdue".
    real_now = datetime.now(UTC).replace(microsecond=0)
    today = real_now.astimezone(get_zone("Europe/Oslo")).date()
    start = max(datetime.combine(today, time(14, 0), tzinfo=get_zone("Europe/Brussels")), real_now)
    with entsoe_simulator(start) as sim:
        sources = [
            PriceSource(find_zone("NO1"), GOOD, token_file(tmp_path), base_url=sim.api_url, retry_s=600),
            PriceSource(find_zone("SE3"), BAD, f"file:{wrong}", base_url=sim.api_url, retry_s=600),
        ]

        async def feeds(scope: anyio.CancelScope) -> None:
            with scope:
                async with httpx.AsyncClient(timeout=30) as client:
                    await run_price_feeds(hub.store, client, sources, Clock(start, 1.0), worker="web-worker")

        with anyio.from_thread.start_blocking_portal() as portal:
            scope = portal.call(anyio.CancelScope)
            running = portal.start_task_soon(feeds, scope)

            def looked() -> bool:
                found = {f.series: f for f in price_feed_status(hub.store)}
                return (
                    GOOD in found
                    and found[GOOD].last_success_at is not None
                    and BAD in found
                    and found[BAD].consecutive_failures > 0
                )

            wait_until(looked, "both feeds to look once")
            try:
                yield "web-worker"
            finally:
                portal.call(scope.cancel)
                running.result(timeout=DEADLINE_S)


def test_the_prices_page_shows_each_feeds_state_by_its_series(
    context: BrowserContext, hub: RunningHub, feeding: str, tmp_path: Path
) -> None:
    page = admin_on(context, hub, "/prices", f"series={GOOD}", "prices")
    listed = api_json(page, f"{hub.url}/api/v1/status/prices")
    api = {item["series"]: item for item in listed}  # type: ignore[index]
    panel = page.locator("#price-feeds")
    expect(panel).to_be_visible()
    good = panel.locator(f'[data-feed="{GOOD}"]')
    bad = panel.locator(f'[data-feed="{BAD}"]')
    expect(good).to_have_attribute("aria-current", "true")  # the series drawn
    expect(good.locator('[data-field="state"]')).to_have_text("ok")
    expect(good.locator('[data-field="fetched-by"]')).to_have_text(feeding)
    stored = api[GOOD]["last_stored"]
    expect(good.locator('[data-field="stored"]')).to_have_text(
        f"{stored['slots']} slots for {stored['days']}, {stored['stored']} new or changed"
    )
    tomorrow = good.locator('[data-field="tomorrow"]')
    expect(tomorrow).to_have_text("stored")
    expect(tomorrow).to_have_attribute("data-stored", "true")
    newest = datetime.fromisoformat(api[GOOD]["newest_slot_end"]).astimezone(get_zone("Europe/Oslo"))
    expect(good.locator('[data-field="newest"]')).to_have_text(
        f"{newest:%Y-%m-%d %H:%M:%S} {newest.tzname()}"
    )
    expect(good.locator('[data-field="next-try"]')).to_contain_text("(in ")
    expect(good.locator('[data-field="last-error"]')).to_have_count(0)
    expect(bad).to_have_attribute("data-state", "failing")
    expect(bad.locator('[data-field="state"]')).to_have_text("failing, 1 in a row")
    expect(bad.locator('[data-field="last-error"]')).to_contain_text("ENTSO-E refused the security token")
    expect(bad.locator('[data-field="tomorrow"]')).to_have_text("not stored yet")
    expect(bad.locator('[data-field="last-success"]')).to_have_text("never")
    expect(bad).to_contain_text("SE3 from entsoe")
    assert WRONG_TOKEN not in page.content()
    option = page.locator(f'#series option[value="{GOOD}"]')
    expect(option).to_contain_text("feed ok")
    shot(page, "prices-feeds", tmp_path)
    expect(bad.get_by_role("link")).to_have_count(0)  # nothing of its series stored to draw
    good.get_by_role("link", name=GOOD).click()
    expect(page).to_have_url(f"{hub.url}/prices?series={GOOD}")
    expect(page.locator(f'#price-feeds [data-feed="{GOOD}"]')).to_have_attribute("aria-current", "true")


def test_with_no_series_stored_the_page_still_shows_why_a_feed_fails(
    serve_api: Callable[..., ApiServer],
) -> None:
    empty = serve_api(api_rate_per_s=0)
    at = datetime.now(UTC).replace(microsecond=0)
    error = "ENTSO-E refused the security token (HTTP 401)"
    state = FeedState("spot", "import", "entsoe", "NO1", "Europe/Oslo", "hub-1", 2, 2, at, None, None,
                      error, at, None, at + timedelta(minutes=10), at)  # fmt: skip
    save_state(empty.store, state)
    browser = signed_in(empty.client(), "admin", "admin-password-1")
    page = browser.get("/prices")
    assert page.status_code == 200
    assert "No price series is stored yet" in page.text and "[[prices]]" in page.text
    assert 'data-feed="spot"' in page.text and 'data-state="failing"' in page.text
    assert "ENTSO-E refused the security token (HTTP 401)" in page.text
    assert "failing, 2 in a row" in page.text
