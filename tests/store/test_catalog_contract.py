"""The Store contract for places, prices and meter health, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meterhub.errors import ConflictError, InputError, UnknownMeterError, UnknownPlaceError
from meterhub.model import Direction, Meter, Place, PricePoint, Role
from meterhub.store.base import Store, WriteResult

T0 = datetime(2026, 3, 29, tzinfo=UTC)


def _meters(store: Store, *ids: str) -> None:
    for meter_id in ids:
        store.add_meter(Meter(meter_id, "file"))


def test_places_round_trip_with_roles_and_tariff(store: Store) -> None:
    _meters(store, "grid", "pv")
    tariff = {"fixed_price_per_kwh": 0.25, "currency": "EUR", "windows": [{"from": "07:00", "price": 0.3}]}
    home = Place("home", "Europe/Oslo", "Home", (("pv", Role.SOLAR), ("grid", Role.GRID)), tariff)
    store.add_place(home)
    got = store.get_place("home")
    assert got.meters == (("grid", Role.GRID), ("pv", Role.SOLAR))
    assert (got.tz, got.name, got.tariff) == ("Europe/Oslo", "Home", tariff)
    with pytest.raises(ConflictError, match="'home'"):
        store.add_place(Place("home", "UTC"))
    store.add_place(Place("cabin", "UTC"))
    assert [p.id for p in store.list_places()] == ["cabin", "home"]


def test_attach_detach_and_unknowns(store: Store) -> None:
    _meters(store, "grid", "boiler")
    store.add_place(Place("home", "UTC"))
    store.attach_meter("home", "grid", Role.GRID)
    store.attach_meter("home", "boiler", Role.CONSUMPTION)
    store.attach_meter("home", "boiler", Role.SPECIAL)  # a new role replaces the old one
    assert store.get_place("home").meters == (("boiler", Role.SPECIAL), ("grid", Role.GRID))
    store.detach_meter("home", "boiler")
    assert store.get_place("home").meters == (("grid", Role.GRID),)
    with pytest.raises(InputError, match="not in place"):
        store.detach_meter("home", "boiler")
    with pytest.raises(UnknownMeterError):
        store.attach_meter("home", "ghost", Role.GRID)
    with pytest.raises(UnknownPlaceError):
        store.attach_meter("nowhere", "grid", Role.GRID)
    with pytest.raises(UnknownPlaceError):
        store.get_place("nowhere")
    store.remove_meter("grid")  # a removed meter leaves its places
    assert store.get_place("home").meters == ()
    store.remove_place("home")
    assert store.list_places() == []


def test_update_place_replaces_everything(store: Store) -> None:
    _meters(store, "grid")
    store.add_place(Place("home", "UTC", "Old", (("grid", Role.GRID),), {"fixed_price_per_kwh": 1.0}))
    store.update_place(Place("home", "Europe/Berlin", "New", (), {}))
    assert store.get_place("home") == Place("home", "Europe/Berlin", "New", (), {})
    with pytest.raises(UnknownPlaceError):
        store.update_place(Place("ghost", "UTC"))


def _slots(count: int, price0: float, series: str = "nordpool") -> list[PricePoint]:
    return [
        PricePoint(
            T0 + timedelta(minutes=15 * k),
            T0 + timedelta(minutes=15 * (k + 1)),
            price0 + k / 100,
            "NOK",
            Direction.IMPORT,
            series,
        )
        for k in range(count)
    ]


def test_prices_are_idempotent_and_replaced_when_changed(store: Store) -> None:
    assert store.write_prices(_slots(8, 1.0)) == WriteResult(8, 0)
    assert store.write_prices(_slots(8, 1.0)) == WriteResult(0, 8)
    assert store.write_prices(_slots(8, 2.0)[:2]) == WriteResult(2, 0)
    found = store.prices(T0 + timedelta(minutes=10), T0 + timedelta(minutes=31))
    # Slots overlapping [00:10, 00:31): 00:00, 00:15 and 00:30.
    assert [(p.start.minute, p.price_per_kwh) for p in found] == [(0, 2.0), (15, 2.01), (30, 1.02)]
    assert store.prices(T0, T0 + timedelta(hours=3), direction="export") == []
    store.write_prices([PricePoint(T0, T0 + timedelta(hours=1), 0.5, "NOK", Direction.EXPORT, "feed-in")])
    series = store.price_series()
    assert [(s, d, c, n) for s, d, c, n, _, _ in series] == [
        ("feed-in", "export", "NOK", 1),
        ("nordpool", "import", "NOK", 8),
    ]
    assert series[1][4:] == (T0, T0 + timedelta(hours=2))
    assert store.delete_prices("nordpool", T0 + timedelta(hours=1)) == 4
    assert store.delete_prices("nordpool") == 4
    assert store.prices(T0, T0 + timedelta(days=1), series="nordpool") == []


def test_health_counts_failures_and_recovers(store: Store) -> None:
    _meters(store, "m1", "m2")
    assert store.health() == {}
    first = store.record_health("m1", False, T0, "timeout after 10 s")
    assert (first.online, first.consecutive_failures, first.last_error) == (False, 1, "timeout after 10 s")
    second = store.record_health("m1", False, T0 + timedelta(minutes=1), "HTTP 503")
    assert (second.consecutive_failures, second.last_error_at) == (2, T0 + timedelta(minutes=1))
    back = store.record_health("m1", True, T0 + timedelta(minutes=2))
    assert (back.online, back.consecutive_failures, back.last_success) == (True, 0, T0 + timedelta(minutes=2))
    assert (back.last_error, back.last_error_at) == (None, None)  # online shows no error of the past
    store.record_health("m2", True, T0)
    assert set(store.health()) == {"m1", "m2"}
    assert store.health(["m2"])["m2"].online is True
    with pytest.raises(UnknownMeterError):
        store.record_health("ghost", True, T0)
    store.remove_meter("m1")
    assert set(store.health()) == {"m2"}
