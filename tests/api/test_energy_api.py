"""Energy, cost, capacity and analysis routes over HTTP, checked against the domain functions."""

from __future__ import annotations

import httpx
import pytest

from meterhub.analytics.energy import meter_energy
from meterhub.analytics.places import place_energy
from tests.api.conftest import ApiServer
from tests.api.formats import csv_rows, problem, xml_root, yaml_data
from tests.api.seeding import END, RANGE, START, seed_household

PLACE_COLUMNS = [
    "start",
    "end",
    "yield_kwh",
    "from_grid_kwh",
    "to_grid_kwh",
    "special_load_kwh",
    "self_use_kwh",
    "consumption_kwh",
    "self_sufficiency_ratio",
    "source",
    "estimated",
]


@pytest.fixture
def hub(api: ApiServer) -> ApiServer:
    """Return the running hub with the household seeded."""
    seed_household(api.store)
    return api


ROUTES = [
    "/api/v1/meters/grid/energy",
    "/api/v1/meters/grid/cost",
    "/api/v1/meters/grid/analysis/power",
    "/api/v1/meters/grid/analysis/offline",
    "/api/v1/places/home/energy",
    "/api/v1/places/home/cost",
    "/api/v1/places/home/capacity",
]


@pytest.mark.parametrize("path", ROUTES)
def test_routes_require_auth_and_answer_404_for_unshared_objects(
    hub: ApiServer, anon: httpx.Client, path: str
) -> None:
    problem(anon.get(path, params=RANGE), 401)
    outsider = hub.user("otto", "member", [("meter", "secret"), ("place", "cabin")])
    problem(outsider.get(path, params=RANGE), 404)
    viewer = hub.user("vic", "viewer", [("place", "home")])
    params = {"month": "2026-03"} if path.endswith("capacity") else RANGE
    assert viewer.get(path, params=params).status_code == 200


def test_meter_energy_matches_the_analytics(hub: ApiServer, admin: httpx.Client) -> None:
    body = admin.get("/api/v1/meters/grid/energy", params={**RANGE, "bucket": "1h", "tz": "UTC"}).json()
    assert body["meter"] == "grid" and body["bucket"] == "1h" and body["tz"] == "UTC"
    former = admin.get("/api/v1/meters/grid/energy", params={**RANGE, "groupby": "hour", "tz": "UTC"}).json()
    assert former == body  # the former parameter and word still work
    expected = meter_energy(hub.store, "grid", START, END, "hour", "UTC")
    assert len(body["data"]) == len(expected) == 48
    for row, bucket in zip(body["data"], expected, strict=True):
        assert row["energy_import_kwh"] == pytest.approx(bucket.energy_import_kwh, abs=5e-4)
        assert row["energy_export_kwh"] == pytest.approx(bucket.energy_export_kwh, abs=5e-4)
        assert row["source"] == bucket.source and row["estimated"] == bucket.estimated
    days = admin.get("/api/v1/meters/grid/energy", params=RANGE).json()["data"]
    assert days[0]["start"] == "2026-03-02T00:00:00+01:00"  # local days in the meter's zone
    assert days[1]["source"] == "registers" and days[0]["estimated"] is True  # the silence of day one


def test_place_energy_has_iammeter_meaning_in_snake_case_names(hub: ApiServer, admin: httpx.Client) -> None:
    body = admin.get("/api/v1/places/home/energy", params=RANGE).json()
    place = hub.store.get_place("home")
    expected = place_energy(hub.store, place, START, END, "day")
    assert [list(row) for row in body["data"]] == [PLACE_COLUMNS] * len(expected)
    for row, period in zip(body["data"], expected, strict=True):
        assert row["yield_kwh"] == pytest.approx(period.yield_kwh, abs=5e-4)
        assert row["from_grid_kwh"] == pytest.approx(period.from_grid_kwh, abs=5e-4)
        assert row["to_grid_kwh"] == pytest.approx(period.to_grid_kwh, abs=5e-4)
        assert row["self_use_kwh"] == pytest.approx(max(0.0, row["yield_kwh"] - row["to_grid_kwh"]), abs=2e-3)
        assert row["consumption_kwh"] == pytest.approx(row["from_grid_kwh"] + row["self_use_kwh"], abs=2e-3)
    rows = csv_rows(admin.get("/api/v1/places/home/energy", params={**RANGE, "format": "csv"}), PLACE_COLUMNS)
    assert len(rows) == len(expected)
    root = xml_root(admin.get("/api/v1/places/home/energy", params={**RANGE, "format": "xml"}))
    assert root.find("data/item/yield_kwh") is not None
    assert (
        yaml_data(admin.get("/api/v1/places/home/energy", params={**RANGE, "format": "yaml"}))[0][
            "from_grid_kwh"
        ]
        > 0
    )


def test_bucket_and_zone_are_validated(hub: ApiServer, admin: httpx.Client) -> None:
    problem(admin.get("/api/v1/places/home/energy", params={**RANGE, "bucket": "fortnight"}), 422)
    problem(admin.get("/api/v1/places/home/energy", params={**RANGE, "groupby": "fortnight"}), 422)
    clash = admin.get("/api/v1/places/home/energy", params={**RANGE, "bucket": "1d", "groupby": "month"})
    assert "different periods" in problem(clash, 422)["detail"]
    problem(admin.get("/api/v1/places/home/energy", params={**RANGE, "tz": "Etc"}), 422)
    too_many = {"start": "1990-01-01", "end": "2026-01-01", "bucket": "15m"}
    assert "exceed" in problem(admin.get("/api/v1/meters/grid/energy", params=too_many), 422)["detail"]
    month = admin.get("/api/v1/places/home/energy", params={**RANGE, "bucket": "1mo"}).json()["data"]
    assert len(month) == 1 and month[0]["start"] == "2026-03-01T00:00:00+01:00"
    former = admin.get("/api/v1/places/home/energy", params={**RANGE, "groupby": "month"})
    assert former.json()["data"] == month


