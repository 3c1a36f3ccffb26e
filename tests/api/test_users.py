"""``/api/v1/users`` and ``/api/v1/session`` over loopback HTTP: admin CRUD, roles and shares."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest

from meterhub.api.deps import Principal
from meterhub.api.problems import ApiProblem
from meterhub.model import Meter, Place, Role, UserRole
from tests.api.conftest import ADMIN, USER_PASSWORD, ApiServer

USERS = "/api/v1/users"


def test_admin_adds_lists_changes_and_removes_users(api: ApiServer, admin: httpx.Client) -> None:
    made = admin.post(USERS, json={"name": "bob", "role": "member", "password": "bob-password"})
    assert made.status_code == 201, made.text
    assert made.json()["name"] == "bob" and made.json()["role"] == "member"
    assert "password" not in made.text and "argon2" not in made.text
    taken = admin.post(USERS, json={"name": "bob", "role": "viewer", "password": "other-password"})
    assert taken.status_code == 409 and "bob" in taken.json()["detail"]
    assert [u["name"] for u in admin.get(USERS).json()] == [ADMIN, "bob"]
    csv_lines = admin.get(USERS, params={"format": "csv"}).text.splitlines()
    assert csv_lines[0] == "name,role,created_at,shares" and len(csv_lines) == 3
    root = ET.fromstring(admin.get(USERS, headers={"Accept": "application/xml"}).content)
    assert root.tag == "users" and [e.findtext("name") for e in root] == [ADMIN, "bob"]
    changed = admin.patch(f"{USERS}/bob", json={"role": "viewer"})
    assert changed.status_code == 200 and changed.json()["role"] == "viewer"
    assert api.login("bob", "bob-password")["access_token"]
    assert admin.delete(f"{USERS}/bob").status_code == 204
    assert admin.get(f"{USERS}/bob").status_code == 404
    assert admin.delete(f"{USERS}/bob").status_code == 404


def test_the_last_admin_stays(admin: httpx.Client) -> None:
    assert admin.delete(f"{USERS}/{ADMIN}").status_code == 409
    assert admin.patch(f"{USERS}/{ADMIN}", json={"role": "member"}).status_code == 409
    admin.post(USERS, json={"name": "second", "role": "admin", "password": "second-password"})
    assert admin.patch(f"{USERS}/{ADMIN}", json={"role": "member"}).status_code == 200


def test_bad_user_input_is_a_422_naming_the_field(admin: httpx.Client) -> None:
    for body, field in (
        ({"name": "bob", "password": "short"}, "password"),
        ({"name": "bad name", "password": "long-enough"}, "name"),
        ({"name": "bob", "role": "owner", "password": "long-enough"}, "role"),
        ({"password": "long-enough"}, "name"),
    ):
        answer = admin.post(USERS, json=body)
        assert answer.status_code == 422, body
        assert field in answer.json()["detail"]
        assert any(e["parameter"] == field for e in answer.json()["errors"])


@pytest.mark.parametrize("role", [UserRole.MEMBER, UserRole.VIEWER])
def test_members_and_viewers_manage_only_themselves(api: ApiServer, role: UserRole) -> None:
    bob = api.user("bob", role)
    api.user("carol", UserRole.VIEWER)
    for method, path, body in (
        ("GET", USERS, None),
        ("POST", USERS, {"name": "eve", "password": "eve-password"}),
        ("GET", f"{USERS}/carol", None),
        ("PATCH", f"{USERS}/bob", {"role": "admin"}),
        ("DELETE", f"{USERS}/carol", None),
        ("PUT", f"{USERS}/carol/password", {"password": "carol-password-2"}),
        ("PUT", f"{USERS}/bob/shares/meter/m1", None),
    ):
        answer = bob.request(method, path, json=body)
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    assert bob.get(f"{USERS}/bob").json()["role"] == role.value
    wrong = bob.put(f"{USERS}/bob/password", json={"password": "new-password-1", "current_password": "nope"})
    assert wrong.status_code == 403
    right = bob.put(
        f"{USERS}/bob/password", json={"password": "new-password-1", "current_password": USER_PASSWORD}
    )
    assert right.status_code == 204
    assert api.login("bob", "new-password-1")["access_token"]


def test_shares_decide_what_a_user_sees(api: ApiServer, admin: httpx.Client) -> None:
    for meter_id in ("grid", "pv", "other"):
        api.store.add_meter(Meter(meter_id, "file"))
    api.store.add_place(Place("home", "UTC", meters=(("grid", Role.GRID), ("pv", Role.SOLAR))))
    viewer = api.user("bob", UserRole.VIEWER)
    assert viewer.get("/api/v1/session").json()["meters"] == []
    assert admin.put(f"{USERS}/bob/shares/place/home").status_code == 200
    assert admin.put(f"{USERS}/bob/shares/meter/other").json() == [
        {"kind": "meter", "id": "other"},
        {"kind": "place", "id": "home"},
    ]
    session = viewer.get("/api/v1/session").json()
    assert (session["meters"], session["places"], session["sees_everything"]) == (
        ["grid", "other", "pv"],
        ["home"],
        False,
    )
    assert viewer.get(f"{USERS}/bob/shares", params={"format": "csv"}).text.splitlines()[0] == "kind,id"
    assert admin.delete(f"{USERS}/bob/shares/place/home").status_code == 204
    assert viewer.get("/api/v1/session").json()["meters"] == ["other"]
    assert admin.delete(f"{USERS}/bob/shares/place/home").status_code == 404
    assert admin.put(f"{USERS}/bob/shares/meter/ghost").status_code == 404
    assert admin.put(f"{USERS}/bob/shares/user/admin").status_code == 422
    assert admin.put(f"{USERS}/ghost/shares/meter/pv").status_code == 404


def test_principal_rules() -> None:
    admin = Principal("a", UserRole.ADMIN, None, frozenset(), frozenset())
    member = Principal("m", UserRole.MEMBER, "k1", frozenset({"pv"}), frozenset({"home"}))
    viewer = Principal("v", UserRole.VIEWER, None, frozenset({"pv"}), frozenset())
    assert admin.can_see_meter("anything") and admin.can_see_place("anywhere")
    assert member.can_see_meter("pv") and not member.can_see_meter("grid")
    assert member.can_see_place("home") and not viewer.can_see_place("home")
    admin.require_admin()
    admin.require_writer()
    member.require_writer()
    for call in (member.require_admin, viewer.require_admin, viewer.require_writer):
        with pytest.raises(ApiProblem) as caught:
            call()
        assert caught.value.status == 403
