"""``/api/v1/places`` (meters by role, tariffs) and ``/api/v1/prices`` over HTTP."""

from __future__ import annotations

import json

import httpx
import pytest

from meterhub.model import Role
from tests.api.conftest import ApiServer
from tests.api.formats import csv_rows, ndjson_rows, problem, xml_root, yaml_data
from tests.api.seeding import seed_household

PRICES_CSV = "start,resolution,price,currency\n" + "".join(
    f"2026-03-02T{hour:02d}:00:00+00:00,60m,{0.1 * hour:.2f},EUR\n" for hour in range(24)
)


@pytest.fixture
def hub(api: ApiServer) -> ApiServer:
    """Return the running hub with the household seeded."""
    seed_household(api.store)
    return api


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/places"),
        ("POST", "/api/v1/places"),
        ("GET", "/api/v1/places/home"),
        ("PATCH", "/api/v1/places/home"),
        ("DELETE", "/api/v1/places/home"),
        ("PUT", "/api/v1/places/home/meters/grid"),
        ("DELETE", "/api/v1/places/home/meters/grid"),
        ("GET", "/api/v1/places/home/tariff"),
        ("PUT", "/api/v1/places/home/tariff"),
        ("GET", "/api/v1/prices"),
        ("GET", "/api/v1/prices/spot"),
        ("POST", "/api/v1/prices/spot"),
        ("DELETE", "/api/v1/prices/spot"),
    ],
)
def test_routes_require_auth(hub: ApiServer, anon: httpx.Client, method: str, path: str) -> None:
    problem(anon.request(method, path), 401)


def test_place_crud_with_meter_roles(hub: ApiServer, admin: httpx.Client) -> None:
    body = {
        "id": "flat",
        "tz": "Europe/Berlin",
        "name": "Flat",
        "meters": [{"meter": "grid", "role": "grid"}],
    }
    created = admin.post("/api/v1/places", json=body)
    assert created.status_code == 201, created.text
    assert created.json() == {**body, "tariff": {}}
    problem(admin.post("/api/v1/places", json=body), 409)
    attached = admin.put("/api/v1/places/flat/meters/solar", json={"role": "solar"}).json()
    assert attached["meters"] == [{"meter": "grid", "role": "grid"}, {"meter": "solar", "role": "solar"}]
    detached = admin.delete("/api/v1/places/flat/meters/grid").json()
    assert detached["meters"] == [{"meter": "solar", "role": "solar"}]
    problem(admin.delete("/api/v1/places/flat/meters/grid"), 422)
    problem(admin.put("/api/v1/places/flat/meters/nope", json={"role": "grid"}), 404)
    patched = admin.patch(
        "/api/v1/places/flat", json={"name": "Flat 2", "meters": [{"meter": "secret", "role": "special"}]}
    )
    assert patched.json()["name"] == "Flat 2" and patched.json()["meters"] == [
        {"meter": "secret", "role": "special"}
    ]
    assert hub.store.get_place("flat").meters == (("secret", Role.SPECIAL),)
    assert admin.delete("/api/v1/places/flat").status_code == 204
    problem(admin.get("/api/v1/places/flat"), 404)
    assert hub.store.get_meter("secret").id == "secret"  # the meters stay


def test_place_bodies_are_validated(hub: ApiServer, admin: httpx.Client) -> None:
    bad_bodies = [
        {"id": "p1", "tz": "America"},
        {"id": "p2", "tz": "UTC", "meters": [{"meter": "nope", "role": "grid"}]},
        {
            "id": "p3",
            "tz": "UTC",
            "meters": [{"meter": "grid", "role": "grid"}, {"meter": "grid", "role": "solar"}],
        },
        {"id": "p4", "tz": "UTC", "meters": [{"meter": "grid", "role": "boss"}]},
        {
            "id": "p5",
            "tz": "UTC",
            "tariff": {"currency": "EUR", "import_per_kwh": 1, "import_series": "spot"},
        },
        {"id": "p6", "tz": "UTC", "tariff": {"import_per_kwh": 1}},
        {"id": "p7", "tz": "UTC", "tariff": {"currency": "EUR", "peak_per_kwh": 1}},
        {"id": "p8", "tz": "UTC", "tariff": {"capacity_thresholds_kwh": [5, 2]}},
        {"id": "p 9", "tz": "UTC"},
    ]
    for body in bad_bodies:
        problem(admin.post("/api/v1/places", json=body), 422)
    assert [p.id for p in hub.store.list_places()] == ["cabin", "home"]


def test_members_see_shared_places_and_only_admins_write(hub: ApiServer) -> None:
    member = hub.user("mia", "member", [("place", "home")])
    assert [p["id"] for p in member.get("/api/v1/places").json()] == ["home"]
    problem(member.get("/api/v1/places/cabin"), 404)
    problem(member.get("/api/v1/places/cabin/tariff"), 404)
    problem(member.post("/api/v1/places", json={"id": "x", "tz": "UTC"}), 403)
    problem(member.patch("/api/v1/places/home", json={"name": "x"}), 403)
    problem(member.put("/api/v1/places/home/tariff", json={}), 403)
    problem(member.put("/api/v1/places/home/meters/secret", json={"role": "grid"}), 403)
    problem(member.delete("/api/v1/places/home"), 403)
    assert hub.store.get_place("home").name == "Home"


