"""The simulated meter's local API (``/monitorjson``) on loopback: its layouts, its login, and our
device connector reading it (tests/test_iammeter_pypi_client.py reads it with the PyPI client)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.simservers import Sim, simulator

from meterhub.model import Meter, Reading
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.base import ConnectorContext, QuotaGuard, TokenCache
from meterhub.vendors.iammeter.connector import IammeterConnector

pytestmark = pytest.mark.anyio

START = datetime(2026, 6, 10, 12, 30, tzinfo=UTC)  # midday: the farm's PV exports
THREE_PHASE, ONE_PHASE = "3FE34ABE", "DA2BED94"


def switch(sim: Sim, **variants: bool) -> None:
    sim._control("POST", "/_sim/variants", variants)


def monitorjson(sim: Sim, auth: tuple[str, str] | None = ("admin", "admin")) -> httpx.Response:
    return httpx.get(f"{sim.base_url}/monitorjson", auth=auth, timeout=10)


@pytest.fixture
def three_phase() -> Any:
    with simulator("iammeter", speed=0.0, start=START) as sim:
        yield sim


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


async def read_device(sim: Sim, http: httpx.AsyncClient, tmp_path: Path, **options: str) -> list[Reading]:
    store = SQLiteStore(tmp_path / "device.db")
    try:
        meter = Meter("dev", "iammeter", 3, "Europe/Oslo", 2, "",
                      {"source": "device", "base_url": sim.base_url, **options})
        context = ConnectorContext(http, TokenCache(store, "iammeter"),
                                   QuotaGuard(store, "iammeter", IammeterConnector.quotas), lambda: START)
        return (await IammeterConnector(meter, context).latest()).readings
    finally:
        store.close()


def test_the_device_asks_for_basic_auth(three_phase: Sim) -> None:
    refused = monitorjson(three_phase, None)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].lower().startswith("basic")
    assert monitorjson(three_phase, ("admin", "nimda")).status_code == 401
    assert monitorjson(three_phase).status_code == 200


def test_the_default_layout_is_the_wem3080t_answer(three_phase: Sim) -> None:
    answer = monitorjson(three_phase).json()
    assert list(answer) == ["method", "mac", "version", "server", "SN", "Datas"]  # as the captured one
    assert (answer["SN"], answer["version"], answer["server"]) == (THREE_PHASE, "1.72.7", "em")
    assert [len(row) for row in answer["Datas"]] == [7, 7, 7]


def test_the_variants_switch_the_layout(three_phase: Sim) -> None:
    switch(three_phase, monitorjson_nem=True)
    nem = monitorjson(three_phase).json()["Datas"]
    assert len(nem) == 4
    assert nem[3][2] == pytest.approx(sum(row[2] for row in nem[:3]), abs=2)  # the net of the phases
    switch(three_phase, monitorjson_nem=False, monitorjson_reactive=True)
    answer = monitorjson(three_phase).json()
    assert len(answer["Datas"]) == 3 and [len(row) for row in answer["EA"]["Reactive"]] == [3, 3, 3]
    switch(three_phase, monitorjson_reactive=False, monitorjson_legacy=True)
    legacy = monitorjson(three_phase).json()
    assert list(legacy) == ["status", "data"] and legacy["status"] == "succeed" and len(legacy["data"]) == 5
    assert sorted(three_phase._control("GET", "/_sim/variants")) == [
        "account_new_york", "monitorjson_legacy", "monitorjson_nem", "monitorjson_reactive",
    ]


async def test_the_device_reads_the_same_physics_as_the_cloud(
    three_phase: Sim, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    device = {r.phase: r for r in await read_device(three_phase, http, tmp_path)}
    token = three_phase.info()["token"]
    answer = await http.get(f"{three_phase.base_url}/api/v1/site/meterdata2/{THREE_PHASE}",
                            params={"token": token})
    cloud = answer.json()["data"]["values"]
    for phase, row in enumerate(cloud, 1):  # the cloud's is the last upload, within a minute of now
        assert device[phase].voltage_v == pytest.approx(row[0], abs=15)
        assert device[phase].energy_import_kwh == pytest.approx(row[4], abs=0.2)
        assert device[phase].energy_export_kwh == pytest.approx(row[5], abs=0.2)
    assert device[0].power_w == pytest.approx(sum(device[p].power_w or 0.0 for p in (1, 2, 3)))


async def test_our_connector_reads_every_layout(
    three_phase: Sim, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    plain = {r.phase: r for r in await read_device(three_phase, http, tmp_path)}
    switch(three_phase, monitorjson_nem=True, monitorjson_reactive=True)
    nem = {r.phase: r for r in await read_device(three_phase, http, tmp_path)}
    assert nem[0].power_w == monitorjson(three_phase).json()["Datas"][3][2]  # the net row is phase 0
    assert nem[1].reactive_power_var is not None and plain[1].reactive_power_var is None
    assert nem[1].reactive_export_kvarh == pytest.approx(0.6 * (nem[1].energy_import_kwh or 0.0), abs=0.01)
    switch(three_phase, monitorjson_nem=False, monitorjson_reactive=False, monitorjson_legacy=True)
    legacy = await read_device(three_phase, http, tmp_path)
    assert [r.phase for r in legacy] == [0]
    assert legacy[0].energy_import_kwh == pytest.approx(plain[1].energy_import_kwh, abs=0.01)


FIXTURES = Path(__file__).parents[2] / "fixtures" / "iammeter"


@pytest.mark.parametrize(
    ("device_sn", "variants", "captured"),
    [
        (ONE_PHASE, {}, "monitorjson_1phase_fw_i.91.063T2.json"),
        (THREE_PHASE, {}, "monitorjson_3phase_wem3080T_fw1.72.7.json"),
        (ONE_PHASE, {"monitorjson_legacy": True}, "monitorjson_1phase_legacy_wem3162.json"),
    ],
)
def test_each_layout_has_the_captured_answers_fields_in_their_order(
    device_sn: str, variants: dict[str, bool], captured: str
) -> None:
    real = json.loads((FIXTURES / captured).read_text(encoding="utf-8"))
    with simulator("iammeter", speed=0.0, start=START, device_sn=device_sn) as sim:
        if variants:
            switch(sim, **variants)
        answer = monitorjson(sim).json()
    assert list(answer) == list(real)
    rows = [row for key in ("Data", "Datas", "data") if key in real for row in _rows(real[key])]
    assert [len(row) for key in ("Data", "Datas", "data") if key in answer for row in _rows(answer[key])] == [
        len(row) for row in rows
    ]
    assert {key: answer[key] for key in ("method", "version", "server", "status") if key in real} == {
        key: real[key] for key in ("method", "version", "server", "status") if key in real
    }


def _rows(values: list[Any]) -> list[list[Any]]:
    return values if values and isinstance(values[0], list) else [values]
