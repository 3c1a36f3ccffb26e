"""Managing places from the dashboard over loopback HTTP: forms, CSRF, messages equal to the API's.

Each test serves the app on a fresh SQLite file with an admin, a member, a viewer and three
meters, and drives its forms with httpx clients that keep cookies as a browser does. What the
forms did is read back through the API and the store.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import httpx
import pytest

from meterhub.model import Meter, UserRole
from tests.api.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    USER_PASSWORD,
    ApiServer,
    no_unexpected_errors,
    serve_api,
)
from tests.web.helpers import signed_in as sign_in_through_the_form

__all__ = ["Site", "field_error", "form_post", "no_unexpected_errors", "serve_api", "signed_in", "site"]

OSLO = "Europe/Oslo"


class Site:
    """A hub on loopback with three meters, a member and a viewer, and the admin's API client."""

    def __init__(self, api: ApiServer) -> None:
        self.api = api
        self.store = api.store
        for meter_id in ("m-grid", "m-pv", "m-heat"):
            self.store.add_meter(Meter(meter_id, "file", 1, OSLO, 60, meter_id.upper()))
        self.member = api.user("mona", UserRole.MEMBER, [("meter", "m-grid")])
        self.viewer = api.user("vera", UserRole.VIEWER, [("meter", "m-grid")])
        self.admin = api.client(api.admin_key)


@pytest.fixture
def site(serve_api: Callable[..., ApiServer]) -> Site:
    return Site(serve_api(api_rate_per_s=0))


def signed_in(site: Site, user: str = ADMIN, password: str = ADMIN_PASSWORD) -> httpx.Client:
    """Return a client of the site signed in through the sign-in form, as a browser would be."""
    return sign_in_through_the_form(site.api.client(), user, password)


def csrf_of(client: httpx.Client, path: str = "/") -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]*)">', client.get(path).text)
    assert found is not None and found.group(1)
    return found.group(1)


def form_post(client: httpx.Client, path: str, data: dict[str, str], *, token: bool = True) -> httpx.Response:
    """Post a form as its page would (with the session's CSRF token unless told not to)."""
    fields = {**data, "csrf_token": csrf_of(client)} if token else dict(data)
    return client.post(path, data=fields, follow_redirects=False)


def field_error(page: str, name: str) -> str | None:
    """Return the message shown next to a field, or None."""
    found = re.search(rf'<p class="field-error" id="{re.escape(name)}-error" role="alert">([^<]*)</p>', page)
    return html.unescape(found.group(1)) if found else None


def field_value(page: str, name: str) -> str | None:
    found = re.search(
        rf'<input id="f-{re.escape(name)}" name="{re.escape(name)}" type="text" value="([^"]*)"', page
    )
    return html.unescape(found.group(1)) if found else None


