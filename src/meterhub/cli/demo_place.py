"""The demo's place: a farm with a grid meter, solar and a special load, a tariff and day-ahead prices.

The IAMMETER simulator's account holds a farm whose grid meter and solar meter see one
household; the smart-MAC device stands for a water heater behind the grid meter. The place is
priced by a day-ahead series (a deterministic daily shape, hourly, from a week ago until the
end of tomorrow) plus a grid fee per kWh, a monthly fee, and the Norwegian capacity steps.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from meterhub.analytics.calendar import local_midnight, to_zone
from meterhub.analytics.tariffs import Tariff
from meterhub.cli.demo_setup import DemoSimulator, secret_reference
from meterhub.errors import UnknownPlaceError
from meterhub.model import Direction, Meter, Place, PricePoint, Role, utc_now
from meterhub.store import Store

__all__ = [
    "DEMO_PLACE",
    "DEMO_PRICE_SERIES",
    "demo_place_meters",
    "demo_prices",
    "setup_demo_place",
]

DEMO_PLACE = "demo-farm"
DEMO_PRICE_SERIES = "demo-day-ahead"
FARM_PLACE_ID = 2393
"""The simulated IAMMETER account's place with a grid and a solar meter."""
CURRENCY = "NOK"
PRICE_DAYS_BACK = 7
DEMO_TARIFF: dict[str, object] = {
    "currency": CURRENCY,
    "import_series": DEMO_PRICE_SERIES,
    "import_adder_per_kwh": 0.45,
    "export_per_kwh": 0.35,
    "fee_per_month": 399.0,
    "capacity_thresholds_kwh": [2.0, 5.0, 10.0, 15.0, 20.0, 25.0],
    "capacity_peak_days": 3,
}


def demo_place_meters(sim: DemoSimulator) -> list[Meter]:
    """Return the farm's grid and solar meters of the IAMMETER simulator."""
    info = sim.info
    farm = next(p for p in info["places"] if p["place_id"] == FARM_PLACE_ID)
    phases = {m["sn"]: int(m["phases"]) for m in info["meters"]}
    options = {
        "base_url": sim.base_url,
        "username": info["user_name"],
        "password": secret_reference("iammeter", "password", info["password"]),
        "place_id": str(FARM_PLACE_ID),
    }
    return [
        Meter("demo-farm-grid", "iammeter", phases[farm["grid"]], info["tz"], 300, "Farm grid (simulated)",
              {**options, "sn": farm["grid"]}),
        Meter("demo-farm-solar", "iammeter", phases[farm["solar"]], info["tz"], 300, "Farm solar (simulated)",
              {**options, "sn": farm["solar"]}),
    ]  # fmt: skip


def _price_nok(local_hour: float, day_index: int) -> float:
    """Return a day-ahead price: cheap at night, a morning and an evening peak, varying by day."""
    morning = math.exp(-(((local_hour - 8.0) / 1.6) ** 2))
    evening = math.exp(-(((local_hour - 18.5) / 2.0) ** 2))
    return round(0.55 + 0.07 * math.sin(day_index * 1.3) + 0.6 * morning + 0.85 * evening, 4)


def demo_prices(tz: str, now: datetime) -> list[PricePoint]:
    """Return hourly day-ahead prices from a week ago until the end of tomorrow in ``tz``."""
    zone = to_zone(tz)
    today = now.astimezone(zone).date()
    start = local_midnight(today - timedelta(days=PRICE_DAYS_BACK), zone)
    end = local_midnight(today + timedelta(days=2), zone)
    points: list[PricePoint] = []
    hour = start
    while hour < end:
        local = hour.astimezone(zone)
        price = _price_nok(local.hour + 0.5, local.toordinal())
        points.append(
            PricePoint(hour, hour + timedelta(hours=1), price, CURRENCY, Direction.IMPORT, DEMO_PRICE_SERIES)
        )
        hour += timedelta(hours=1)
    return points


def setup_demo_place(store: Store, grid: Meter, solar: Meter, special: Meter) -> Place:
    """Create or refresh the demo place with its meters by role, its tariff and its prices."""
    tariff = Tariff.from_data(DEMO_TARIFF).to_data()  # checked as the API and CLI check a tariff
    place = Place(
        DEMO_PLACE,
        grid.tz,
        "Demo farm",
        tuple(sorted(((grid.id, Role.GRID), (solar.id, Role.SOLAR), (special.id, Role.SPECIAL)))),
        tariff,
    )
    try:
        store.get_place(DEMO_PLACE)
    except UnknownPlaceError:
        store.add_place(place)
    else:
        store.update_place(place)
    store.write_prices(demo_prices(place.tz, utc_now()))
    return store.get_place(DEMO_PLACE)
