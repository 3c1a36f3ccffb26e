"""One snake_case vocabulary with units, and numbers rounded to their quantity, in every API format.

The household's readings carry binary noise (currents like 3.4782608695652173 A, registers summed
minute by minute); every answer of the data routes, in JSON, CSV, XML, YAML and NDJSON, is
checked key by key.
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
import yaml

from tests.api.conftest import ApiServer
from tests.api.seeding import END, RANGE, START, seed_household

MAX_DECIMALS = [
    ("power_factor", 3),
    ("_per_kwh", 5),
    ("_kwh", 3),
    ("_kvarh", 3),
    ("_var", 2),
    ("_w", 2),
    ("_v", 2),
    ("_a", 3),
    ("_hz", 2),
    ("_ratio", 4),
    ("_min", 3),
    ("_s", 3),
    ("_cost", 5),
    ("_credit", 5),
    ("fees", 5),
]
"""The documented precision of each unit (the README's table), the more specific first."""
RAW_READING_ROUTES = {"/api/v1/latest", "/api/v1/meters/grid/latest", "/api/v1/export"}
"""Routes of raw readings, whose registers keep the store's precision (6 decimals, a mWh)."""
REGISTERS = ("energy_import_kwh", "energy_export_kwh", "reactive_import_kvarh", "reactive_export_kvarh")
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
FORMER_KEYS = {"fromGrid", "toGrid", "selfUse", "specialLoad", "selfSufficiency", "yield", "groupby"}

ROUTES = [
    ("/api/v1/meters/grid/readings", {"bucket": "1h"}),
    ("/api/v1/meters/grid/readings", {"points": "7"}),
    ("/api/v1/latest", {}),
    ("/api/v1/meters/grid/latest", {}),
    ("/api/v1/meters/grid/energy", {"bucket": "1h"}),
    ("/api/v1/places/home/energy", {"bucket": "1h"}),
    ("/api/v1/meters/grid/cost", {"bucket": "1h"}),
    ("/api/v1/places/home/cost", {}),
    ("/api/v1/meters/grid/analysis/power", {}),
    ("/api/v1/meters/grid/analysis/offline", {}),
    ("/api/v1/meters/grid/intervals", {}),
    ("/api/v1/export", {"meter": "grid"}),
]


@pytest.fixture
def hub(api: ApiServer) -> ApiServer:
    seed_household(api.store)
    return api


def allowed_decimals(key: str, raw: bool = False) -> int | None:
    if raw and key in REGISTERS:
        return 6
    for suffix, decimals in MAX_DECIMALS:
        if key == suffix.lstrip("_") or key.endswith(suffix):
            return decimals
    return None


def decimals(text: str) -> int:
    """Return the digits after the point of a number as written (0 for a whole number)."""
    mantissa = text.lower().split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def check_json(value: Any, key: str, seen: dict[str, int], raw: bool = False) -> None:
    """Check every key and number under ``value``; count the floats checked per key."""
    if isinstance(value, dict):
        for child_key, child in value.items():
            assert SNAKE.match(child_key), child_key
            assert child_key not in FORMER_KEYS
            check_json(child, child_key, seen, raw)
    elif isinstance(value, list):
        for child in value:
            check_json(child, key, seen, raw)
    elif isinstance(value, float):
        check_text(key, repr(value), seen, raw)


def check_text(key: str, text: str, seen: dict[str, int], raw: bool = False) -> None:
    allowed = allowed_decimals(key, raw)
    if allowed is None:
        return
    assert decimals(text) <= allowed, f"{key}={text} has more than {allowed} decimals"
    seen[key] = seen.get(key, 0) + 1


def is_number(text: str) -> bool:
    return re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", text) is not None


@pytest.mark.parametrize(("path", "params"), ROUTES)
def test_every_format_holds_snake_case_keys_and_rounded_numbers(
    hub: ApiServer, admin: httpx.Client, path: str, params: dict[str, str]
) -> None:
    query = {**RANGE, **params}
    raw = path in RAW_READING_ROUTES
    body = admin.get(path, params={**query, "format": "json"})
    assert body.status_code == 200, body.text
    seen: dict[str, int] = {}
    check_json(body.json(), "", seen, raw)
    assert seen, "the answer holds quantities to check"
    # The same in CSV, YAML and NDJSON rows and in XML elements.
    table = admin.get(path, params={**query, "format": "csv"})
    assert table.status_code == 200, table.text
    for row in csv.DictReader(io.StringIO(table.text)):
        for key, cell in row.items():
            assert SNAKE.match(key), key
            if is_number(cell):
                check_text(key, cell, {}, raw)
    check_json(yaml.safe_load(admin.get(path, params={**query, "format": "yaml"}).text), "", {}, raw)
    for line in admin.get(path, params={**query, "format": "ndjson"}).text.splitlines():
        check_json(json.loads(line), "", {}, raw)
    root = ET.fromstring(admin.get(path, params={**query, "format": "xml"}).content)
    for element in root.iter():
        text = (element.text or "").strip()
        if element.tag != "item" and is_number(text):
            check_text(element.tag, text, {}, raw)


def test_noise_is_rounded_away_registers_keep_their_precision(hub: ApiServer, admin: httpx.Client) -> None:
    answer = admin.get("/api/v1/export", params={**RANGE, "meter": "grid", "format": "ndjson"})
    exported = [json.loads(line) for line in answer.text.splitlines()][:400]
    stored = list(hub.store.iter_readings(["grid"], START, END))[:400]
    assert [(r["ts"], r["phase"]) for r in exported] == [(r.ts.isoformat(), r.phase) for r in stored]
    noisy = [r.power_w for r in stored if r.power_w is not None and decimals(repr(r.power_w)) > 2]
    assert noisy, "the stored powers carry more digits than a hundredth of a watt"
    for row, reading in zip(exported, stored, strict=True):
        for name, places in (("current_a", 3), ("power_w", 2), ("voltage_v", 2), ("energy_import_kwh", 6)):
            value = getattr(reading, name)
            if value is None:
                continue
            assert abs(row[name] - value) <= 0.5 * 10**-places + 1e-9, (name, row[name], value)
            assert decimals(repr(row[name])) <= places, (name, row[name])
        assert row["energy_import_kwh"] == reading.energy_import_kwh  # a register as stored, to the mWh
    assert any(decimals(repr(r["energy_import_kwh"])) > 3 for r in exported)  # finer than a Wh: kept


def test_place_energy_and_cost_speak_the_one_vocabulary(hub: ApiServer, admin: httpx.Client) -> None:
    energy = admin.get("/api/v1/places/home/energy", params=RANGE).json()
    assert set(energy) == {"place", "bucket", "tz", "data"}
    assert list(energy["data"][0]) == [
        "start", "end", "yield_kwh", "from_grid_kwh", "to_grid_kwh", "special_load_kwh", "self_use_kwh",
        "consumption_kwh", "self_sufficiency_ratio", "source", "estimated",
    ]  # fmt: skip
    cost = admin.get("/api/v1/places/home/cost", params=RANGE).json()
    assert cost["place"] == "home" and "id" not in cost
    intervals = admin.get("/api/v1/meters/grid/intervals", params=RANGE).json()
    assert intervals[0]["energy_import_kwh"] == 0.25 and "import_kwh" not in intervals[0]


def test_weeks_begin_on_monday_at_local_midnight(hub: ApiServer, admin: httpx.Client) -> None:
    weeks = admin.get(
        "/api/v1/meters/grid/energy", params={**RANGE, "bucket": "1w"}
    ).json()  # the seeded days are Monday 2 and Tuesday 3 March 2026
    assert weeks["bucket"] == "1w"
    assert [(w["start"], w["end"]) for w in weeks["data"]] == [
        ("2026-03-02T00:00:00+01:00", "2026-03-09T00:00:00+01:00"),
    ]
    days = admin.get("/api/v1/meters/grid/energy", params=RANGE).json()["data"]
    assert len(days) == 3
    assert weeks["data"][0]["energy_import_kwh"] == pytest.approx(
        sum(d["energy_import_kwh"] for d in days), abs=5e-3
    )
    readings = admin.get("/api/v1/meters/grid/readings", params={**RANGE, "bucket": "week"}).json()
    assert readings["data"][0]["start"] == "2026-03-01T23:00:00+00:00"  # Monday's midnight in Oslo, in UTC
