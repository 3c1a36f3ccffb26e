"""One id rule everywhere: what the API refuses, a file, the store and a config refuse too.

Every id the rule accepts is reachable over HTTP once created by any path; every id it refuses
creates nothing anywhere. CSV answers neutralise formula-leading text and keep numbers.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from meterhub.api import security
from meterhub.errors import ConfigError, InputError
from meterhub.ids import id_problem
from meterhub.importer import import_file
from meterhub.model import Meter, Place, PricePoint, Reading
from meterhub.poller.config import parse_config
from meterhub.store import open_store
from tests.api.conftest import ApiServer
from tests.api.formats import csv_rows, problem

BAD_IDS = [
    "ams\x00",
    "../../etc/passwd",
    "a" * 100_000,
    "a" * 65,
    '=HYPERLINK("http://x")',
    "+1",
    "-1",
    "@SUM(A1)",
    "\tx",
    "house grid",
    "house/grid",
    "hus-ø",
    "x\n",
    "",
]
GOOD_IDS = ["a", "9", "Grid-1:a_b.c", "a" * 64, "1.2.3", "x-"]


@pytest.mark.parametrize("meter_id", BAD_IDS)
def test_the_api_and_the_store_refuse_the_same_bad_ids(
    api: ApiServer, admin: httpx.Client, meter_id: str
) -> None:
    assert id_problem(meter_id) is not None
    problem(admin.post("/api/v1/meters", json={"id": meter_id, "vendor": "file"}), 422)
    problem(admin.post("/api/v1/places", json={"id": meter_id, "tz": "UTC"}), 422)
    with pytest.raises(InputError, match=r"^meter id "):
        api.store.add_meter(Meter(meter_id, "file"))
    with pytest.raises(InputError, match=r"^place id "):
        api.store.add_place(Place(meter_id, "UTC"))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(InputError, match=r"^price series "):
        api.store.write_prices([PricePoint(at, at.replace(hour=1), 1.0, "EUR", series=meter_id)])
    assert admin.get("/api/v1/meters").json() == []
    assert admin.get("/api/v1/places").json() == []


@pytest.mark.parametrize("meter_id", GOOD_IDS)
def test_every_good_id_is_reachable_whichever_way_it_was_created(
    api: ApiServer, admin: httpx.Client, tmp_path: Path, meter_id: str
) -> None:
    assert id_problem(meter_id) is None
    path = tmp_path / "one.csv"
    path.write_text(f"meter,ts,power_w\n{meter_id},2026-01-01T00:00:00Z,-250.0\n")
    report = import_file(api.store, path, None)
    assert (report.stored, report.rejected_count) == (1, 0)
    shown = admin.get(f"/api/v1/meters/{quote(meter_id, safe='')}")
    assert shown.status_code == 200 and shown.json()["id"] == meter_id
    api_id = f"{meter_id[:62]}-2"
    assert admin.post("/api/v1/meters", json={"id": api_id, "vendor": "file"}).status_code == 201
    assert admin.get(f"/api/v1/meters/{quote(api_id, safe='')}").status_code == 200
    assert admin.post("/api/v1/places", json={"id": meter_id, "tz": "UTC"}).status_code == 201
    assert admin.get(f"/api/v1/places/{quote(meter_id, safe='')}").status_code == 200


def test_an_import_creates_no_meter_the_api_would_refuse(
    api: ApiServer, admin: httpx.Client, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.ndjson"
    lines = [
        json.dumps({"meter": meter_id, "ts": 1767225600, "power_w": 1})
        for meter_id in ["../../etc/passwd", "=cmd", "a" * 65, "ok-1"]
    ]
    path.write_text("\n".join(lines) + "\n")
    report = import_file(api.store, path, None)
    assert (report.stored, report.rejected_count) == (1, 3)
    assert [r.where for r in report.rejections] == ["line 1", "line 2", "line 3"]
    assert [m["id"] for m in admin.get("/api/v1/meters").json()] == ["ok-1"]


def test_user_and_key_names_follow_their_rules(api: ApiServer, admin: httpx.Client) -> None:
    for name in ["", "../x", "=x", "a b", "a\x00", "a" * 65]:
        with pytest.raises(InputError, match=r"^user name "):
            security.check_user_name(name)
    assert security.check_user_name("mia@example.org") == "mia@example.org"
    for label in ["a\x00b", "line\nbreak", "x" * 101]:
        with pytest.raises(InputError, match=r"^key name "):
            security.issue_api_key(api.store, "admin", label)
        problem(admin.post("/api/v1/keys", json={"name": label}), 422)
    assert admin.post("/api/v1/keys", json={"name": "=still a label, shown safely"}).status_code == 201


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"meters": [{"id": "../x", "vendor": "file"}]}, "meter id '../x' must start with a letter or digit"),
        ({"meters": [{"id": "a\x00", "vendor": "file"}]}, "meter id 'a\\x00' may hold only"),
        ({"mqtt": [{"topic": "ams/a", "meter_id": "=x"}]}, "meter id '=x' must start"),
        (
            {"mqtt": [{"topic": "ams/+", "devices": {"ams/a": "ok", "ams/b": "b/c"}}]},
            "meter id 'b/c' may hold",
        ),
    ],
)
def test_config_meters_and_mqtt_device_maps_follow_the_id_rule(
    document: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=r"^meterhub.toml: ") as caught:
        parse_config(document)
    assert message in str(caught.value)


def test_api_csv_neutralises_formula_text_and_keeps_numbers(api: ApiServer, admin: httpx.Client) -> None:
    created = admin.post(
        "/api/v1/meters", json={"id": "m1", "vendor": "file", "name": '=HYPERLINK("http://x")'}
    )
    assert created.status_code == 201, created.text
    api.store.write_readings([Reading("m1", datetime(2026, 1, 1, tzinfo=UTC), 0, power_w=-250.0)])
    rows = csv_rows(admin.get("/api/v1/meters", params={"format": "csv"}))
    assert rows[0]["name"] == '\'=HYPERLINK("http://x")'
    latest = csv_rows(admin.get("/api/v1/latest", params={"format": "csv"}))
    assert latest[0]["power_w"] == "-250.0"
    exported = admin.get(
        "/api/v1/export", params={"start": "2025-12-31", "end": "2026-01-02", "format": "csv"}
    )
    assert exported.status_code == 200
    row = next(csv.DictReader(io.StringIO(exported.text)))
    assert (row["meter"], row["power_w"]) == ("m1", "-250.0")


def test_api_export_csv_neutralises_a_formula_meter_id_of_an_old_database(
    api: ApiServer, admin: httpx.Client
) -> None:
    api.store.add_meter(Meter("m1", "file"))
    with sqlite3.connect(api.database_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE meters SET id = '@SUM(1+1)' WHERE id = 'm1'")
    fresh = open_store(api.database_url)
    try:
        fresh.write_readings([Reading("@SUM(1+1)", datetime(2026, 1, 1, tzinfo=UTC), 0, power_w=-5.0)])
    finally:
        fresh.close()
    exported = admin.get(
        "/api/v1/export", params={"start": "2025-12-31", "end": "2026-01-02", "format": "csv"}
    )
    row = next(csv.DictReader(io.StringIO(exported.text)))
    assert (row["meter"], row["power_w"]) == ("'@SUM(1+1)", "-5.0")
