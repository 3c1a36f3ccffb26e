"""Managing users, shares and API keys from the dashboard over loopback HTTP.

The hub of tests/web/test_manage_places_http.py: an admin, member mona and viewer vera (who sees
m-grid), three meters. What the forms did is checked through the API, with the users' own keys
and sessions, so a change must reach cached principals at once.
"""

from __future__ import annotations

import re

import httpx

from tests.api.conftest import ADMIN_PASSWORD, USER_PASSWORD
from tests.web.test_manage_places_http import (
    Site,
    field_error,
    form_post,
    no_unexpected_errors,
    serve_api,
    signed_in,
    site,
)

__all__ = ["no_unexpected_errors", "serve_api", "site"]


def _redirected(answer: httpx.Response, expected: str) -> None:
    """Check a form's answer is the redirect after a change that worked."""
    assert answer.status_code == 303, answer.text[:2000]
    assert answer.headers["location"].startswith(expected), answer.headers["location"]


def test_add_a_user_with_a_password_typed_twice(site: Site) -> None:
    client = signed_in(site)
    typo = form_post(
        client,
        "/manage/users",
        {"name": "nina", "role": "member", "password": "pass-word-1", "password2": "pass-word-2"},
    )
    assert typo.status_code == 400
    assert field_error(typo.text, "password2") == "the two passwords differ; type the same one twice"
    assert 'value="nina"' in typo.text and "pass-word-1" not in typo.text
    short = form_post(
        client, "/manage/users", {"name": "nina", "role": "member", "password": "short", "password2": "short"}
    )
    assert field_error(short.text, "password") == "a password needs at least 8 characters"
    taken = form_post(
        client,
        "/manage/users",
        {"name": "vera", "role": "viewer", "password": "pass-word-1", "password2": "pass-word-1"},
    )
    api = site.admin.post("/api/v1/users", json={"name": "vera", "role": "viewer", "password": "pass-word-1"})
    assert taken.status_code == 400 and field_error(taken.text, "name") == api.json()["detail"]
    made = form_post(
        client,
        "/manage/users",
        {"name": "nina", "role": "member", "password": "pass-word-1", "password2": "pass-word-1"},
    )
    _redirected(made, "/manage/users/nina?done=")
    assert site.admin.get("/api/v1/users/nina").json()["role"] == "member"
    signed_in(site, "nina", "pass-word-1")
    listing = client.get("/manage/users").text
    assert re.search(r'<tr data-user="nina">.*?data-role="member"', listing, re.S)


def test_the_last_admin_cannot_be_demoted_or_removed(site: Site) -> None:
    client = signed_in(site)
    demoted = form_post(client, "/manage/users/admin/role", {"role": "viewer"})
    api = site.admin.patch("/api/v1/users/admin", json={"role": "viewer"})
    assert demoted.status_code == 400 and api.status_code == 409
    assert (
        field_error(demoted.text, "role")
        == api.json()["detail"]
        == "admin is the last admin; make another admin first"
    )
    removed = form_post(client, "/manage/users/admin/remove", {})
    assert removed.status_code == 400 and field_error(removed.text, "remove") == api.json()["detail"]
    assert site.store.get_user("admin").role.value == "admin"


def test_a_role_change_reaches_the_users_key_and_session_at_once(site: Site) -> None:
    vera = signed_in(site, "vera", USER_PASSWORD)
    assert vera.get("/manage").status_code == 404
    assert site.viewer.get("/api/v1/users").status_code == 403
    client = signed_in(site)
    _redirected(form_post(client, "/manage/users/vera/role", {"role": "admin"}), "/manage/users/vera?done=")
    assert site.viewer.get("/api/v1/users").status_code == 200
    assert vera.get("/manage").status_code == 200
    _redirected(
        (form_post(client, "/manage/users/vera/role", {"role": "viewer"})), "/manage/users/vera?done="
    )
    assert site.viewer.get("/api/v1/users").status_code == 403
    assert vera.get("/manage").status_code == 404


def test_reset_a_password_ends_the_users_sessions(site: Site) -> None:
    vera = signed_in(site, "vera", USER_PASSWORD)
    client = signed_in(site)
    differ = form_post(
        client, "/manage/users/vera/password", {"password": "new-pass-1", "password2": "new-pass-2"}
    )
    assert differ.status_code == 400 and field_error(differ.text, "password2")
    _redirected(
        (
            form_post(
                client, "/manage/users/vera/password", {"password": "new-pass-1", "password2": "new-pass-1"}
            )
        ),
        "/manage/users/vera?done=",
    )
    assert vera.get("/", follow_redirects=False).status_code == 303
    signed_in(site, "vera", "new-pass-1")


