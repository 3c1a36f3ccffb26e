"""Managing meters and backfills through the dashboard's forms, over loopback HTTP.

The app is served on loopback over a fresh SQLite file (the household of tests/api/seeding.py,
an admin and a viewer); httpx clients sign in through the form and keep cookies as a browser
does. Without the hub's poller the backfill page says that backfills need ``meterhub serve``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import httpx
import pytest

from meterhub.model import UserRole
from tests.api.conftest import USER_PASSWORD, ApiServer, no_unexpected_errors, password_hash, serve_api
from tests.web.helpers import signed_in
from tests.web.test_http_sessions import csrf_of

__all__ = ["no_unexpected_errors", "serve_api"]

VIEWER = "vera"
MEMBER = "mona"


@pytest.fixture
def hub(serve_api: Callable[..., ApiServer]) -> ApiServer:
    from tests.api.seeding import seed_household

    api = serve_api(api_rate_per_s=0)
    seed_household(api.store)
    api.store.add_user(VIEWER, UserRole.VIEWER, password_hash(USER_PASSWORD))
    api.store.add_user(MEMBER, UserRole.MEMBER, password_hash(USER_PASSWORD))
    api.store.share(VIEWER, "meter", "grid")
    return api


@pytest.fixture
def admin(hub: ApiServer) -> httpx.Client:
    return signed_in(hub.client())


def error_for(page: str, field: str) -> str:
    """Return the message shown next to ``field``, or '' when there is none."""
    found = re.search(rf'data-error-for="{re.escape(field)}">([^<]*)<', page)
    return html.unescape(found.group(1)) if found else ""


def value_of(page: str, field: str) -> str:
    found = re.search(rf'name="{re.escape(field)}" type="[a-z]+" value="([^"]*)"', page)
    assert found is not None, f"no field {field}"
    return html.unescape(found.group(1))


def notice(answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text[:500]
    return str(httpx.URL(answer.headers["location"]).params.get("done", ""))


def post(client: httpx.Client, path: str, fields: dict[str, str], csrf: str | None) -> httpx.Response:
    data = dict(fields) if csrf is None else {**fields, "csrf_token": csrf}
    return client.post(path, data=data, follow_redirects=False)


# --- who may --------------------------------------------------------------------------------
MANAGE_GETS = [
    "/manage/meters",
    "/manage/meters/new",
    "/manage/meters/new?vendor=umeter",
    "/manage/meters/grid/edit",
    "/manage/meters/grid/remove",
    "/manage/backfill",
]
MANAGE_POSTS = [
    "/manage/meters/new",
    "/manage/meters/discover",
    "/manage/meters/discover/add",
    "/manage/meters/grid/edit",
    "/manage/meters/grid/remove",
    "/manage/backfill",
]


@pytest.mark.parametrize("user", [VIEWER, MEMBER])
def test_anyone_but_an_admin_gets_the_404_page_on_every_manage_url(hub: ApiServer, user: str) -> None:
    client = signed_in(hub.client(), user, USER_PASSWORD)
    csrf = csrf_of(client)
    assert 'href="/manage"' not in client.get("/").text
    for path in MANAGE_GETS:
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "There is no such page." in answer.text and "/manage/meters/new" not in answer.text
    fields = {"vendor": "file", "id": "sneaky", "confirm": "yes", "meter": "grid", "since": "now-1d"}
    for path in MANAGE_POSTS:
        assert post(client, path, fields, csrf).status_code == 404, path
    events = client.get("/api/v1/dashboard/backfills/events")
    assert events.status_code == 403
    assert sorted(m.id for m in hub.store.list_meters()) == ["grid", "secret", "solar"]


def test_a_browser_not_signed_in_is_sent_to_sign_in(hub: ApiServer) -> None:
    answer = hub.client().get("/manage/meters", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")


# --- the list and adding --------------------------------------------------------------------
def test_the_list_shows_each_meter_with_vendor_zone_interval_and_its_actions(admin: httpx.Client) -> None:
    page = admin.get("/manage/meters")
    assert page.status_code == 200
    assert 'data-meter="grid"' in page.text and "Europe/Oslo" in page.text
    assert 'href="/manage/meters/grid/edit"' in page.text and 'href="/manage/meters/grid/remove"' in page.text
    assert 'href="/manage/meters/new"' in page.text


def test_a_form_without_its_csrf_token_changes_nothing(hub: ApiServer, admin: httpx.Client) -> None:
    fields = {"vendor": "file", "id": "shed", "tz": "Europe/Oslo", "phases": "1"}
    for token in (None, "a-token-of-another-session"):
        answer = post(admin, "/manage/meters/new", fields, token)
        assert answer.status_code == 400
        assert "The form expired" in answer.text
        assert value_of(answer.text, "id") == "shed"
    assert "shed" not in {m.id for m in hub.store.list_meters()}


def test_a_bad_zone_is_shown_by_the_zone_field_as_the_api_says_it(
    hub: ApiServer, admin: httpx.Client
) -> None:
    fields = {"vendor": "file", "id": "shed", "tz": "Mars/Olympus", "phases": "1", "name": "The shed"}
    answer = post(admin, "/manage/meters/new", fields, csrf_of(admin))
    assert answer.status_code == 400
    api = hub.client(hub.admin_key).post(
        "/api/v1/meters", json={"id": "shed", "vendor": "file", "tz": "Mars/Olympus"}
    )
    assert api.status_code == 422
    assert error_for(answer.text, "tz") == api.json()["detail"]
    assert value_of(answer.text, "tz") == "Mars/Olympus" and value_of(answer.text, "name") == "The shed"
    assert error_for(answer.text, "id") == ""


def test_a_taken_id_and_a_secret_in_the_clear_are_refused_by_their_fields(admin: httpx.Client) -> None:
    csrf = csrf_of(admin)
    taken = post(admin, "/manage/meters/new", {"vendor": "file", "id": "grid", "tz": "UTC"}, csrf)
    assert taken.status_code == 400 and "grid" in error_for(taken.text, "id")
    clear = post(
        admin,
        "/manage/meters/new",
        {"vendor": "umeter", "id": "u1", "tz": "UTC", "env_password": "hunter 2"},
        csrf,
    )
    assert clear.status_code == 400
    assert "NAME of an environment variable" in error_for(clear.text, "env_password")
    extra = post(
        admin, "/manage/meters/new", {"vendor": "umeter", "id": "u1", "extra": "password=hunter2"}, csrf
    )
    assert "must be a reference like env:" in error_for(extra.text, "env_password")
    assert "hunter2" not in error_for(extra.text, "env_password")


def test_adding_directly_keeps_only_a_reference_to_the_secret(hub: ApiServer, admin: httpx.Client) -> None:
    fields = {
        "vendor": "umeter",
        "id": "flat",
        "name": "Flat",
        "tz": "Europe/Oslo",
        "phases": "1",
        "opt_username": "ola",
        "env_password": "FLAT_PASSWORD",
        "opt_ean": "871600",
    }
    answer = post(admin, "/manage/meters/new", fields, csrf_of(admin))
    assert notice(answer) == "Added meter flat (umeter, every 900 s)."
    meter = hub.store.get_meter("flat")
    assert dict(meter.options) == {"username": "ola", "password": "env:FLAT_PASSWORD", "ean": "871600"}
    assert "Added meter flat" in admin.get(answer.headers["location"]).text


# --- editing and removing -------------------------------------------------------------------
def test_editing_shows_secrets_as_their_variable_and_validates_as_the_patch(
    hub: ApiServer, admin: httpx.Client
) -> None:
    fields = {"vendor": "umeter", "id": "flat", "tz": "UTC", "opt_ean": "8716", "env_username": "U"}
    fields["env_password"] = "P_OLD"
    notice(post(admin, "/manage/meters/new", fields, csrf_of(admin)))
    form = admin.get("/manage/meters/flat/edit")
    assert form.status_code == 200
    assert value_of(form.text, "env_password") == "P_OLD" and "env:P_OLD" not in form.text
    csrf = csrf_of(admin)
    change = {"name": "Flat", "tz": "Nowhere/Land", "phases": "1", "interval_s": "900"}
    change |= {"opt_ean": "8716", "env_username": "U", "env_password": "P_NEW"}
    refused = post(admin, "/manage/meters/flat/edit", change, csrf)
    api = hub.client(hub.admin_key).patch("/api/v1/meters/flat", json={"tz": "Nowhere/Land"})
    assert refused.status_code == 400 and error_for(refused.text, "tz") == api.json()["detail"]
    assert value_of(refused.text, "env_password") == "P_NEW"
    saved = post(admin, "/manage/meters/flat/edit", change | {"tz": "Europe/Oslo"}, csrf)
    assert notice(saved) == "Saved meter flat."
    meter = hub.store.get_meter("flat")
    assert (meter.name, meter.tz) == ("Flat", "Europe/Oslo")
    assert dict(meter.options) == {"ean": "8716", "username": "env:U", "password": "env:P_NEW"}
    assert admin.get("/manage/meters/nope/edit").status_code == 404


def test_removing_asks_first_and_says_the_data_goes(hub: ApiServer, admin: httpx.Client) -> None:
    confirm = admin.get("/manage/meters/solar/remove")
    assert confirm.status_code == 200 and "all its data" in confirm.text
    csrf = csrf_of(admin)
    unconfirmed = post(admin, "/manage/meters/solar/remove", {}, csrf)
    assert unconfirmed.status_code == 400 and error_for(unconfirmed.text, "confirm")
    assert "solar" in {m.id for m in hub.store.list_meters()}
    removed = post(admin, "/manage/meters/solar/remove", {"confirm": "yes"}, csrf)
    assert notice(removed).startswith("Removed meter solar and its ")
    assert "solar" not in {m.id for m in hub.store.list_meters()}


# --- discovery against a simulator ------------------------------------------------------------
def test_discovery_lists_what_the_account_holds_and_adds_what_is_picked(
    hub: ApiServer, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.simservers import simulator

    with simulator("umeter") as sim:
        info = sim.info()
        monkeypatch.setenv("T_UMETER_USER", info["credentials"]["username"])
        monkeypatch.setenv("T_UMETER_PASSWORD", info["credentials"]["password"])
        fields = {
            "vendor": "umeter",
            "opt_base_url": sim.base_url,
            "env_username": "T_UMETER_USER",
            "env_password": "T_UMETER_PASSWORD",
            "tz": "UTC",
        }
        csrf = csrf_of(admin)
        found = post(admin, "/manage/meters/discover", fields, csrf)
        assert found.status_code == 200, found.text[:500]
        ids = re.findall(r'name="pick" value="([^"]+)"', found.text)
        assert ids == [f"umeter-{ean}" for ean in info["eans"]]
        assert info["credentials"]["password"] not in found.text
        added = post(admin, "/manage/meters/discover/add", {**fields, "pick": ids[0]}, csrf)
        assert notice(added).startswith(f"Added 1 meter(s): {ids[0]}")
    meter = hub.store.get_meter(ids[0])
    assert meter.options["password"] == "env:T_UMETER_PASSWORD" and meter.options["base_url"] == sim.base_url


def test_a_vendor_that_refuses_the_credentials_is_said_on_the_form(
    admin: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.simservers import simulator

    with simulator("umeter") as sim:
        monkeypatch.setenv("T_UMETER_USER", sim.info()["credentials"]["username"])
        monkeypatch.setenv("T_UMETER_PASSWORD", "not-the-password")
        fields = {"vendor": "umeter", "opt_base_url": sim.base_url, "env_username": "T_UMETER_USER"}
        fields |= {"env_password": "T_UMETER_PASSWORD", "tz": "UTC"}
        answer = post(admin, "/manage/meters/discover", fields, csrf_of(admin))
    assert answer.status_code == 400
    assert re.search(r'data-error-for="form">[^<]+<', answer.text)
    assert "not-the-password" not in answer.text
    assert value_of(answer.text, "env_password") == "T_UMETER_PASSWORD"


# --- backfills --------------------------------------------------------------------------------
def test_without_the_hub_the_backfill_page_says_to_run_serve(admin: httpx.Client) -> None:
    page = admin.get("/manage/backfill")
    assert page.status_code == 200 and "meterhub serve" in page.text
    csrf = csrf_of(admin)
    bad = post(admin, "/manage/backfill", {"meter": "grid", "since": "yesterday-ish"}, csrf)
    assert bad.status_code == 400 and "cannot read time" in error_for(bad.text, "since")
    assert value_of(bad.text, "since") == "yesterday-ish"
    empty = post(admin, "/manage/backfill", {"meter": "grid", "since": "now+1d"}, csrf)
    assert empty.status_code == 400 and "must be before the end" in error_for(empty.text, "since")
    unknown = post(admin, "/manage/backfill", {"meter": "ghost", "since": "now-1d"}, csrf)
    assert "unknown meter 'ghost'" in error_for(unknown.text, "meter")
    good = post(admin, "/manage/backfill", {"meter": "grid", "since": "now-1d"}, csrf)
    assert good.status_code == 400 and "meterhub serve" in good.text
    assert admin.get("/api/v1/dashboard/backfills/events").status_code == 409
