"""data.json variants of real firmware: L2 current flag, unset clock, flat layout, unreported zeros.

Fixtures follow the firmware's data.json templates (see tests/fixtures/README.md); the expected
readings below are read off the fixture text by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests import simservers

from meterhub.model import Meter, Reading
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.amsreader import mapping
from meterhub.vendors.amsreader.connector import AmsReaderConnector
from meterhub.vendors.amsreader.simulator import create_app
from meterhub.vendors.base import ConnectorContext, QuotaGuard, TokenCache

FIXTURES = Path(__file__).parents[2] / "fixtures" / "amsreader"
RECEIVED = datetime(2026, 3, 15, 12, 35, tzinfo=UTC)
START = datetime(2026, 3, 15, 12, 34, 56, tzinfo=UTC)
CURRENT = (2, 3, 9)
OLD = (2, 2, 24)


def fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text()))


# --- mapping on the fixtures ----------------------------------------------------------------------
def test_current_firmware_with_l2_current_reported() -> None:
    fetched = mapping.map_data_json(fixture("data-v2.3-kamstrup-list4.json"), "ams", RECEIVED, CURRENT)
    ts = datetime(2026, 3, 15, 12, 34, 56, tzinfo=UTC)  # c = 1773578096
    assert fetched.readings == [
        Reading(
            "ams", ts, 0, power_w=2100.0, reactive_power_var=300.0, power_factor=0.95,
            energy_import_kwh=15234.567, energy_export_kwh=0.0,
            reactive_import_kvarh=1020.5, reactive_export_kvarh=2.0,
        ),
        Reading("ams", ts, 1, voltage_v=231.2, current_a=4.1, power_w=900.0, power_factor=0.95),
        Reading("ams", ts, 2, voltage_v=229.8, current_a=7.0, power_w=1600.0, power_factor=0.99),
        Reading("ams", ts, 3, voltage_v=230.5, current_a=1.9, power_w=-400.0, power_factor=0.9),
    ]  # fmt: skip
    names = {extra.name for extra in fetched.extras}
    assert "temperature_c" not in names  # t = -127: no sensor
    assert "rssi_dbm" in names


def test_it_grid_list2_meter_without_ntp() -> None:
    document = fixture("data-v2.3-kaifa-it-list2-no-ntp.json")
    fetched = mapping.map_data_json(document, "ams", RECEIVED, CURRENT)
    assert fetched.readings == [
        Reading("ams", RECEIVED, 0, power_w=1840.0, reactive_power_var=120.0),
        Reading("ams", RECEIVED, 1, voltage_v=232.1, current_a=8.2),
        Reading("ams", RECEIVED, 2, voltage_v=231.4),
        Reading("ams", RECEIVED, 3, voltage_v=230.9, current_a=7.9),
    ]
    assert all(extra.ts == RECEIVED for extra in fetched.extras)
    assert "temperature_c" not in {extra.name for extra in fetched.extras}


def test_flat_layout_of_older_firmware_keeps_every_phase() -> None:
    fetched = mapping.map_data_json(fixture("data-v2.2-flat.json"), "ams", RECEIVED, OLD)
    ts = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)  # c = 1700000000
    assert fetched.readings == [
        Reading(
            "ams", ts, 0, power_w=-3450.0, reactive_power_var=-210.0, power_factor=0.97,
            energy_import_kwh=8421.337, energy_export_kwh=1310.062,
            reactive_import_kvarh=400.1, reactive_export_kvarh=900.25,
        ),
        Reading("ams", ts, 1, voltage_v=229.5, current_a=5.1, power_factor=0.98),
        Reading("ams", ts, 2, voltage_v=230.2, current_a=4.9, power_factor=0.96),
        Reading("ams", ts, 3, voltage_v=231.0, current_a=5.3, power_factor=0.97),
    ]  # fmt: skip
    assert mapping.phases_in(fixture("data-v2.2-flat.json")) == 3


def test_flat_layout_drops_an_estimated_l2_current() -> None:
    document = fixture("data-v2.2-flat.json")
    document["i2e"] = True
    l2 = mapping.map_data_json(document, "ams", RECEIVED, OLD).readings[2]
    assert (l2.phase, l2.voltage_v, l2.current_a) == (2, 230.2, None)


def test_q_is_reactive_power_for_firmware_before_2_3() -> None:
    document = fixture("data-v2.3-kamstrup-list4.json")
    _, l1, _, l3 = mapping.map_data_json(document, "ams", RECEIVED, (2, 2, 9)).readings
    assert (l1.power_w, l1.reactive_power_var) == (900.0, 0.0)
    assert (l3.power_w, l3.reactive_power_var) == (0.0, 400.0)


def test_an_unknown_version_leaves_per_phase_power_out() -> None:
    document = fixture("data-v2.3-kamstrup-list4.json")
    _, l1, l2, l3 = mapping.map_data_json(document, "ams", RECEIVED, None).readings
    assert [r.power_w for r in (l1, l2, l3)] == [None, None, None]
    assert [r.current_a for r in (l1, l2, l3)] == [4.1, 7.0, 1.9]


def test_l2_current_missing_flag_drops_only_the_l2_current() -> None:
    document = fixture("data-v2.3-kamstrup-list4.json")
    document["l2"]["e"] = True
    l2 = mapping.map_data_json(document, "ams", RECEIVED, CURRENT).readings[2]
    assert l2 == Reading("ams", l2.ts, 2, voltage_v=229.8, power_w=1600.0, power_factor=0.99)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("v2.3.9", (2, 3, 9)),
        ("2.4.11", (2, 4, 11)),
        ("v2.5.0-rc1", (2, 5, 0)),
        ("e91ef1a9", None),
        ("", None),
        (5, None),
    ],
)
def test_firmware_version_from_sysinfo(version: object, expected: tuple[int, int, int] | None) -> None:
    assert mapping.firmware_version({"version": version}) == expected


@pytest.mark.parametrize(
    ("version", "export"), [((2, 2, 24), False), ((2, 3, 0), True), ((2, 4, 11), True), (None, None)]
)
def test_q_meaning_by_version(version: tuple[int, int, int] | None, export: bool | None) -> None:
    assert mapping.q_is_export(version) is export


@pytest.mark.parametrize(
    ("c", "unset"), [(0, True), (5012, True), (1_577_836_799, True), (1_577_836_800, False)]
)
def test_a_clock_before_2020_is_unset(c: int, unset: bool) -> None:
    document = fixture("data-v2.3-kamstrup-list4.json")
    document["c"] = c
    ts = mapping.map_data_json(document, "ams", RECEIVED, CURRENT).readings[0].ts
    assert ts == (RECEIVED if unset else datetime(2020, 1, 1, tzinfo=UTC))


# --- simulator -> connector -> store --------------------------------------------------------------
def stepping_clock() -> Callable[[], datetime]:
    ticks = [START]

    def now() -> datetime:
        ticks[0] += timedelta(seconds=3)
        return ticks[0]

    return now


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def read_into_store(store: SQLiteStore, **options: Any) -> tuple[list[Reading], dict[str, Any], Any]:
    """Serve a reader with ``options`` on loopback, take its latest into ``store``, read it back."""
    app = create_app(seed=3, speed=0.0, start=START, **options)
    meter_id = "ams"
    with simservers.served(app) as url:
        async with httpx.AsyncClient() as http:
            meter = Meter(
                meter_id, "amsreader", phases=3, tz="Europe/Oslo", interval_s=10, options={"base_url": url}
            )
            store.add_meter(meter)
            context = ConnectorContext(
                client=http,
                tokens=TokenCache(store, "amsreader"),
                quotas=QuotaGuard(store, "amsreader", AmsReaderConnector.quotas, now=stepping_clock()),
                now=app.state.device.clock.now,
            )
            fetched = await AmsReaderConnector(meter, context).latest()
            data = (await http.get(f"{url}/data.json")).json()
            calls = (await http.get(f"{url}/_sim/calls")).json()
    store.write_readings(fetched.readings)
    store.write_extras(fetched.extras)
    stored = sorted(store.latest([meter_id], phase=None), key=lambda reading: reading.phase)
    return stored, data, calls


@pytest.mark.anyio
async def test_e2e_l2_current_reported_by_a_normal_three_phase_meter(store: SQLiteStore) -> None:
    stored, data, calls = await read_into_store(store)
    assert data["l2"]["e"] is False
    assert [reading.phase for reading in stored] == [0, 1, 2, 3]
    assert stored[2].current_a == data["l2"]["i"] and stored[2].current_a
    assert calls == {"/data.json": 2, "/sysinfo.json": 1}


@pytest.mark.anyio
async def test_e2e_it_grid_meter_without_l2_current(store: SQLiteStore) -> None:
    stored, data, _ = await read_into_store(store, distribution_system=1, l2_current_present=False)
    assert data["l2"]["e"] is True
    assert stored[2].phase == 2 and stored[2].current_a is None and stored[2].voltage_v == data["l2"]["u"]
    assert stored[1].current_a == data["l1"]["i"] and stored[3].current_a == data["l3"]["i"]


@pytest.mark.anyio
async def test_e2e_reader_without_ntp_is_stamped_on_receipt(store: SQLiteStore) -> None:
    stored, data, _ = await read_into_store(store, ntp=False)
    assert data["c"] == data["u"] == 0  # a frozen clock: no time has passed since boot
    assert {reading.ts for reading in stored} == {START}


@pytest.mark.anyio
async def test_e2e_older_firmware_flat_layout(store: SQLiteStore) -> None:
    stored, data, _ = await read_into_store(store, firmware_version="v2.2.24")
    assert "l1" not in data and data["i2e"] is False
    assert [reading.phase for reading in stored] == [0, 1, 2, 3]
    for reading in stored[1:]:
        n = reading.phase
        assert (reading.voltage_v, reading.current_a) == (data[f"u{n}"], data[f"i{n}"])
        assert reading.power_w is None and reading.power_factor == data[f"f{n}"]


@pytest.mark.anyio
async def test_e2e_list2_meter_stores_no_zeros_for_what_it_does_not_send(store: SQLiteStore) -> None:
    stored, data, _ = await read_into_store(store, list_type=2)
    assert (data["f"], data["ic"], data["l1"]["p"], data["l1"]["f"]) == (0.0, 0.0, 0, 0.0)
    total, *phases = stored
    assert total.power_factor is None and total.energy_import_kwh is None and total.energy_export_kwh is None
    assert total.power_w == data["i"] - data["e"]
    assert all(reading.power_w is None and reading.power_factor is None for reading in phases)
    assert all(reading.voltage_v for reading in phases)


@pytest.mark.anyio
async def test_e2e_no_temperature_sensor_stores_no_temperature(store: SQLiteStore) -> None:
    await read_into_store(store, temperature_sensor=False)
    assert store.extras("ams", "temperature_c", START - timedelta(days=1), START + timedelta(days=1)) == []


@pytest.mark.anyio
async def test_e2e_temperature_sensor_is_stored(store: SQLiteStore) -> None:
    _, data, _ = await read_into_store(store, temperature_sensor=True)
    [extra] = store.extras("ams", "temperature_c", START - timedelta(days=1), START + timedelta(days=1))
    assert extra.value == data["t"] != -127.0


def test_a_zero_power_factor_counts_when_the_meter_sends_power_factors() -> None:
    document = fixture("data-v2.3-kamstrup-list4.json")
    document["l3"]["f"] = 0.0
    _, l1, _, l3 = mapping.map_data_json(document, "ams", RECEIVED, CURRENT).readings
    assert (l1.power_factor, l3.power_factor) == (0.95, 0.0)
