"""Tariffs as plain data: validation, time-of-use windows, series slots and fees."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from meterhub.analytics.cost import fees_per_period
from meterhub.analytics.tariffs import PriceSlot, Tariff, price_slots
from meterhub.errors import InputError
from meterhub.model import Direction, PricePoint
from tests.analytics.builders import OSLO, local

AMSTERDAM = "Europe/Amsterdam"
FIXTURES = Path(__file__).parents[1] / "fixtures"
HOUR = timedelta(hours=1)


def test_plain_data_round_trips() -> None:
    data = {
        "currency": "nok",
        "import_series": "NO1",
        "import_adder_per_kwh": 0.45,
        "export_per_kwh": "0.1",
        "fee_per_month": 300,
        "capacity_thresholds_kwh": [2, 5, 10],
    }
    tariff = Tariff.from_data(data)
    assert tariff.currency == "NOK"
    assert tariff.export_per_kwh == 0.1
    assert tariff.capacity_thresholds_kwh == (2.0, 5.0, 10.0)
    assert Tariff.from_data(tariff.to_data()) == tariff
    assert json.loads(json.dumps(tariff.to_data()))["capacity_thresholds_kwh"] == [2.0, 5.0, 10.0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"price": 1}, "unknown tariff setting"),
        ({"currency": "EUR", "import_per_kwh": 0.3, "import_series": "x"}, "one way"),
        ({"currency": "EUR", "peak_per_kwh": 0.3}, "both a peak and an off-peak"),
        ({"import_per_kwh": 0.3}, "needs a currency"),
        ({"currency": "EUR", "peak_per_kwh": 1, "offpeak_per_kwh": 1, "peak_end_hour": 25}, "peak hours"),
        ({"currency": "EUR", "export_per_kwh": 0.1, "export_series": "x"}, "not both"),
        ({"capacity_thresholds_kwh": [5, 5]}, "increasing"),
        ({"fee_per_day": "lots"}, "malformed"),
        ({"peak_start_hour": 7.5}, "malformed"),
    ],
)
def test_malformed_tariffs_are_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        Tariff.from_data(data)


def test_umeter_time_of_use_from_the_captured_customer() -> None:
    customer = json.loads((FIXTURES / "umeter" / "customer.redacted.json").read_text())
    addresses = customer["addresses"] if isinstance(customer, dict) else customer[0]["addresses"]
    tariff = Tariff.from_umeter(addresses[0]["eEan"])
    assert (tariff.peak_per_kwh, tariff.offpeak_per_kwh, tariff.peak_end_hour) == (0.26119, 0.20976, 23)
    # Friday 2026-03-27 noon to Monday 2026-03-30 08:00 in Amsterdam, across the spring clock change.
    start = local(AMSTERDAM, 2026, 3, 27, 12)
    end = local(AMSTERDAM, 2026, 3, 30, 8)
    slots = tariff.slots(Direction.IMPORT, start, end, AMSTERDAM)
    assert slots == [
        PriceSlot(start, local(AMSTERDAM, 2026, 3, 27, 23), 0.26119),
        PriceSlot(local(AMSTERDAM, 2026, 3, 27, 23), local(AMSTERDAM, 2026, 3, 30, 7), 0.20976),
        PriceSlot(local(AMSTERDAM, 2026, 3, 30, 7), end, 0.26119),
    ]


def test_peak_until_midnight_every_day() -> None:
    tariff = Tariff(
        currency="EUR",
        peak_per_kwh=0.4,
        offpeak_per_kwh=0.2,
        peak_start_hour=17,
        peak_end_hour=24,
        peak_weekdays_only=False,
    )
    start = local(OSLO, 2026, 3, 28)
    slots = tariff.slots(Direction.IMPORT, start, local(OSLO, 2026, 3, 30), OSLO)
    assert [(s.start, s.price_per_kwh) for s in slots] == [
        (start, 0.2),
        (local(OSLO, 2026, 3, 28, 17), 0.4),
        (local(OSLO, 2026, 3, 29), 0.2),
        (local(OSLO, 2026, 3, 29, 17), 0.4),
    ]
    assert slots[-1].end == local(OSLO, 2026, 3, 30) == start + timedelta(days=2) - HOUR


def test_series_slots_mark_holes_and_refuse_conflicts() -> None:
    start = local(OSLO, 2026, 3, 29)
    points = [
        PricePoint(start, start + HOUR, 1.0, "NOK", series="spot"),
        PricePoint(start + 2 * HOUR, start + 3 * HOUR, 2.0, "NOK", series="spot"),
    ]
    assert price_slots(points, start, start + 4 * HOUR) == [
        PriceSlot(start, start + HOUR, 1.0),
        PriceSlot(start + HOUR, start + 2 * HOUR, None),
        PriceSlot(start + 2 * HOUR, start + 3 * HOUR, 2.0),
        PriceSlot(start + 3 * HOUR, start + 4 * HOUR, None),
    ]
    eur = Tariff(currency="EUR", import_series="spot")
    with pytest.raises(InputError, match="is in NOK, the tariff in EUR"):
        eur.slots(Direction.IMPORT, start, start + HOUR, OSLO, points)
    overlapping = [
        *points,
        PricePoint(start + timedelta(minutes=30), start + 2 * HOUR, 1.5, "NOK", series="spot"),
    ]
    with pytest.raises(InputError, match="overlapping"):
        price_slots(overlapping, start, start + 4 * HOUR)


def test_export_without_compensation_is_worth_nothing() -> None:
    start = local(OSLO, 2026, 3, 29)
    assert Tariff(currency="NOK", import_per_kwh=1.0).slots(Direction.EXPORT, start, start + HOUR, OSLO) == [
        PriceSlot(start, start + HOUR, 0.0)
    ]


def test_fees_accrue_by_local_day_and_month() -> None:
    tariff = Tariff(currency="NOK", fee_per_day=23.0, fee_per_month=310.0)
    start = local(OSLO, 2026, 3, 29)
    hours = [start + k * HOUR for k in range(24)]
    fees = fees_per_period(tariff, OSLO, hours)
    # A 23-hour day: each hour takes 1/23 of the day fee and 1/(31*24 - 1) of the month fee.
    assert fees == pytest.approx([1.0 + 310.0 / 743] * 23)
    days = [local(OSLO, 2026, 3, d) for d in range(1, 32)] + [local(OSLO, 2026, 4, 1)]
    assert sum(fees_per_period(tariff, OSLO, days)) == pytest.approx(23.0 * 31 + 310.0)
