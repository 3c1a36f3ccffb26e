"""The PyPI ``iammeter`` client (what Home Assistant's core integration reads meters with) against
the simulated meter's ``/monitorjson`` on loopback, compared with what our device connector reads.

The client is loaded from its installed file under another module name: the test package
``tests/vendors/iammeter`` is importable as ``iammeter`` in this test session.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from importlib.metadata import distribution
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import httpx
import pytest

from meterhub.model import Meter, Reading
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.base import ConnectorContext, QuotaGuard, TokenCache
from meterhub.vendors.iammeter.connector import IammeterConnector
from tests.simservers import Sim, simulator

pytestmark = pytest.mark.anyio

START = datetime(2026, 6, 10, 12, 30, tzinfo=UTC)  # midday: the farm's PV exports
THREE_PHASE, ONE_PHASE = "3FE34ABE", "DA2BED94"


def _pypi_client() -> ModuleType:
    path = Path(str(distribution("iammeter").locate_file("iammeter/client.py")))
    spec = importlib.util.spec_from_file_location("pypi_iammeter_client", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PYPI = _pypi_client()


def pypi_read(sim: Sim) -> dict[str, Any]:
    """Read the meter as the client does: GET http://admin:admin@HOST:PORT/monitorjson."""
    host, port = sim.base_url.removeprefix("http://").split(":")
    return dict(PYPI.IamMeter(host, int(port)).measurement)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


@pytest.fixture
def three_phase() -> Iterator[Sim]:
    with simulator("iammeter", speed=0.0, start=START) as sim:
        yield sim


async def ours(sim: Sim, http: httpx.AsyncClient, tmp_path: Path) -> dict[int, Reading]:
    store = SQLiteStore(tmp_path / "device.db")
    try:
        options = {"source": "device", "base_url": sim.base_url}
        meter = Meter("dev", "iammeter", 3, "Europe/Oslo", 2, "", options)
        context = ConnectorContext(http, TokenCache(store, "iammeter"),
                                   QuotaGuard(store, "iammeter", IammeterConnector.quotas), lambda: START)
        return {r.phase: r for r in (await IammeterConnector(meter, context).latest()).readings}
    finally:
        store.close()


async def test_the_pypi_client_reads_a_three_phase_meter(
    three_phase: Sim, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    mine = await ours(three_phase, http, tmp_path)
    theirs = await anyio.to_thread.run_sync(pypi_read, three_phase)
    assert (theirs["Model"], theirs["sn"]) == ("WEM3080T", THREE_PHASE)
    for phase, letter in ((1, "A"), (2, "B"), (3, "C")):
        assert theirs[f"Voltage_{letter}"] == mine[phase].voltage_v
        assert theirs[f"Current_{letter}"] == mine[phase].current_a
        assert theirs[f"Power_{letter}"] == mine[phase].power_w
        assert theirs[f"ImportEnergy_{letter}"] == mine[phase].energy_import_kwh
        assert theirs[f"ExportGrid_{letter}"] == mine[phase].energy_export_kwh
        assert theirs[f"Frequency_{letter}"] == mine[phase].frequency_hz
        assert theirs[f"PF_{letter}"] == mine[phase].power_factor
    assert theirs["Power_A"] + theirs["Power_B"] + theirs["Power_C"] < 0  # midday: the farm's PV exports
    assert 200 < theirs["Voltage_A"] < 260 and 49 < theirs["Frequency_A"] < 51


async def test_the_pypi_client_reads_the_net_row_of_nem_mode(three_phase: Sim) -> None:
    three_phase._control("POST", "/_sim/variants", {"monitorjson_nem": True})
    theirs = await anyio.to_thread.run_sync(pypi_read, three_phase)
    phases_w = theirs["Power_A"] + theirs["Power_B"] + theirs["Power_C"]
    assert theirs["Power_Net"] == pytest.approx(phases_w, abs=2)
    assert theirs["ImportEnergy_Net"] == pytest.approx(
        theirs["ImportEnergy_A"] + theirs["ImportEnergy_B"] + theirs["ImportEnergy_C"], abs=0.03
    )


async def test_the_pypi_client_reads_a_single_phase_meter(http: httpx.AsyncClient, tmp_path: Path) -> None:
    with simulator("iammeter", speed=0.0, start=START, device_sn=ONE_PHASE) as sim:
        mine = (await ours(sim, http, tmp_path))[0]
        theirs = await anyio.to_thread.run_sync(pypi_read, sim)
    assert (theirs["Model"], theirs["sn"]) == ("WEM3080", ONE_PHASE)
    assert (theirs["Voltage"], theirs["Current"]) == (mine.voltage_v, mine.current_a)
    assert theirs["Power"] == mine.power_w
    assert (theirs["ImportEnergy"], theirs["ExportGrid"]) == (mine.energy_import_kwh, mine.energy_export_kwh)
    assert theirs["Power"] > 0 and theirs["ImportEnergy"] > 1766.59  # the flat's register only grows