def test_share_and_unshare_a_place_and_a_meter(site: Site) -> None:
    site.admin.post(
        "/api/v1/places", json={"id": "home", "tz": "UTC", "meters": [{"meter": "m-pv", "role": "solar"}]}
    )
    client = signed_in(site)
    assert site.viewer.get("/api/v1/places/home").status_code == 404
    _redirected(
        (form_post(client, "/manage/users/vera/shares", {"object": "place:home"})),
        "/manage/users/vera?done=",
    )
    assert site.viewer.get("/api/v1/places/home").status_code == 200
    assert site.viewer.get("/api/v1/meters/m-pv").status_code == 200
    nothing = form_post(client, "/manage/users/vera/shares", {"object": ""})
    assert (
        nothing.status_code == 400
        and field_error(nothing.text, "object") == "choose a meter or a place to share"
    )
    unknown = form_post(client, "/manage/users/vera/shares", {"object": "meter:nope"})
    assert unknown.status_code == 400 and "nope" in (field_error(unknown.text, "object") or "")
    page = client.get("/manage/users/vera").text
    assert 'data-share="place:home"' in page and 'data-share="meter:m-grid"' in page
    _redirected(
        (form_post(client, "/manage/users/vera/shares/place/home/unshare", {})),
        "/manage/users/vera?done=",
    )
    assert site.viewer.get("/api/v1/places/home").status_code == 404
    again = form_post(client, "/manage/users/vera/shares/place/home/unshare", {})
    assert again.status_code == 400 and "not shared" in (field_error(again.text, "unshare") or "")


def test_remove_a_user_after_confirming(site: Site) -> None:
    client = signed_in(site)
    confirm = client.get("/manage/users/mona/remove")
    assert confirm.status_code == 200 and "Remove user mona" in confirm.text
    assert site.member.get("/api/v1/meters").status_code == 200
    _redirected(form_post(client, "/manage/users/mona/remove", {}), "/manage/users?done=")
    assert site.member.get("/api/v1/meters").status_code == 401
    assert client.get("/manage/users/mona").status_code == 404
    assert form_post(client, "/manage/users/mona/role", {"role": "viewer"}).status_code == 404


def test_a_created_key_is_shown_once_works_and_is_never_listed(site: Site) -> None:
    client = signed_in(site)
    missing = form_post(client, "/manage/keys", {"user": "nobody", "name": "x"})
    assert missing.status_code == 400 and "nobody" in (field_error(missing.text, "user") or "")
    made = form_post(client, "/manage/keys", {"user": "vera", "name": "wall display"})
    assert made.status_code == 201
    assert "it will not be shown again" in made.text and made.headers["cache-control"] == "no-store"
    found = re.search(r'<code id="new-key">(mh_([0-9a-f]{12})_[^<]+)</code>', made.text)
    assert found is not None
    key, key_id = found.group(1), found.group(2)
    with site.api.client(key) as program:
        assert program.get("/api/v1/meters").status_code == 200
        assert [m["id"] for m in program.get("/api/v1/meters").json()] == ["m-grid"]
    listing = client.get("/manage/keys")
    secret = key.split("_", 2)[2]
    assert key_id in listing.text and secret not in listing.text and key not in listing.text
    assert re.search(rf'<tr data-key="{key_id}">.*?<td>vera</td>\s*<td>wall display</td>', listing.text, re.S)
    row = re.search(rf'<tr data-key="{key_id}">.*?</tr>', listing.text, re.S)
    assert row is not None and "never" not in row.group(0)
    _redirected(form_post(client, f"/manage/keys/{key_id}/revoke", {}), "/manage/keys?done=")
    with site.api.client(key) as program:
        assert program.get("/api/v1/meters").status_code == 401
    revoked = client.get("/manage/keys").text
    assert re.search(rf'<tr data-key="{key_id}">.*?<td>yes</td>', revoked, re.S)
    assert form_post(client, "/manage/keys/000000000000/revoke", {}).status_code == 404


def test_forms_without_a_csrf_token_change_nothing(site: Site) -> None:
    client = signed_in(site)
    for path, data in (
        (
            "/manage/users",
            {"name": "nina", "role": "admin", "password": ADMIN_PASSWORD, "password2": ADMIN_PASSWORD},
        ),
        ("/manage/users/vera/role", {"role": "admin"}),
        ("/manage/users/vera/remove", {}),
        ("/manage/keys", {"user": "vera", "name": "x"}),
    ):
        answer = form_post(client, path, data, token=False)
        assert answer.status_code == 400 and "The form expired" in answer.text, path
    assert [u.name for u in site.store.list_users()] == ["admin", "mona", "vera"]
    assert site.store.get_user("vera").role.value == "viewer"
    assert [k.name for k in site.store.list_api_keys("vera")] == ["tests"]