def test_tariff_is_shown_whole_and_replaced(hub: ApiServer, admin: httpx.Client) -> None:
    shown = admin.get("/api/v1/places/home/tariff").json()
    assert shown["import_per_kwh"] == 2.0 and shown["peak_start_hour"] == 7 and shown["currency"] == "EUR"
    tou = {"currency": "nok", "peak_per_kwh": 1.5, "offpeak_per_kwh": 0.7, "peak_end_hour": 21}
    answer = admin.put("/api/v1/places/home/tariff", json=tou)
    assert answer.status_code == 200, answer.text
    assert answer.json()["currency"] == "NOK" and answer.json()["import_per_kwh"] is None
    assert hub.store.get_place("home").tariff == {
        "currency": "NOK",
        "peak_per_kwh": 1.5,
        "offpeak_per_kwh": 0.7,
        "peak_end_hour": 21,
    }
    problem(admin.put("/api/v1/places/home/tariff", json={"currency": "EUR", "peak_per_kwh": "x"}), 422)
    assert admin.put("/api/v1/places/home/tariff", json={}).json()["currency"] == ""
    assert hub.store.get_place("home").tariff == {}


def test_places_answer_every_format(hub: ApiServer, admin: httpx.Client) -> None:
    rows = csv_rows(
        admin.get("/api/v1/places", params={"format": "csv"}), ["id", "tz", "name", "meters", "tariff"]
    )
    assert rows[1]["meters"] == "grid:grid solar:solar"
    assert (
        xml_root(admin.get("/api/v1/places/home", params={"format": "xml"})).findtext("tz") == "Europe/Oslo"
    )
    assert [p["id"] for p in yaml_data(admin.get("/api/v1/places", params={"format": "yaml"}))] == [
        "cabin",
        "home",
    ]
    assert (
        xml_root(admin.get("/api/v1/places/home/tariff", headers={"Accept": "application/xml"})).tag
        == "tariff"
    )


def test_prices_import_list_show_delete(hub: ApiServer, admin: httpx.Client) -> None:
    imported = admin.post("/api/v1/prices/spot", content=PRICES_CSV, headers={"Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    assert imported.json() == {
        "series": "spot",
        "read": 24,
        "stored": 24,
        "unchanged": 0,
        "start": "2026-03-02T00:00:00+00:00",
        "end": "2026-03-03T00:00:00+00:00",
    }
    export = [
        {"start": "2026-03-02T00:00:00Z", "end": "2026-03-02T12:00:00Z", "price": 0.05, "currency": "EUR",
         "direction": "export"}
    ]  # fmt: skip
    again = admin.post("/api/v1/prices/spot", json={"prices": export})
    assert again.json()["stored"] == 1
    listed = admin.get("/api/v1/prices").json()
    assert [(s["series"], s["direction"], s["slots"]) for s in listed] == [
        ("spot", "export", 1),
        ("spot", "import", 24),
    ]
    slots = admin.get(
        "/api/v1/prices/spot", params={"start": "2026-03-02T05:00:00Z", "end": "2026-03-02T07:00:00Z"}
    )
    assert [s["price_per_kwh"] for s in slots.json()] == [0.5, 0.6]
    rows = csv_rows(
        admin.get("/api/v1/prices", params={"format": "csv"}),
        ["series", "direction", "currency", "slots", "start", "end"],
    )
    assert len(rows) == 2
    assert (
        len(
            ndjson_rows(
                admin.get(
                    "/api/v1/prices/spot",
                    params={"start": "2026-03-02", "end": "2026-03-03", "format": "ndjson"},
                )
            )
        )
        == 24
    )
    partial = admin.delete("/api/v1/prices/spot", params={"start": "2026-03-02T12:00:00Z"}).json()
    assert partial == {"series": "spot", "deleted": 12}
    assert admin.delete("/api/v1/prices/spot").json() == {"series": "spot", "deleted": 13}
    problem(admin.get("/api/v1/prices/spot"), 404)
    problem(admin.delete("/api/v1/prices/spot"), 404)


def test_a_bad_price_body_imports_nothing(hub: ApiServer, admin: httpx.Client) -> None:
    bad = PRICES_CSV.replace("0.30", "cheap").replace("T05:00:00+00:00", "T05:07:00+00:00")
    refused = problem(
        admin.post("/api/v1/prices/spot", content=bad, headers={"Content-Type": "text/csv"}), 422
    )
    assert (
        "line 5" in refused["detail"]
        and "line 7" in refused["detail"]
        and "nothing imported" in refused["detail"]
    )
    for body in (b"\xff\xfe", b"[1, 2", b"not,a,price,file\n1,2,3,4\n", json.dumps({"prices": []}).encode()):
        problem(admin.post("/api/v1/prices/spot", content=body, headers={"Content-Type": "text/csv"}), 422)
    problem(admin.post("/api/v1/prices/bad name", content=PRICES_CSV), 422)
    huge = b"x" * (8 * 1024 * 1024 + 1)
    problem(admin.post("/api/v1/prices/spot", content=huge, headers={"Content-Type": "text/csv"}), 413)
    assert hub.store.price_series() == []


def test_only_admins_import_and_delete_prices(hub: ApiServer, admin: httpx.Client) -> None:
    admin.post("/api/v1/prices/spot", content=PRICES_CSV)
    member = hub.user("mia", "member")
    assert len(member.get("/api/v1/prices").json()) == 1
    problem(member.post("/api/v1/prices/spot", content=PRICES_CSV), 403)
    problem(member.delete("/api/v1/prices/spot"), 403)
    assert hub.store.price_series()[0][3] == 24
