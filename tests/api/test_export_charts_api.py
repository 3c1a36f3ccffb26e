"""``/api/v1/export`` (streamed, every format, reads back through import) and the PNG charts."""

from __future__ import annotations

import json
import threading
import tracemalloc
from pathlib import Path

import httpx
import pytest
import yaml

from meterhub.importer import import_file
from meterhub.store.sqlite import SQLiteStore
from tests.api.conftest import ApiServer
from tests.api.formats import csv_rows, png_size, problem, xml_root
from tests.api.seeding import END, RANGE, START, seed_household

COLUMNS = [
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
]
ONE_HOUR = {"start": START.isoformat(), "end": "2026-03-02T01:00:00+00:00"}


@pytest.fixture
def hub(api: ApiServer) -> ApiServer:
    """Return the running hub with the household seeded."""
    seed_household(api.store)
    return api


def test_export_requires_auth_and_hides_unshared_meters(hub: ApiServer, anon: httpx.Client) -> None:
    problem(anon.get("/api/v1/export", params=RANGE), 401)
    member = hub.user("mia", "member", [("meter", "solar")])
    rows = csv_rows(member.get("/api/v1/export", params=ONE_HOUR), COLUMNS)
    assert {r["meter"] for r in rows} == {"solar"} and len(rows) == 60
    problem(member.get("/api/v1/export", params={**ONE_HOUR, "meter": "grid"}), 404)


def test_export_in_every_format(hub: ApiServer, admin: httpx.Client) -> None:
    params = {**ONE_HOUR, "meter": ["grid", "solar"]}
    rows = csv_rows(admin.get("/api/v1/export", params=params), COLUMNS)
    assert len(rows) == 60 * 4 + 60 and rows[0]["meter"] == "grid" and rows[0]["phase"] == "0"
    ndjson = admin.get("/api/v1/export", params={**params, "format": "ndjson"})
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    records = [json.loads(line) for line in ndjson.text.splitlines()]
    assert len(records) == len(rows) and records[0]["ts"] == "2026-03-02T00:00:00+00:00"
    array = admin.get("/api/v1/export", params={**params, "format": "json"}).json()
    assert len(array) == len(rows) and list(array[0]) == COLUMNS
    root = xml_root(admin.get("/api/v1/export", params={**params, "format": "xml"}))
    assert root.tag == "readings" and len(root) == len(rows)
    loaded = yaml.safe_load(admin.get("/api/v1/export", params={**params, "format": "yaml"}).text)
    assert len(loaded) == len(rows)
    by_accept = admin.get("/api/v1/export", params=params, headers={"Accept": "application/x-ndjson"})
    assert by_accept.headers["content-type"].startswith("application/x-ndjson")
    empty = admin.get("/api/v1/export", params={"start": "2020-01-01", "end": "2020-01-02"})
    assert empty.text.splitlines() == [",".join(COLUMNS)]  # the header even without rows
    problem(admin.get("/api/v1/export", params={**params, "format": "html"}), 422)
    problem(admin.get("/api/v1/export", params={"phase": 9}), 422)


def test_exported_csv_reads_back_through_import(hub: ApiServer, admin: httpx.Client, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(admin.get("/api/v1/export", params=RANGE).content)
    fresh = SQLiteStore(tmp_path / "copy.db")
    try:
        report = import_file(fresh, path, None)
        assert report.rejected_count == 0
        assert report.stored == sum(1 for _ in hub.store.iter_readings(None, START, END)) > 10_000
    finally:
        fresh.close()


def test_export_streams_in_constant_memory(hub: ApiServer, admin: httpx.Client) -> None:
    def peak_bytes(params: dict[str, str]) -> tuple[int, int, int]:
        tracemalloc.start()
        try:
            total = chunks = 0
            with admin.stream("GET", "/api/v1/export", params={**params, "format": "ndjson"}) as answer:
                assert answer.headers.get("transfer-encoding") == "chunked"
                assert "content-length" not in answer.headers
                for chunk in answer.iter_raw():
                    total += len(chunk)
                    chunks += 1
            return tracemalloc.get_traced_memory()[1], total, chunks
        finally:
            tracemalloc.stop()

    quarter_day = {"start": START.isoformat(), "end": "2026-03-02T06:00:00+00:00"}
    peak_bytes(ONE_HOUR)  # warm up: imports, caches, the first connection
    small_peak, small_bytes, _ = peak_bytes(quarter_day)
    large_peak, large_bytes, chunks = peak_bytes(RANGE)
    assert large_bytes > 7 * small_bytes and chunks > 10
    # Eight times the rows, about the same memory: rows are sent as they are read.
    assert large_peak < 1.5 * small_peak, (small_peak, large_peak, large_bytes)


@pytest.mark.parametrize("kind", ["line", "bar", "pie"])
def test_meter_and_place_charts_are_pngs_of_the_asked_size(
    hub: ApiServer, admin: httpx.Client, kind: str
) -> None:
    meter = admin.get(
        "/api/v1/meters/grid/chart.png", params={**RANGE, "type": kind, "width": 640, "height": 360}
    )
    assert png_size(meter) == (640, 360)
    place = admin.get(
        "/api/v1/places/home/chart.png", params={**RANGE, "type": kind, "width": 333, "height": 257}
    )
    assert png_size(place) == (333, 257)
    quiet = admin.get(
        "/api/v1/meters/grid/chart.png", params={"type": kind, "start": "2020-01-01", "end": "2020-01-02"}
    )
    assert png_size(quiet) == (800, 400)


def test_charts_are_drawn_side_by_side(hub: ApiServer, admin: httpx.Client) -> None:
    sizes: list[tuple[int, int]] = []

    def draw(width: int) -> None:
        sizes.append(png_size(admin.get("/api/v1/places/home/chart.png", params={**RANGE, "width": width})))

    threads = [threading.Thread(target=draw, args=(300 + n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(sizes) == [(300 + n, 400) for n in range(4)]


def test_charts_check_access_and_bounds(hub: ApiServer, anon: httpx.Client, admin: httpx.Client) -> None:
    problem(anon.get("/api/v1/meters/grid/chart.png"), 401)
    problem(anon.get("/api/v1/places/home/chart.png"), 401)
    member = hub.user("mia", "member", [("meter", "grid")])
    assert png_size(member.get("/api/v1/meters/grid/chart.png", params=RANGE)) == (800, 400)
    problem(member.get("/api/v1/meters/secret/chart.png"), 404)
    problem(member.get("/api/v1/places/home/chart.png"), 404)
    for bad in ({"width": 99}, {"width": 3001}, {"height": 2001}, {"type": "radar"}, {"start": "garbage"}):
        problem(admin.get("/api/v1/meters/grid/chart.png", params=bad), 422)
    admin.post("/api/v1/places", json={"id": "empty", "tz": "UTC"})
    assert "no meters" in problem(admin.get("/api/v1/places/empty/chart.png"), 422)["detail"]