def test_cost_prices_each_period_under_the_tariff(hub: ApiServer, admin: httpx.Client) -> None:
    body = admin.get("/api/v1/places/home/cost", params=RANGE).json()
    assert body["currency"] == "EUR" and len(body["data"]) == 3
    assert body["place"] == "home" and "id" not in body and body["bucket"] == "1d"
    for row in body["data"]:
        # Money keeps 5 decimals, energy 3 (1 Wh): a cost is the price of the unrounded energy.
        assert row["import_cost"] == pytest.approx(2.0 * row["energy_import_kwh"], abs=1.1e-3)
        assert row["export_credit"] == pytest.approx(0.5 * row["energy_export_kwh"], abs=3e-4)
        parts = row["import_cost"] + row["fees"] - row["export_credit"]
        assert row["total_cost"] == pytest.approx(parts, abs=3e-5)
    assert body["total_cost"] == pytest.approx(sum(r["total_cost"] for r in body["data"]), abs=1e-4)
    meter = admin.get("/api/v1/meters/grid/cost", params=RANGE).json()
    assert meter["total_cost"] == pytest.approx(body["total_cost"], abs=1e-4)
    assert meter["meter"] == "grid" and "place" not in meter
    rows = csv_rows(admin.get("/api/v1/meters/grid/cost", params={**RANGE, "format": "csv"}))
    assert list(rows[0])[:4] == ["start", "end", "energy_import_kwh", "energy_export_kwh"]
    assert "no tariff" in problem(admin.get("/api/v1/places/cabin/cost", params=RANGE), 422)["detail"]
    assert "no tariff" in problem(admin.get("/api/v1/meters/secret/cost", params=RANGE), 422)["detail"]


def test_capacity_of_a_month(hub: ApiServer, admin: httpx.Client) -> None:
    body = admin.get("/api/v1/places/home/capacity", params={"month": "2026-03", "peaks": 2}).json()
    assert body["month"] == "2026-03" and body["hours"] == 48
    assert len(body["peaks"]) == 2 and body["step_kwh"] == 5.0 and body["next_threshold_kwh"] == 10.0
    assert body["month_value_kwh"] == pytest.approx(sum(p["energy_kwh"] for p in body["peaks"]) / 2)
    custom = admin.get(
        "/api/v1/places/home/capacity", params={"month": "2026-03", "thresholds": "0.5,2"}
    ).json()
    assert custom["thresholds_kwh"] == [0.5, 2.0] and custom["step_kwh"] == 2.0
    rows = csv_rows(admin.get("/api/v1/places/home/capacity", params={"month": "2026-03", "format": "csv"}))
    assert list(rows[0]) == ["day", "hour_start", "energy_kwh"]
    for bad in ({"month": "2026-13"}, {"month": "0000-01"}, {"thresholds": "nan,1"}, {"thresholds": "5,2"}):
        problem(admin.get("/api/v1/places/home/capacity", params=bad), 422)
    problem(admin.get("/api/v1/places/home/capacity", params={"month": "2199-01"}), 422)


def test_power_analysis_has_iammeters_figures(hub: ApiServer, admin: httpx.Client) -> None:
    body = admin.get("/api/v1/meters/solar/analysis/power", params={**RANGE, "tz": "UTC"}).json()
    assert set(body) == {"meter", "start", "end", "tz", "avg_w", "daytime_avg_w", "min_w", "max_w"}
    assert body["min_w"] == 0.0 and body["max_w"] == pytest.approx(3000, rel=0.01)
    assert body["daytime_avg_w"] > body["avg_w"] > 0
    rows = csv_rows(admin.get("/api/v1/meters/solar/analysis/power", params={**RANGE, "format": "csv"}))
    assert len(rows) == 1 and float(rows[0]["max_w"]) == pytest.approx(body["max_w"])
    assert (
        xml_root(admin.get("/api/v1/meters/solar/analysis/power", params={**RANGE, "format": "xml"})).tag
        == "power"
    )


def test_offline_analysis_lists_the_silence(hub: ApiServer, admin: httpx.Client) -> None:
    body = admin.get("/api/v1/meters/grid/analysis/offline", params={**RANGE, "tz": "UTC"}).json()
    assert body["total_min"] == 2 * 24 * 60 and body["gaps"] == 1 and body["offline_min"] == pytest.approx(30)
    assert body["list"] == [
        {"start": "2026-03-02T10:00:00+00:00", "end": "2026-03-02T10:30:00+00:00", "duration_min": 30.0}
    ]
    longer = admin.get("/api/v1/meters/grid/analysis/offline", params={**RANGE, "interval_min": 45}).json()
    assert longer["gaps"] == 0 and longer["offline_min"] == 0 and longer["list"] == []
    rows = csv_rows(
        admin.get("/api/v1/meters/grid/analysis/offline", params={**RANGE, "format": "csv"}),
        ["start", "end", "duration_min"],
    )
    assert len(rows) == 1
    root = xml_root(admin.get("/api/v1/meters/grid/analysis/offline", params={**RANGE, "format": "xml"}))
    assert root.findtext("gaps") == "1"
    problem(admin.get("/api/v1/meters/grid/analysis/offline", params={"interval_min": -1}), 422)
