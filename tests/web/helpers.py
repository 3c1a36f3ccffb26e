"""Pieces the dashboard tests share: signing in over HTTP, a served app with readings, and browser steps."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from meterhub.ingest import Ingestor
from meterhub.model import Meter, Reading
from meterhub.store import Store
from tests.api.conftest import ADMIN, ADMIN_PASSWORD, ApiServer
from tests.web.conftest import RunningHub, sign_in

__all__ = [
    "SHOTS",
    "add_user_and_share",
    "admin_on",
    "api_json",
    "form_token",
    "loaded",
    "notice",
    "post_sign_in",
    "save_tariff",
    "served",
    "shot",
    "signed_in",
    "store_readings",
]

SHOTS = Path(os.environ["METERHUB_SCREENSHOTS"]) if os.environ.get("METERHUB_SCREENSHOTS") else None
"""Where `make screenshots` keeps the pictures the README shows; tests elsewhere use tmp_path."""


# --- over HTTP ------------------------------------------------------------------------------
def form_token(html: str) -> str:
    """Return the CSRF token of the form in ``html``."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, html[:500]
    return found.group(1)


def post_sign_in(
    client: httpx.Client, user: str = ADMIN, password: str = ADMIN_PASSWORD, next_: str = "/"
) -> httpx.Response:
    """Fetch the sign-in form with ``client`` and post it filled in; return the answer."""
    form = client.get("/login", params={"next": next_})
    assert form.status_code == 200, form.text
    fields = {"username": user, "password": password, "csrf_token": form_token(form.text), "next": next_}
    return client.post("/login", data=fields, follow_redirects=False)


def signed_in(client: httpx.Client, user: str = ADMIN, password: str = ADMIN_PASSWORD) -> httpx.Client:
    """Sign ``client`` in through the form, as a browser would be, and return it."""
    answer = post_sign_in(client, user, password)
    assert answer.status_code == 303, answer.text
    return client


def store_readings(store: Store, meters: Iterable[Meter], readings: Iterable[Reading]) -> None:
    """Add ``meters`` and store every one of ``readings`` through the Ingestor."""
    for meter in meters:
        store.add_meter(meter)
    rows = list(readings)
    report = Ingestor(store, feed=None).ingest(rows)
    assert report.stored == len(rows), report.reasons()


def served(
    serve_api: Callable[..., ApiServer], meters: Iterable[Meter] = (), readings: Iterable[Reading] = ()
) -> ApiServer:
    """Serve the app on a fresh database, unthrottled, holding ``meters`` and their ``readings``."""
    api = serve_api(api_rate_per_s=0)
    store_readings(api.store, meters, readings)
    return api


# --- in a browser ---------------------------------------------------------------------------
def shot(page: Page, name: str, tmp_path: Path) -> Path:
    """Save a full-page screenshot (for the docs when asked) and check it holds a picture."""
    folder = SHOTS or tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, f"{path} is too small to show a page"
    return path


def loaded(page: Page, element: str) -> None:
    """Wait until the page's ``#element`` has drawn the data it asked for."""
    expect(page.locator(f"#{element}")).to_have_attribute("data-loading", "false")


def admin_on(context: BrowserContext, hub: RunningHub, path: str, query: str, element: str) -> Page:
    """Sign in as the admin on ``path``, open ``path?query`` and wait until ``#element`` has drawn it."""
    page = sign_in(context.new_page(), hub, "admin", path)
    page.goto(f"{hub.url}{path}?{query}")
    loaded(page, element)
    return page


def api_json(page: Page, url: str) -> dict[str, Any]:
    """Return the JSON ``url`` answers with 200, read with the page's own session."""
    answer = page.request.get(url)
    assert answer.status == 200, answer.text()
    body: dict[str, Any] = answer.json()
    return body


def notice(page: Page, words: str) -> None:
    """Wait for the notice a change that worked leaves."""
    expect(page.locator(".notice")).to_contain_text(words)


def save_tariff(page: Page, place: str, fields: dict[str, str]) -> None:
    """Fill the Tariff form of ``place``'s manage page by exact label (a list by its option), save it,
    and wait for the notice that it was saved."""
    tariff = page.get_by_role("form", name="Tariff")
    for label, value in fields.items():
        field = tariff.get_by_label(label, exact=True)
        if field.evaluate("(element) => element.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    tariff.get_by_role("button", name="Save tariff").click()
    notice(page, f"Tariff of {place} saved.")


def add_user_and_share(page: Page, url: str, user: str, password: str, share: str) -> None:
    """Add ``user`` as a viewer on the manage form of the hub at ``url`` and share ``share`` with them."""
    page.goto(url + "/manage/users")
    add = page.get_by_role("form", name="Add a user")
    add.get_by_label("User name").fill(user)
    add.get_by_label("Role").select_option("viewer")
    add.get_by_label("Password", exact=True).fill(password)
    add.get_by_label("Password again").fill(password)
    add.get_by_role("button", name="Add user").click()
    notice(page, f"User {user} added as viewer.")
    form = page.get_by_role("form", name="Share")
    form.get_by_label("Share").select_option(share)
    form.get_by_role("button", name="Share").click()
    notice(page, f"Shared with {user}.")
