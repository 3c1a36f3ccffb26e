"""``/api/v1/meters`` and the latest readings over HTTP: auth, roles, visibility, secrets, formats."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from meterhub.model import Reading, utc_now
from tests.api.conftest import ApiServer
from tests.api.formats import csv_rows, ndjson_rows, problem, xml_root, yaml_data
from tests.api.seeding import seed_household
from tests.waiting import wait_until

SECRET_VALUE = "pin-7f3a9c"


@pytest.fixture
def hub(api: ApiServer) -> ApiServer:
    """Return the running hub with the household seeded."""
    seed_household(api.store)
    return api


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/meters"),
        ("POST", "/api/v1/meters"),
        ("GET", "/api/v1/meters/grid"),
        ("PATCH", "/api/v1/meters/grid"),
        ("DELETE", "/api/v1/meters/grid"),
        ("GET", "/api/v1/latest"),
        ("GET", "/api/v1/meters/grid/latest"),
    ],
)
def test_every_meter_route_requires_auth(hub: ApiServer, anon: httpx.Client, method: str, path: str) -> None:
    answer = anon.request(method, path, json={} if method in {"POST", "PATCH"} else None)
    problem(answer, 401)
    assert answer.headers["www-authenticate"].startswith("Bearer")


def test_admin_lists_every_meter_with_health(hub: ApiServer, admin: httpx.Client) -> None:
    hub.store.record_health("grid", False, utc_now(), "VendorUnavailable: timed out")
    meters = {m["id"]: m for m in admin.get("/api/v1/meters").json()}
    assert sorted(meters) == ["grid", "secret", "solar"]
    assert meters["grid"]["phases"] == 3 and meters["grid"]["tz"] == "Europe/Oslo"
    assert meters["grid"]["health"]["online"] is False
    assert meters["grid"]["health"]["last_error"] == "VendorUnavailable: timed out"
    assert meters["solar"]["health"] is None
    one = admin.get("/api/v1/meters/grid").json()
    assert one == meters["grid"]


def test_members_and_viewers_see_only_what_is_shared(hub: ApiServer) -> None:
    member = hub.user("mia", "member", [("meter", "grid")])
    viewer = hub.user("vic", "viewer", [("place", "home")])
    assert [m["id"] for m in member.get("/api/v1/meters").json()] == ["grid"]
    assert [m["id"] for m in viewer.get("/api/v1/meters").json()] == ["grid", "solar"]
    hidden = problem(member.get("/api/v1/meters/secret"), 404)
    missing = problem(member.get("/api/v1/meters/no-such"), 404)
    assert hidden["title"] == missing["title"]
    assert hidden["detail"].replace("secret", "X") == missing["detail"].replace("no-such", "X")
    assert [r["meter"] for r in member.get("/api/v1/latest").json()] == ["grid"]
    problem(viewer.get("/api/v1/meters/secret/latest"), 404)


def test_only_admins_change_meters(hub: ApiServer) -> None:
    member = hub.user("mia", "member", [("meter", "grid")])
    viewer = hub.user("vic", "viewer", [("meter", "grid")])
    body = {"id": "new", "vendor": "file"}
    for client in (member, viewer):
        problem(client.post("/api/v1/meters", json=body), 403)
        problem(client.patch("/api/v1/meters/grid", json={"name": "x"}), 403)
        problem(client.delete("/api/v1/meters/grid"), 403)
    assert hub.store.get_meter("grid").name == "Main fuse"


def test_secrets_are_write_only_references(
    hub: ApiServer, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SM_PIN", SECRET_VALUE)
    refused = problem(
        admin.post(
            "/api/v1/meters",
            json={"id": "sm", "vendor": "smartmac", "options": {"devid": "17", "devpass": SECRET_VALUE}},
        ),
        422,
    )
    assert "env:" in refused["detail"] and SECRET_VALUE not in refused["detail"]
    answer = admin.post(
        "/api/v1/meters",
        json={
            "id": "sm",
            "vendor": "smartmac",
            "phases": 3,
            "tz": "Europe/Oslo",
            "options": {"devid": "17", "devpass": "env:SM_PIN", "rate_class": "extended"},
        },
    )
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["options"] == {"devid": "17", "rate_class": "extended"}
    assert created["secret_options"] == ["devpass"]
    assert created["interval_s"] == 60  # the vendor's shortest polling interval
    assert hub.store.get_meter("sm").options["devpass"] == "env:SM_PIN"
    for fmt in ("json", "xml", "csv", "yaml", "ndjson"):
        for path in ("/api/v1/meters", "/api/v1/meters/sm"):
            text = admin.get(path, params={"format": fmt}).text
            assert SECRET_VALUE not in text and "SM_PIN" not in text, (fmt, path)


def test_add_validates_every_field(hub: ApiServer, admin: httpx.Client) -> None:
    cases = [
        {"id": "has space", "vendor": "file"},
        {"id": "x1", "vendor": "nosuchvendor"},
        {"id": "x2", "vendor": "file", "tz": "America"},
        {"id": "x3", "vendor": "file", "tz": "Mars/Olympus"},
        {"id": "x4", "vendor": "file", "phases": 4},
        {"id": "x5", "vendor": "file", "options": {"Bad-Key": "1"}},
        {"id": "x6", "vendor": "file", "options": {"password": "env:"}},
        {"id": "x7", "vendor": "file", "options": {"token": "env:1BAD"}},
        {"id": "x8", "vendor": "file", "surprise": True},
    ]
    for body in cases:
        problem(admin.post("/api/v1/meters", json=body), 422)
    problem(admin.post("/api/v1/meters", json={"id": "grid", "vendor": "file"}), 409)
    assert sorted(m.id for m in hub.store.list_meters()) == ["grid", "secret", "solar"]


def test_update_merges_options_and_remove_deletes(hub: ApiServer, admin: httpx.Client) -> None:
    admin.post(
        "/api/v1/meters", json={"id": "ams", "vendor": "amsreader", "options": {"host": "a", "base_url": "b"}}
    )
    answer = admin.patch(
        "/api/v1/meters/ams",
        json={"name": "Reader", "interval_s": 10, "options": {"host": "c", "base_url": None}},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["options"] == {"host": "c"}
    assert answer.json()["name"] == "Reader" and answer.json()["interval_s"] == 10
    problem(admin.patch("/api/v1/meters/ams", json={"tz": "Nowhere/Land"}), 422)
    problem(admin.patch("/api/v1/meters/nope", json={"name": "x"}), 404)
    assert admin.delete("/api/v1/meters/ams").status_code == 204
    problem(admin.get("/api/v1/meters/ams"), 404)
    problem(admin.delete("/api/v1/meters/ams"), 404)


def test_meters_answer_every_format(hub: ApiServer, admin: httpx.Client) -> None:
    root = xml_root(admin.get("/api/v1/meters", params={"format": "xml"}))
    assert root.tag == "meters" and [e.findtext("id") for e in root] == ["grid", "secret", "solar"]
    one = xml_root(admin.get("/api/v1/meters/grid", headers={"Accept": "application/xml"}))
    assert one.findtext("vendor") == "file"
    rows = csv_rows(admin.get("/api/v1/meters", params={"format": "csv"}))
    assert [r["id"] for r in rows] == ["grid", "secret", "solar"]
    assert set(rows[0]) >= {"id", "vendor", "phases", "tz", "interval_s", "online", "last_error"}
    assert [m["id"] for m in yaml_data(admin.get("/api/v1/meters", params={"format": "yaml"}))] == [
        "grid",
        "secret",
        "solar",
    ]
    assert len(ndjson_rows(admin.get("/api/v1/meters", params={"format": "ndjson"}))) == 3
    problem(
        admin.post("/api/v1/meters", headers={"Accept": "text/csv"}, json={"id": "z", "vendor": "file"}), 406
    )
    problem(admin.get("/api/v1/meters", params={"format": "html"}), 422)
    assert "z" not in [m.id for m in hub.store.list_meters()]  # refused before anything was written


def test_latest_of_every_meter_and_of_each_phase(hub: ApiServer, admin: httpx.Client) -> None:
    everyone = admin.get("/api/v1/latest").json()
    assert [(r["meter"], r["phase"]) for r in everyone] == [("grid", 0), ("secret", 0), ("solar", 0)]
    assert everyone[0]["ts"] == "2026-03-04T00:00:00+00:00"
    assert everyone[0]["voltage_v"] == 230.0 and everyone[0]["energy_import_kwh"] > 0
    phases = admin.get("/api/v1/meters/grid/latest").json()
    assert [r["phase"] for r in phases] == [0, 1, 2, 3]
    assert [r["phase"] for r in admin.get("/api/v1/meters/grid/latest", params={"phase": 2}).json()] == [2]
    problem(admin.get("/api/v1/meters/grid/latest", params={"phase": 7}), 422)
    rows = csv_rows(
        admin.get("/api/v1/latest", params={"format": "csv"}),
        header=[
            "meter",
            "ts",
            "phase",
            "voltage_v",
            "current_a",
            "power_w",
            "reactive_power_var",
            "power_factor",
            "frequency_hz",
            "energy_import_kwh",
            "energy_export_kwh",
            "reactive_import_kvarh",
            "reactive_export_kvarh",
        ],
    )
    assert len(rows) == 3
    assert len(xml_root(admin.get("/api/v1/meters/grid/latest", params={"format": "xml"}))) == 4
    assert len(yaml_data(admin.get("/api/v1/latest", params={"format": "yaml"}))) == 3


def test_latest_is_shared_briefly_but_never_across_visibility_or_format(
    hub: ApiServer, admin: httpx.Client
) -> None:
    member = hub.user("mia", "member", [("meter", "solar")])
    before = admin.get("/api/v1/latest").json()
    assert [r["meter"] for r in member.get("/api/v1/latest").json()] == ["solar"]
    assert admin.get("/api/v1/latest", params={"format": "csv"}).text.startswith("meter,ts,phase,")
    newer = Reading("grid", datetime(2026, 3, 4, 0, 1, tzinfo=UTC), power_w=1234.5, energy_import_kwh=99.0)
    hub.store.write_readings([newer])
    wait_until(lambda: admin.get("/api/v1/latest").json() != before, "the cached latest to expire")
    now = admin.get("/api/v1/latest").json()
    assert now[0]["ts"] == "2026-03-04T00:01:00+00:00" and now[0]["power_w"] == 1234.5