def notice(answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text[:2000]
    return answer.headers["location"]


# --- CSRF and messages --------------------------------------------------------------------
def test_a_form_without_its_csrf_token_changes_nothing(site: Site) -> None:
    client = signed_in(site)
    answer = form_post(client, "/manage/places", {"id": "home", "tz": OSLO}, token=False)
    assert answer.status_code == 400
    assert "The form expired" in answer.text
    assert field_value(answer.text, "id") == "home"
    assert site.admin.get("/api/v1/places/home").status_code == 404


def test_a_bad_zone_is_shown_by_its_field_with_the_apis_message(site: Site) -> None:
    client = signed_in(site)
    answer = form_post(client, "/manage/places", {"id": "home", "name": "Home", "tz": "Mars/Base"})
    api = site.admin.post("/api/v1/places", json={"id": "home", "name": "Home", "tz": "Mars/Base"})
    assert answer.status_code == 400 and api.status_code == 422
    assert field_error(answer.text, "tz") == api.json()["detail"]
    assert "unknown time zone 'Mars/Base'" in api.json()["detail"]
    assert field_value(answer.text, "tz") == "Mars/Base" and field_value(answer.text, "name") == "Home"
    assert site.admin.get("/api/v1/places/home").status_code == 404


def test_a_taken_id_is_shown_by_the_id_field(site: Site) -> None:
    client = signed_in(site)
    assert notice(form_post(client, "/manage/places", {"id": "home", "tz": OSLO})) == (
        "/manage/places/home?done=Place%20home%20added."
    )
    again = form_post(client, "/manage/places", {"id": "home", "tz": "UTC"})
    assert again.status_code == 400
    assert "exists" in (field_error(again.text, "id") or "")


@pytest.mark.parametrize(
    ("typed", "setting"),
    [
        ({"currency": "EUR", "import_per_kwh": "-0.2"}, "import_per_kwh"),
        ({"currency": "EUR", "fee_per_month": "-5"}, "fee_per_month"),
        ({"currency": "EUR", "peak_per_kwh": "0.4"}, "offpeak_per_kwh"),
        ({"import_per_kwh": "0.3"}, "currency"),
        (
            {
                "currency": "EUR",
                "peak_per_kwh": "1",
                "offpeak_per_kwh": "0.5",
                "peak_start_hour": "9",
                "peak_end_hour": "8",
            },
            "peak_start_hour",
        ),
        ({"currency": "EUR", "capacity_thresholds_kwh": "10,5"}, "capacity_thresholds_kwh"),
    ],
)
def test_a_wrong_tariff_setting_is_shown_by_its_field_with_the_apis_message(
    site: Site, typed: dict[str, str], setting: str
) -> None:
    site.admin.post(
        "/api/v1/places", json={"id": "home", "tz": OSLO, "tariff": {"currency": "NOK", "import_per_kwh": 1}}
    )
    client = signed_in(site)
    answer = form_post(client, "/manage/places/home/tariff", typed)
    body = {
        k: [float(v) for v in t.split(",")]
        if k == "capacity_thresholds_kwh"
        else (t if k == "currency" else float(t))
        for k, t in typed.items()
    }
    api = site.admin.put("/api/v1/places/home/tariff", json=body)
    assert answer.status_code == 400 and api.status_code == 422, api.text
    assert field_error(answer.text, setting) == api.json()["detail"]
    for name, text in typed.items():
        assert field_value(answer.text, name) == text
    assert site.store.get_place("home").tariff == {"currency": "NOK", "import_per_kwh": 1.0}


def test_a_negative_price_is_refused_and_says_so(site: Site) -> None:
    site.admin.post("/api/v1/places", json={"id": "home", "tz": OSLO})
    answer = form_post(
        signed_in(site), "/manage/places/home/tariff", {"currency": "EUR", "export_per_kwh": "-1"}
    )
    assert field_error(answer.text, "export_per_kwh") == (
        "the flat export price (export_per_kwh) cannot be negative, got -1"
    )


# --- the whole round ----------------------------------------------------------------------
def test_add_edit_attach_price_detach_and_remove_a_place(site: Site) -> None:
    client = signed_in(site)
    notice(form_post(client, "/manage/places", {"id": "home", "name": "Home", "tz": OSLO}))
    notice(form_post(client, "/manage/places/home", {"name": "Our home", "tz": "Europe/Berlin"}))
    for meter, role in (("m-grid", "grid"), ("m-pv", "solar"), ("m-heat", "special")):
        notice(form_post(client, "/manage/places/home/meters", {"meter": meter, "role": role}))
    tou = {
        "currency": "eur",
        "peak_per_kwh": "0.42",
        "offpeak_per_kwh": "0.21",
        "peak_start_hour": "6",
        "peak_end_hour": "22",
        "peak_weekdays_only": "all",
        "export_per_kwh": "0.05",
        "fee_per_month": "9.5",
        "capacity_thresholds_kwh": "2, 5,10",
        "capacity_peak_days": "3",
    }
    assert "Tariff%20of%20home%20saved" in notice(form_post(client, "/manage/places/home/tariff", tou))
    shown = site.admin.get("/api/v1/places/home").json()
    assert shown["name"] == "Our home" and shown["tz"] == "Europe/Berlin"
    assert shown["meters"] == [
        {"meter": "m-grid", "role": "grid"},
        {"meter": "m-heat", "role": "special"},
        {"meter": "m-pv", "role": "solar"},
    ]
    tariff = site.admin.get("/api/v1/places/home/tariff").json()
    assert {k: tariff[k] for k in ("currency", "peak_per_kwh", "offpeak_per_kwh", "peak_start_hour")} == {
        "currency": "EUR",
        "peak_per_kwh": 0.42,
        "offpeak_per_kwh": 0.21,
        "peak_start_hour": 6,
    }
    assert tariff["peak_end_hour"] == 22 and tariff["peak_weekdays_only"] is False
    assert tariff["capacity_thresholds_kwh"] == [2.0, 5.0, 10.0] and tariff["capacity_peak_days"] == 3
    page = client.get("/manage/places/home").text
    assert (
        field_value(page, "peak_per_kwh") == "0.42"
        and field_value(page, "capacity_thresholds_kwh") == "2,5,10"
    )

    notice(form_post(client, "/manage/places/home/meters/m-heat/detach", {}))
    assert [m["meter"] for m in site.admin.get("/api/v1/places/home").json()["meters"]] == ["m-grid", "m-pv"]
    again = form_post(client, "/manage/places/home/meters/m-heat/detach", {})
    assert again.status_code == 400 and "not in place" in again.text

    confirm = client.get("/manage/places/home/remove")
    assert confirm.status_code == 200 and "Remove place home" in confirm.text
    assert site.admin.get("/api/v1/places/home").status_code == 200
    assert "removed" in notice(form_post(client, "/manage/places/home/remove", {}))
    assert site.admin.get("/api/v1/places/home").status_code == 404
    assert site.admin.get("/api/v1/meters/m-heat").status_code == 200


def test_an_unknown_meter_or_place(site: Site) -> None:
    client = signed_in(site)
    notice(form_post(client, "/manage/places", {"id": "home", "tz": OSLO}))
    answer = form_post(client, "/manage/places/home/meters", {"meter": "nope", "role": "grid"})
    assert answer.status_code == 400 and "nope" in (field_error(answer.text, "meter") or "")
    assert client.get("/manage/places/elsewhere").status_code == 404
    assert form_post(client, "/manage/places/elsewhere/tariff", {"currency": "EUR"}).status_code == 404


# --- who may ------------------------------------------------------------------------------
MANAGE_GETS = (
    "/manage",
    "/manage/places",
    "/manage/places/home",
    "/manage/places/home/remove",
    "/manage/users",
    "/manage/users/admin",
    "/manage/users/admin/remove",
    "/manage/keys",
)
MANAGE_POSTS = (
    "/manage/places",
    "/manage/places/home",
    "/manage/places/home/meters",
    "/manage/places/home/meters/m-grid/detach",
    "/manage/places/home/tariff",
    "/manage/places/home/remove",
    "/manage/users",
    "/manage/users/admin/role",
    "/manage/users/admin/password",
    "/manage/users/admin/shares",
    "/manage/users/vera/shares/meter/m-grid/unshare",
    "/manage/users/admin/remove",
    "/manage/keys",
    "/manage/keys/000000000000/revoke",
)


@pytest.mark.parametrize("user", ["mona", "vera"])
def test_members_and_viewers_get_404_on_every_manage_url_and_see_no_manage_link(
    site: Site, user: str
) -> None:
    site.admin.post(
        "/api/v1/places", json={"id": "home", "tz": OSLO, "meters": [{"meter": "m-grid", "role": "grid"}]}
    )
    client = signed_in(site, user, USER_PASSWORD)
    overview = client.get("/")
    assert overview.status_code == 200 and user in overview.text
    assert 'href="/manage"' not in overview.text
    for path in MANAGE_GETS:
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert 'href="/manage' not in answer.text, path
    token = csrf_of(client)
    data = {
        "csrf_token": token,
        "id": "x",
        "tz": "UTC",
        "role": "admin",
        "name": "x",
        "user": user,
        "password": "new-password-1",
        "password2": "new-password-1",
        "kind": "place",
        "object": "home",
        "meter": "m-grid",
        "currency": "EUR",
    }
    for path in MANAGE_POSTS:
        assert client.post(path, data=data, follow_redirects=False).status_code == 404, path
    place = site.store.get_place("home")
    assert place.meters and place.tariff == {} and site.store.get_user(user).role.value != "admin"
    assert [u.name for u in site.store.list_users()] == ["admin", "mona", "vera"]


def test_signed_out_is_sent_to_sign_in(site: Site) -> None:
    answer = site.api.client().get("/manage/places", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")
