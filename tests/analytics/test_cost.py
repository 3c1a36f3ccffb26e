"""Cost per period: every price applied to its own interval, through DST days, for meters and places."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from meterhub.analytics.cost import meter_cost, place_cost
from meterhub.analytics.energy import energy_between
from meterhub.analytics.prices import parse_prices
from meterhub.errors import InputError
from meterhub.model import Place, Role
from meterhub.store.sqlite import SQLiteStore
from tests.analytics.builders import OSLO, local, steady, write_power

QUARTER = timedelta(minutes=15)
HOUR = timedelta(hours=1)


def quarter_power_w(ts: datetime) -> float:
    """A load that differs in every quarter hour, so a price on the wrong quarter shows."""
    quarter = int(ts.timestamp() // 900)
    return 1000.0 * (quarter % 7 + 1)


def quarter_price_csv(day_start: datetime, day_end: datetime) -> tuple[str, list[float]]:
    """Return a CSV of distinct 15-minute prices over a local day, and the prices in order."""
    lines = ["start,resolution,price,currency,direction"]
    prices: list[float] = []
    ts = day_start
    while ts < day_end:
        price = round(0.5 + 0.01 * len(prices), 4)
        prices.append(price)
        lines.append(f"{ts.isoformat()},15m,{price},NOK,import")
        ts += QUARTER
    return "\n".join(lines) + "\n", prices


@pytest.mark.parametrize(("day", "slots", "hours"), [((2026, 3, 29), 92, 23), ((2026, 10, 25), 100, 25)])
def test_quarter_prices_on_dst_days_apply_to_their_own_quarter(
    store: SQLiteStore, day: tuple[int, int, int], slots: int, hours: int
) -> None:
    start = local(OSLO, *day)
    end = local(OSLO, *day) + timedelta(hours=hours)
    assert end == local(OSLO, day[0], day[1], day[2] + 1)
    text, prices = quarter_price_csv(start, end)
    points = parse_prices(text, "spot")
    assert len(points) == slots
    store.write_prices(points)
    write_power(store, "grid", start - HOUR, end + HOUR, quarter_power_w, tz=OSLO)
    store.add_place(
        Place(
            "home", OSLO, meters=(("grid", Role.GRID),), tariff={"currency": "NOK", "import_series": "spot"}
        )
    )
    place = store.get_place("home")
    quarters = place_cost(store, place, start, end, "15m")
    assert len(quarters) == slots
    for k, cost in enumerate(quarters):
        assert cost.start == start + k * QUARTER
        energy_kwh = quarter_power_w(cost.start) / 1000 / 4
        assert cost.energy_import_kwh == pytest.approx(energy_kwh)
        assert cost.import_cost == pytest.approx(energy_kwh * prices[k])
        assert cost.unpriced_import_kwh == 0
    hourly = place_cost(store, place, start, end, "hour")
    assert len(hourly) == hours
    for h, cost in enumerate(hourly):
        own = quarters[4 * h : 4 * h + 4]
        assert cost.import_cost == pytest.approx(sum(q.import_cost for q in own))
    (whole_day,) = place_cost(store, place, start, start + HOUR, "day")
    assert whole_day.import_cost == pytest.approx(sum(q.import_cost for q in quarters))
    assert whole_day.total_cost == whole_day.import_cost


def test_an_hourly_price_prices_the_hour_around_quarter_buckets(store: SQLiteStore) -> None:
    start = local(OSLO, 2026, 3, 29)
    text = "start;end;price;currency\n" + "".join(
        f"{(start + k * HOUR).isoformat()};{(start + (k + 1) * HOUR).isoformat()};{k + 1},5;EUR\n"
        for k in range(3)
    )
    store.write_prices(parse_prices(text, "hourly"))
    write_power(store, "m", start, start + 3 * HOUR, quarter_power_w, tz=OSLO)
    store.add_place(
        Place("p", OSLO, meters=(("m", Role.GRID),), tariff={"currency": "EUR", "import_series": "hourly"})
    )
    costs = meter_cost(store, "m", start, start + 3 * HOUR, "15m")
    for cost in costs:
        hour_index = int((cost.start - start) / HOUR)
        assert cost.import_cost == pytest.approx(cost.energy_import_kwh * (hour_index + 1.5))


def test_fixed_price_fees_and_export_compensation(store: SQLiteStore) -> None:
    start = local(OSLO, 2026, 6, 1)
    write_power(
        store,
        "grid",
        start,
        start + timedelta(days=1),
        lambda ts: -2000.0 if 10 <= ts.hour < 14 else 1000.0,
        tz=OSLO,
    )
    store.add_place(
        Place(
            "home",
            OSLO,
            meters=(("grid", Role.GRID),),
            tariff={
                "currency": "NOK",
                "import_per_kwh": 1.25,
                "import_adder_per_kwh": 0.25,
                "export_per_kwh": 0.5,
                "fee_per_day": 12.0,
            },
        )
    )
    (day,) = place_cost(store, store.get_place("home"), start, start + HOUR, "day")
    assert day.energy_import_kwh == pytest.approx(20.0)
    assert day.energy_export_kwh == pytest.approx(8.0)
    assert day.import_cost == pytest.approx(30.0)
    assert day.export_credit == pytest.approx(4.0)
    assert day.fees == pytest.approx(12.0)
    assert day.total_cost == pytest.approx(38.0)
    assert (day.currency, day.source, day.estimated) == ("NOK", "registers", False)


def test_time_of_use_prices_the_peak_window(store: SQLiteStore) -> None:
    amsterdam = "Europe/Amsterdam"
    friday = local(amsterdam, 2026, 3, 27)
    write_power(store, "m", friday, friday + timedelta(days=2), steady(1000.0), tz=amsterdam, interval_s=300)
    store.add_place(
        Place(
            "nl",
            amsterdam,
            meters=(("m", Role.GRID),),
            tariff={"currency": "EUR", "peak_per_kwh": 0.3, "offpeak_per_kwh": 0.2},
        )
    )
    friday_cost, saturday_cost = meter_cost(store, "m", friday, friday + timedelta(days=2) - HOUR, "day")
    # Friday: 16 peak hours (07-23) and 8 off-peak; Saturday all off-peak.
    assert friday_cost.import_cost == pytest.approx(16 * 0.3 + 8 * 0.2)
    assert saturday_cost.import_cost == pytest.approx(24 * 0.2)


def test_holes_in_a_series_are_reported_as_unpriced(store: SQLiteStore) -> None:
    start = local(OSLO, 2026, 3, 29)
    store.write_prices(
        parse_prices(f"start,resolution,price,currency\n{start.isoformat()},1h,1.0,NOK\n", "spot")
    )
    write_power(store, "m", start, start + 2 * HOUR, steady(1000.0), tz=OSLO)
    store.add_place(
        Place("p", OSLO, meters=(("m", Role.GRID),), tariff={"currency": "NOK", "import_series": "spot"})
    )
    first, second = meter_cost(store, "m", start, start + 2 * HOUR, "hour")
    assert (first.import_cost, first.unpriced_import_kwh) == (pytest.approx(1.0), 0.0)
    assert (second.import_cost, second.unpriced_import_kwh) == (0.0, pytest.approx(1.0))
    assert energy_between(store, "m", [start, start + 2 * HOUR])[0].energy_import_kwh == pytest.approx(2.0)


def test_cost_needs_a_place_a_tariff_and_its_series(store: SQLiteStore) -> None:
    start = local(OSLO, 2026, 3, 29)
    write_power(store, "m", start, start + HOUR, steady(1000.0), tz=OSLO)
    with pytest.raises(InputError, match="in no place"):
        meter_cost(store, "m", start, start + HOUR, "hour")
    store.add_place(Place("p", OSLO, meters=(("m", Role.GRID),)))
    with pytest.raises(InputError, match="has no tariff"):
        meter_cost(store, "m", start, start + HOUR, "hour")
    store.update_place(
        Place("p", OSLO, meters=(("m", Role.GRID),), tariff={"currency": "NOK", "import_series": "gone"})
    )
    with pytest.raises(InputError, match="no import price series 'gone'"):
        meter_cost(store, "m", start, start + HOUR, "hour")
