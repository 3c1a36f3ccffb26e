"""``/api/v1/meters/{id}/readings`` and ``/intervals`` over HTTP: downsampling, limits, formats."""

from __future__ import annotations

import httpx
import pytest

from meterhub.history import MAX_POINTS
from tests.api.conftest import ApiServer
from tests.api.formats import csv_rows, ndjson_rows, problem, xml_root, yaml_data
from tests.api.seeding import RANGE, seed_household


@pytest.fixture
def hub(api: ApiServer) -> ApiServer:
    """Return the running hub with the household seeded."""
    seed_household(api.store)
    return api


@pytest.mark.parametrize("path", ["/api/v1/meters/grid/readings", "/api/v1/meters/grid/intervals"])
def test_history_routes_require_auth_and_hide_unshared_meters(
    hub: ApiServer, anon: httpx.Client, path: str
) -> None:
    problem(anon.get(path, params=RANGE), 401)
    member = hub.user("mia", "member", [("meter", "solar")])
    problem(member.get(path, params=RANGE), 404)
    viewer = hub.user("vic", "viewer", [("meter", "grid")])
    assert viewer.get(path, params=RANGE).status_code == 200


def test_fixed_buckets_cover_the_range(hub: ApiServer, admin: httpx.Client) -> None:
    body = admin.get("/api/v1/meters/grid/readings", params={**RANGE, "bucket": "15m"}).json()
    assert body["meter"] == "grid" and body["phase"] == 0
    rows = body["data"]
    assert len(rows) == 2 * 96
    silent = next(r for r in rows if r["start"] == "2026-03-02T10:15:00+00:00")
    assert silent["count"] == 0 and silent["energy_import_kwh"] + silent["energy_export_kwh"] > 0
    assert rows[0]["start"] == "2026-03-02T00:00:00+00:00" and rows[0]["end"] == "2026-03-02T00:15:00+00:00"
    assert rows[0]["count"] == 15
    assert rows[0]["power_min_w"] <= rows[0]["power_avg_w"] <= rows[0]["power_max_w"]
    days = admin.get("/api/v1/meters/grid/readings", params={**RANGE, "bucket": "1d"}).json()["data"]
    assert days[0]["start"] == "2026-03-01T23:00:00+00:00"  # local midnight in Oslo
    hours = admin.get("/api/v1/meters/grid/readings", params={**RANGE, "points": 48}).json()["data"]
    assert len(hours) == 48


def test_phase_and_fields_are_chosen(hub: ApiServer, admin: httpx.Client) -> None:
    params = {**RANGE, "bucket": "1h", "phase": 2, "fields": "voltage_avg_v,count"}
    body = admin.get("/api/v1/meters/grid/readings", params=params).json()
    assert body["phase"] == 2 and body["fields"] == ["voltage_avg_v", "count"]
    assert set(body["data"][0]) == {"start", "end", "voltage_avg_v", "count"}
    assert body["data"][0]["voltage_avg_v"] == pytest.approx(231.0)
    bad = problem(admin.get("/api/v1/meters/grid/readings", params={**RANGE, "fields": "power_w,nope"}), 422)
    assert "nope" in bad["detail"] and "power_avg_w" in bad["detail"]


def test_more_than_twenty_thousand_points_is_a_clear_422(hub: ApiServer, admin: httpx.Client) -> None:
    too_many = problem(
        admin.get("/api/v1/meters/grid/readings", params={**RANGE, "points": MAX_POINTS + 1}), 422
    )
    assert "20000" in too_many["detail"] and too_many["max_points"] == MAX_POINTS
    assert (
        admin.get("/api/v1/meters/grid/readings", params={**RANGE, "points": MAX_POINTS}).status_code == 200
    )
    long_range = {"start": "2025-01-01", "end": "2026-01-01", "bucket": "15m"}
    wide = problem(admin.get("/api/v1/meters/grid/readings", params=long_range), 422)
    assert "exceed 20000" in wide["detail"]
    problem(admin.get("/api/v1/meters/grid/readings", params={**RANGE, "points": 10, "bucket": "1h"}), 422)


@pytest.mark.parametrize(
    "params",
    [
        {"start": "yesterday-ish"},
        {"start": "99999999999999"},
        {"start": "-99999999999"},
        {"end": "now+99999999999d"},
        {"start": "1800-01-01"},
        {"start": "2026-03-03", "end": "2026-03-02"},
        {"tz": "America"},
        {"tz": "x" * 60},
        {"points": 0},
        {"bucket": "2h"},
        {"phase": 4},
    ],
)
def test_bad_input_is_a_422_not_a_500(hub: ApiServer, admin: httpx.Client, params: dict[str, object]) -> None:
    problem(admin.get("/api/v1/meters/grid/readings", params=params), 422)


def test_readings_answer_every_format(hub: ApiServer, admin: httpx.Client) -> None:
    params = {**RANGE, "bucket": "1h", "fields": "count,power_avg_w"}
    rows = csv_rows(
        admin.get("/api/v1/meters/grid/readings", params={**params, "format": "csv"}),
        header=["start", "end", "count", "power_avg_w"],
    )
    assert len(rows) == 48
    root = xml_root(admin.get("/api/v1/meters/grid/readings", params={**params, "format": "xml"}))
    assert root.tag == "history" and root.findtext("meter") == "grid"
    assert len(root.find("data") or []) == 48
    assert (
        len(yaml_data(admin.get("/api/v1/meters/grid/readings", params={**params, "format": "yaml"}))) == 48
    )
    assert (
        len(ndjson_rows(admin.get("/api/v1/meters/grid/readings", params={**params, "format": "ndjson"})))
        == 48
    )


def test_intervals_list_the_records_of_a_source(hub: ApiServer, admin: httpx.Client) -> None:
    records = admin.get("/api/v1/meters/grid/intervals", params=RANGE).json()
    assert len(records) == 8
    assert records[0] == {
        "meter": "grid",
        "start": "2026-03-02T00:00:00+00:00",
        "end": "2026-03-02T00:15:00+00:00",
        "energy_import_kwh": 0.25,
        "energy_export_kwh": 0.0,
        "source": "umeter",
    }
    assert admin.get("/api/v1/meters/grid/intervals", params={**RANGE, "source": "amsreader"}).json() == []
    rows = csv_rows(
        admin.get("/api/v1/meters/grid/intervals", params={**RANGE, "format": "csv"}),
        header=["meter", "start", "end", "energy_import_kwh", "energy_export_kwh", "source"],
    )
    assert len(rows) == 8
    assert len(xml_root(admin.get("/api/v1/meters/grid/intervals", params={**RANGE, "format": "xml"}))) == 8
