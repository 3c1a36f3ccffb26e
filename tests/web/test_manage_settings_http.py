"""The hub's default zone on the manage page, over loopback HTTP with a signed-in admin."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import httpx
import pytest

from meterhub.hubzone import default_zone
from meterhub.model import UserRole
from tests.api.conftest import USER_PASSWORD, ApiServer, no_unexpected_errors, password_hash, serve_api
from tests.web.helpers import signed_in
from tests.web.test_http_sessions import csrf_of

__all__ = ["no_unexpected_errors", "serve_api"]


@pytest.fixture
def hub(serve_api: Callable[..., ApiServer]) -> ApiServer:
    api = serve_api(api_rate_per_s=0)
    api.store.add_user("vera", UserRole.VIEWER, password_hash(USER_PASSWORD))
    return api


def _shown_zone(page: str) -> str:
    found = re.search(r"<strong data-default-tz>([^<]*)</strong>", page)
    assert found is not None, page[:800]
    return html.unescape(found.group(1))


def test_an_admin_sets_and_forgets_the_default_zone_and_a_bad_one_is_explained(hub: ApiServer) -> None:
    admin = signed_in(hub.client())
    saved = admin.post("/manage/settings", data={"csrf_token": csrf_of(admin), "default_tz": "Europe/Oslo"})
    assert saved.status_code == 303
    assert "The default zone is Europe/Oslo (the hub's default zone)." in httpx.URL(
        saved.headers["location"]
    ).params["done"]
    assert default_zone(hub.store).tz == "Europe/Oslo"
    assert _shown_zone(admin.get("/manage").text) == "Europe/Oslo"
    bad = admin.post("/manage/settings", data={"csrf_token": csrf_of(admin), "default_tz": "Mars/Base"})
    assert bad.status_code == 400 and "unknown time zone 'Mars/Base'" in html.unescape(bad.text)
    assert default_zone(hub.store).tz == "Europe/Oslo"
    forgot = admin.post("/manage/settings", data={"csrf_token": csrf_of(admin), "default_tz": ""})
    assert forgot.status_code == 303 and default_zone(hub.store).tz != "Europe/Oslo"


def test_a_viewer_cannot_change_it(hub: ApiServer) -> None:
    viewer = signed_in(hub.client(), "vera", USER_PASSWORD)
    answer = viewer.post("/manage/settings", data={"csrf_token": "x", "default_tz": "Europe/Oslo"})
    assert answer.status_code == 404
    assert default_zone(hub.store).source != "the hub's default zone"
