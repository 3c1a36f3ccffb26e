"""A real browser for dashboard tests: Debian's chromium driven by Playwright, loopback only.

Every page request is checked: one addressed anywhere but 127.0.0.1 is blocked and recorded,
and the test fails. Under CI=true a missing browser fails the run; elsewhere the tests skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route, sync_playwright

__all__ = ["CHROMIUM", "Guard", "chromium_path", "guarded_context"]

CHROMIUM = os.environ.get("METERHUB_CHROMIUM", "/usr/bin/chromium")
LOCAL_HOSTS = frozenset({"127.0.0.1"})
_MISSING = (
    "the dashboard's browser tests need Debian's chromium at {path}: run 'apt-get install chromium' "
    "(make test does it when it may), or point METERHUB_CHROMIUM at a Chromium"
)


def chromium_path() -> str:
    """Return the browser's path, or fail (CI=true) or skip when it is missing."""
    found = CHROMIUM if os.path.isfile(CHROMIUM) else shutil.which("chromium")
    if found is None:
        message = _MISSING.format(path=CHROMIUM)
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


@dataclass
class Guard:
    """Requests that tried to leave the machine, and errors the pages raised."""

    foreign: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        """Let loopback requests through; block and record any other."""
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or parts.hostname in LOCAL_HOSTS:
            route.continue_()
            return
        self.foreign.append(url)
        route.abort()

    def watch(self, page: Page) -> Page:
        """Record uncaught script errors of a page."""
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        return page


def launch(playwright: Playwright) -> Browser:
    """Start headless chromium with no network beyond what the pages ask of loopback."""
    return playwright.chromium.launch(
        executable_path=chromium_path(),
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync",
              "--no-first-run", "--disable-component-update", "--disable-default-apps"],
    )  # fmt: skip


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One chromium for the session."""
    chromium_path()
    with sync_playwright() as playwright:
        started = launch(playwright)
        try:
            yield started
        finally:
            started.close()


def guarded_context(browser: Browser, guard: Guard, **options: object) -> BrowserContext:
    """Return a new browser context whose every request passes ``guard``."""
    context = browser.new_context(**options)  # type: ignore[arg-type]
    context.set_default_timeout(60_000)
    context.route("**/*", guard.route)
    return context
