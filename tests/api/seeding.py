"""A small household written straight into the hub's database, for the resource-route tests.

Two days (UTC) of one-minute readings of a grid meter (three phases and the total) and a solar
meter, a 30-minute silence of the grid meter, a few interval-energy records, and the place
``home`` (Europe/Oslo) holding both with a fixed-price tariff. Also a second meter and place
that nobody but the admin sees.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from meterhub.model import IntervalEnergy, Meter, Place, Reading, Role
from meterhub.store import Store

OSLO = "Europe/Oslo"
START = datetime(2026, 3, 2, tzinfo=UTC)
END = START + timedelta(days=2)
GAP_START = START + timedelta(hours=10)
GAP_END = GAP_START + timedelta(minutes=30)
RANGE = {"start": START.isoformat(), "end": END.isoformat()}
"""Query parameters covering the seeded days."""


def _solar_w(ts: datetime) -> float:
    hour = ts.hour + ts.minute / 60
    return max(0.0, 3000 * math.sin(math.pi * (hour - 6) / 12)) if 6 <= hour <= 18 else 0.0


def _load_w(ts: datetime) -> float:
    return 800 + 400 * math.sin(ts.minute / 60 * 2 * math.pi)


def seed_household(store: Store) -> None:
    """Write the household's meters, readings, gap, intervals and place."""
    store.add_meter(Meter("grid", "file", phases=3, tz=OSLO, interval_s=60, name="Main fuse"))
    store.add_meter(Meter("solar", "file", phases=1, tz=OSLO, interval_s=60, name="PV"))
    store.add_meter(Meter("secret", "file", phases=1, tz=OSLO, interval_s=60, name="Hidden"))
    grid_import = grid_export = solar_kwh = 0.0
    readings: list[Reading] = []
    ts = START
    while ts <= END:
        solar_w = _solar_w(ts)
        net_w = _load_w(ts) - solar_w
        if not GAP_START < ts < GAP_END:
            readings.append(
                Reading(
                    "grid", ts, 0, 230.0, abs(net_w) / 230, net_w, None, 0.98, 50.0, grid_import, grid_export
                )
            )
            for line in (1, 2, 3):
                readings.append(Reading("grid", ts, line, 229.0 + line, abs(net_w) / 690, net_w / 3))
        readings.append(Reading("solar", ts, 0, 231.0, solar_w / 231, solar_w, energy_import_kwh=solar_kwh))
        readings.append(
            Reading("secret", ts, 0, power_w=100.0, energy_import_kwh=(ts - START).total_seconds() / 36000)
        )
        grid_import += max(net_w, 0) / 60_000
        grid_export += max(-net_w, 0) / 60_000
        solar_kwh += solar_w / 60_000
        ts += timedelta(minutes=1)
    store.write_readings(readings)
    store.write_intervals(
        [
            IntervalEnergy("grid", START + timedelta(minutes=15 * k), START + timedelta(minutes=15 * (k + 1)),
                           0.25, 0.0, "umeter")
            for k in range(8)
        ]
    )  # fmt: skip
    tariff = {"currency": "EUR", "import_per_kwh": 2.0, "export_per_kwh": 0.5, "fee_per_day": 1.0}
    store.add_place(Place("home", OSLO, "Home", (("grid", Role.GRID), ("solar", Role.SOLAR)), tariff))
    store.add_place(Place("cabin", OSLO, "Cabin", (("secret", Role.GRID),)))
