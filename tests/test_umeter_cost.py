"""UMeter end to end: discovery gives the place the account's tariff, and the vendor's own cost is
shown beside the hub's, from the captured ``p4data.json`` served by the simulator on loopback,
through the connector and the store to ``meterhub cost`` and ``GET /api/v1/places/{id}/cost``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner, Result

from meterhub.cli import main
from meterhub.config import Settings
from meterhub.poller import Poller
from meterhub.store import open_store
from tests.api.conftest import ApiServer
from tests.simservers import Sim, simulator
from tests.steppedtime import stepped

FIXTURES = Path(__file__).parent / "fixtures" / "umeter"
CAPTURED_DAY = "20220928"  # p4data.json: 2022-09-28, a Wednesday, 96 quarter hours
NOW = datetime(2022, 9, 28, 22, 5, tzinfo=UTC)  # 00:05 the next day in Amsterdam: yesterday is read

# By hand from p4data.json: import 4.33 kWh in the normal (peak, 07-23 on weekdays) tariff and
# 2.72 kWh in the low one; the customer's pricePeak 0.26119, priceOffPeak 0.20976, flatFee 64.8 a
# year booked as 64.8 / 360 = 0.18 a day: 4.33 * 0.26119 + 2.72 * 0.20976 + 0.18 = 1.8815 (1.88149990).
HUB_COST_EUR = 1.8814999
# By hand: the 96 rows' totalCost add up to the captured explanation's excBtw:
# transport 0.70 + ODE 0.22 - tax reduction 1.87 + energy tax 0.26 + 1.13 + 0.57 + 0.18 = 1.19.
VENDOR_COST_EUR = 1.19


def captured(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    days = {CAPTURED_DAY: captured("p4data.json")}
    with simulator("umeter", speed=0.0, start=NOW, recorded_days=days) as served:
        credentials = served.info()["credentials"]
        monkeypatch.setenv("T_UM_USER", credentials["username"])
        monkeypatch.setenv("T_UM_PASSWORD", credentials["password"])
        yield served


def meterhub(db_url: str, *args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(main, ["--database-url", db_url, *args])
    if ok:
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def discover_and_poll(db_url: str, sim: Sim) -> str:
    """Add what the account holds and poll its meter once at the simulator's time (the next day).

    Return the meter's id, which is also its place's.
    """
    found = meterhub(db_url, "meters", "discover", "umeter", "--base-url", sim.base_url,
                     "--username-env", "T_UM_USER", "--password-env", "T_UM_PASSWORD",
                     "--add", "--format", "json")
    (meter,) = json.loads(found.stdout)
    assert f"added place {meter['id']} (Europe/Amsterdam, with the vendor's tariff)" in found.stderr
    meter_id: str = meter["id"]

    async def poll() -> None:
        store = open_store(db_url)
        try:
            async with stepped(NOW, sim.base_url) as (driver, client):
                outcome = await Poller(store, client, clock=driver.clock).poll_once(meter_id)
        finally:
            store.close()
        assert outcome.ok, outcome.error

    anyio.run(poll)
    return meter_id


def test_discovery_gives_the_place_the_accounts_tariff(db_url: str, sim: Sim) -> None:
    ean = sim.info()["eans"][0]
    found = meterhub(db_url, "meters", "discover", "umeter", "--base-url", sim.base_url,
                     "--username-env", "T_UM_USER", "--password-env", "T_UM_PASSWORD", "--add")
    assert found.exit_code == 0
    store = open_store(db_url)
    try:
        place = store.get_place(f"umeter-{ean}")
        meter = store.get_meter(f"umeter-{ean}")
    finally:
        store.close()
    assert (place.tz, place.name, meter.tz) == ("Europe/Amsterdam", "Thuis", "Europe/Amsterdam")
    assert [(m, role.value) for m, role in place.meters] == [(f"umeter-{ean}", "grid")]
    # the simulated customer's eEan as in customer.redacted.json: 0.26119, 0.20976, 64.8, 23 (default)
    assert place.tariff == {"currency": "EUR", "peak_per_kwh": 0.26119, "offpeak_per_kwh": 0.20976,
                            "fee_per_day": pytest.approx(0.18)}


def test_a_tariff_the_user_set_is_kept(db_url: str, sim: Sim) -> None:
    ean = sim.info()["eans"][0]
    meterhub(db_url, "places", "add", f"umeter-{ean}", "--tz", "Europe/Amsterdam")
    meterhub(db_url, "places", "tariff", f"umeter-{ean}", "--currency", "EUR", "--price", "0.3")
    meterhub(db_url, "meters", "discover", "umeter", "--base-url", sim.base_url,
             "--username-env", "T_UM_USER", "--password-env", "T_UM_PASSWORD", "--add")
    store = open_store(db_url)
    try:
        place = store.get_place(f"umeter-{ean}")
    finally:
        store.close()
    assert place.tariff == {"currency": "EUR", "import_per_kwh": 0.3}


def test_cli_cost_shows_the_vendors_cost_beside_the_hubs(db_url: str, sim: Sim) -> None:
    place_id = discover_and_poll(db_url, sim)
    answer = meterhub(db_url, "cost", "--place", place_id, "--start", "2022-09-28", "--end", "2022-09-29",
                      "--format", "json")
    (day,) = json.loads(answer.stdout)
    assert day["energy_import_kwh"] == pytest.approx(7.05)
    assert day["total_cost"] == pytest.approx(HUB_COST_EUR, abs=1e-6)
    assert day["vendor_cost"] == pytest.approx(VENDOR_COST_EUR, abs=0.005)
    assert day["currency"] == "EUR"
    table = meterhub(db_url, "cost", "--place", place_id, "--start", "2022-09-28", "--end", "2022-09-29")
    assert "cost of umeter-" in table.stdout and "(the vendor's: 1.19 EUR)" in table.stdout


def test_api_cost_shows_the_vendors_cost_beside_the_hubs(db_url: str, sim: Sim) -> None:
    place_id = discover_and_poll(db_url, sim)
    hub = ApiServer(db_url, Settings(database_url=db_url, api_rate_per_s=0)).start()
    try:
        client = hub.client(hub.admin_key)
        answer = client.get(f"/api/v1/places/{place_id}/cost",
                            params={"start": "2022-09-28", "end": "2022-09-30", "groupby": "day"})
    finally:
        hub.stop()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    first, second = body["data"]
    assert first["start"].startswith("2022-09-28T00:00:00+02:00")
    assert first["total_cost"] == pytest.approx(HUB_COST_EUR, abs=1e-6)
    assert first["vendor_cost"] == pytest.approx(VENDOR_COST_EUR, abs=0.005)
    assert second["vendor_cost"] is None  # the 29th: nothing delivered yet, so nothing the vendor priced
    assert second["total_cost"] == pytest.approx(0.18)  # the hub's daily fee alone
    assert body["vendor_cost"] == first["vendor_cost"]
    assert body["total_cost"] == pytest.approx(first["total_cost"] + second["total_cost"])


def test_a_meter_without_vendor_costs_answers_none(db_url: str, sim: Sim) -> None:
    place_id = discover_and_poll(db_url, sim)
    answer = meterhub(db_url, "cost", "--place", place_id, "--start", "2022-09-20", "--end", "2022-09-21",
                      "--format", "json")
    (day,) = json.loads(answer.stdout)
    assert day["vendor_cost"] is None and day["energy_import_kwh"] == 0
