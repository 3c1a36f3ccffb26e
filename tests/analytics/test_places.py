"""Place energy: yield, fromGrid, toGrid, specialLoad, selfUse, consumption and self-sufficiency."""

from __future__ import annotations

from datetime import timedelta

import pytest

from meterhub.analytics.energy import EnergyBucket
from meterhub.analytics.places import combine_roles, grid_energy, place_energy
from meterhub.errors import InputError
from meterhub.model import Place, Role
from meterhub.store.sqlite import SQLiteStore
from tests.analytics.builders import OSLO, local, steady, write_power

START = local(OSLO, 2026, 6, 1)
HOUR = timedelta(hours=1)


def bucket(import_kwh: float, export_kwh: float = 0.0, source: str = "registers") -> EnergyBucket:
    return EnergyBucket(START, START + HOUR, import_kwh, export_kwh, 3600.0, source, False)


def test_iammeter_meanings_from_roles() -> None:
    energy = combine_roles(
        START,
        START + HOUR,
        {
            Role.GRID: [bucket(1.0, 2.5)],
            Role.SOLAR: [bucket(4.0), bucket(0.5, source="interval:iammeter")],
            Role.SPECIAL: [bucket(0.7)],
        },
    )
    assert energy.yield_kwh == 4.5
    assert (energy.from_grid_kwh, energy.to_grid_kwh, energy.special_load_kwh) == (1.0, 2.5, 0.7)
    assert energy.self_use_kwh == 2.0
    assert energy.consumption_kwh == 3.0
    assert energy.self_sufficiency_ratio == pytest.approx(2 / 3)
    assert energy.source == "registers+interval:iammeter"


def test_self_use_never_goes_below_zero_and_consumption_meters_add() -> None:
    energy = combine_roles(
        START,
        START + HOUR,
        {Role.GRID: [bucket(0.0, 3.0)], Role.SOLAR: [bucket(1.0)], Role.CONSUMPTION: [bucket(2.0)]},
    )
    assert energy.self_use_kwh == 0.0
    assert energy.consumption_kwh == 2.0
    assert energy.self_sufficiency_ratio == 0.0
    idle = combine_roles(START, START + HOUR, {Role.GRID: [bucket(0.0)]})
    assert (idle.consumption_kwh, idle.self_sufficiency_ratio) == (0.0, None)


def test_place_energy_from_real_meters(store: SQLiteStore) -> None:
    end = START + timedelta(days=1)
    # 06-18 UTC: solar 3000 W, grid export 1000 W; otherwise grid import 500 W; EV charger 200 W.
    write_power(store, "grid", START, end, lambda ts: -1000.0 if 6 <= ts.hour < 18 else 500.0, tz=OSLO)
    write_power(store, "pv", START, end, lambda ts: 3000.0 if 6 <= ts.hour < 18 else 0.0, tz=OSLO)
    write_power(store, "ev", START, end, steady(200.0), tz=OSLO)
    place = Place("home", OSLO, meters=(("ev", Role.SPECIAL), ("grid", Role.GRID), ("pv", Role.SOLAR)))
    (day,) = place_energy(store, place, START, START + HOUR, "day")
    assert day.yield_kwh == pytest.approx(36.0)
    assert day.to_grid_kwh == pytest.approx(12.0)
    assert day.from_grid_kwh == pytest.approx(6.0)
    assert day.self_use_kwh == pytest.approx(24.0)
    assert day.consumption_kwh == pytest.approx(30.0)
    assert day.special_load_kwh == pytest.approx(4.8)
    assert day.self_sufficiency_ratio == pytest.approx(0.8)
    assert (day.source, day.estimated) == ("registers", False)
    hours = place_energy(store, place, START, end, "hour")
    assert len(hours) == 24
    assert sum(h.from_grid_kwh for h in hours) == pytest.approx(day.from_grid_kwh)
    assert sum(h.yield_kwh for h in hours) == pytest.approx(day.yield_kwh)
    (grid_day,) = grid_energy(store, place, [day.start, day.end])
    assert (grid_day.energy_import_kwh, grid_day.energy_export_kwh) == (
        pytest.approx(6.0),
        pytest.approx(12.0),
    )


def test_two_grid_meters_add_up(store: SQLiteStore) -> None:
    write_power(store, "a", START, START + HOUR, steady(1000.0), tz=OSLO)
    write_power(store, "b", START, START + HOUR, steady(-400.0), tz=OSLO)
    place = Place("farm", OSLO, meters=(("a", Role.GRID), ("b", Role.GRID)))
    (hour,) = grid_energy(store, place, [START, START + HOUR])
    assert (hour.energy_import_kwh, hour.energy_export_kwh) == (pytest.approx(1.0), pytest.approx(0.4))


def test_places_without_the_meters_asked_for_are_refused(store: SQLiteStore) -> None:
    write_power(store, "pv", START, START + HOUR, steady(1000.0), tz=OSLO)
    with pytest.raises(InputError, match="no meters"):
        place_energy(store, Place("empty", OSLO), START, START + HOUR, "hour")
    with pytest.raises(InputError, match="no grid meter"):
        grid_energy(store, Place("solar", OSLO, meters=(("pv", Role.SOLAR),)), [START, START + HOUR])
