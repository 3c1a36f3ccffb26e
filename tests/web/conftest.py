"""A hub on loopback with a household's year of readings, two users, and a browser.

The HTTP tests serve an app of their own instead: each such module's ``hub`` is an ApiServer,
and ``admin`` is its admin's API client.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from meterhub.api import security
from meterhub.ingest import Ingestor
from meterhub.model import Meter, Reading, UserRole, utc_now
from meterhub.poller.hub import Hub, bind_socket
from meterhub.store import Store, open_store
from tests.api.conftest import ApiServer
from tests.waiting import DEADLINE_S, wait_until
from tests.web.browser import Guard, browser, guarded_context
from tests.web.household import household_readings

__all__ = ["browser"]

PASSWORDS = {"admin": "admin-pass-1234", "viewer": "viewer-pass-1234"}
HOUSE, GARAGE = "house", "garage"
SILENCE = (datetime(2026, 10, 24, 9, 0, tzinfo=UTC), datetime(2026, 10, 24, 12, 0, tzinfo=UTC))
"""Three hours in which the house's meter sent nothing."""
YEAR_START = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=1)
STEP = timedelta(minutes=5)


@dataclass
class RunningHub:
    """A hub serving its API and dashboard on loopback, over a seeded SQLite file."""

    url: str
    database_url: str
    store: Store

    def ingest_now(self, meter: str, power_w: float) -> datetime:
        """Store one reading for ``meter`` stamped now, through ingest as a poll would."""
        now = utc_now().replace(microsecond=0)
        latest = self.store.latest([meter])
        imported = (latest[0].energy_import_kwh or 0.0) + 0.01 if latest else 1.0
        reading = household_reading(meter, now, power_w, imported)
        report = Ingestor(self.store).ingest([reading])
        assert report.stored == 1, report
        return now


def household_reading(meter: str, ts: datetime, power_w: float, imported: float) -> Reading:
    """Return one whole-meter reading with the given power and import register."""
    return Reading(meter, ts, 0, 230.0, power_w / 230, power_w, None, None, 50.0, imported, 1000.0)


def _seed(store: Store) -> None:
    store.add_meter(Meter(HOUSE, "file", 3, "Europe/Oslo", 300, "Our house"))
    store.add_meter(Meter(GARAGE, "file", 1, "Europe/Oslo", 300, "Garage"))
    end = utc_now().replace(second=0, microsecond=0)
    readings = [
        r for r in household_readings(HOUSE, YEAR_START, end, STEP) if not SILENCE[0] <= r.ts < SILENCE[1]
    ]
    phases = household_readings(HOUSE, end - timedelta(hours=2), end, STEP, seed=3, phases=3)
    garage = household_readings(GARAGE, end - timedelta(days=2), end, STEP, seed=11)
    report = Ingestor(store).ingest([*readings, *(r for r in phases if r.phase > 0), *garage])
    assert report.rejected_count == 0, report.reasons()
    security.create_user(store, "admin", UserRole.ADMIN, PASSWORDS["admin"])
    security.create_user(store, "viewer", UserRole.VIEWER, PASSWORDS["viewer"])
    store.share("viewer", "meter", HOUSE)


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """Serve a seeded hub on 127.0.0.1 from a thread of its own."""
    folder: Path = tmp_path_factory.mktemp("dashboard")
    database_url = f"sqlite:///{folder / 'hub.db'}"
    store = open_store(database_url)
    _seed(store)
    running = Hub(database_url)
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    thread = threading.Thread(target=anyio.run, args=(running.run, sock), daemon=True)
    thread.start()
    wait_until(running.started.is_set, "the hub to start")
    try:
        yield RunningHub(f"http://127.0.0.1:{port}", database_url, store)
    finally:
        running.stop()
        thread.join(DEADLINE_S)
        sock.close()
        store.close()
        assert not thread.is_alive(), "the hub did not stop"


@pytest.fixture
def admin(hub: ApiServer) -> httpx.Client:
    """The admin's API client of an HTTP test module's own served ``hub``."""
    return hub.client(hub.admin_key)


@pytest.fixture
def guard() -> Iterator[Guard]:
    """Fail the test if a page asked for anything beyond 127.0.0.1 or raised a script error."""
    found = Guard()
    yield found
    assert found.foreign == [], f"requests left 127.0.0.1: {found.foreign}"
    assert found.page_errors == [], f"the page raised: {found.page_errors}"


@pytest.fixture
def context(browser: Browser, guard: Guard) -> Iterator[BrowserContext]:
    """A fresh desktop browser profile (no cookies) whose requests stay on loopback."""
    made = guarded_context(browser, guard, viewport={"width": 1280, "height": 900}, accept_downloads=True)
    made.on("page", guard.watch)
    try:
        yield made
    finally:
        made.close()


def sign_in(page: Page, hub: RunningHub, user: str, path: str = "/") -> Page:
    """Open ``path``, get sent to the sign-in form, sign in as ``user`` and come back."""
    page.goto(hub.url + path)
    expect(page).to_have_url(f"{hub.url}/login?next={path.replace('/', '%2F')}")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORDS[user])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(hub.url + path)
    return page


@pytest.fixture
def browser_phone(browser: Browser, guard: Guard) -> Iterator[Page]:
    """A page on a 390 x 844 touch screen, as a phone shows it."""
    made = guarded_context(
        browser,
        guard,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    made.on("page", guard.watch)
    try:
        yield made.new_page()
    finally:
        made.close()
