"""A UMeter address's tariff facts as a place's tariff (``Tariff.from_umeter``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meterhub.analytics.tariffs import Tariff
from meterhub.errors import InputError
from meterhub.placebook import check_tariff
from meterhub.vendors.umeter import mapping

FIXTURES = Path(__file__).parents[2] / "fixtures" / "umeter"


def captured_facts() -> dict[str, Any]:
    customer = json.loads((FIXTURES / "customer.redacted.json").read_text(encoding="utf-8"))
    (address,) = mapping.map_customer(customer)
    return address.tariff_facts


def test_the_captured_customer_becomes_time_of_use_prices_and_a_daily_fee() -> None:
    tariff = Tariff.from_umeter(captured_facts())
    assert (tariff.currency, tariff.peak_per_kwh, tariff.offpeak_per_kwh) == ("EUR", 0.26119, 0.20976)
    assert (tariff.peak_start_hour, tariff.peak_end_hour, tariff.peak_weekdays_only) == (7, 23, True)
    # flatFee 64.8 a year; the captured explanation books it as 0.18 a day (64.8 / 360)
    assert tariff.fee_per_day == pytest.approx(0.18) and tariff.fee_per_month == 0
    # inclVAT true adds nothing: the captured explanation applies 0.26119 before adding VAT
    assert tariff.import_adder_per_kwh == 0
    data = tariff.to_data()
    assert check_tariff(data) == data  # what a place keeps, as discovery hands it over


def test_an_earlier_peak_end_and_no_flat_fee() -> None:
    tariff = Tariff.from_umeter({"pricePeak": 0.3, "priceOffPeak": 0.2, "peakHourEndsOn": 21})
    assert (tariff.peak_end_hour, tariff.fee_per_day) == (21, 0.0)


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        ({"priceOffPeak": 0.2}, "pricePeak"),
        ({"pricePeak": "cheap", "priceOffPeak": 0.2}, "could not convert"),
        ({"pricePeak": True, "priceOffPeak": 0.2}, "pricePeak True is not a number"),
        ({"pricePeak": float("nan"), "priceOffPeak": 0.2}, "is not a price"),
        ({"pricePeak": 0.3, "priceOffPeak": 0.2, "flatFee": -5}, "flatFee -5.0 is negative"),
        ({"pricePeak": 0.3, "priceOffPeak": 0.2, "peakHourEndsOn": 22.5}, "not a whole hour"),
        ({"pricePeak": 0.3, "priceOffPeak": 0.2, "peakHourEndsOn": 25}, "peak hours"),
        ({"pricePeak": 0.3, "priceOffPeak": 0.2, "inclVAT": "yes"}, "inclVAT"),
    ],
)
def test_unusable_facts_are_refused_with_a_reason(facts: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        Tariff.from_umeter(facts)
