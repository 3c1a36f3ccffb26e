"""UMeter answers map to the model: captured answers, DST days, units, fuzz."""

from __future__ import annotations

import copy
import itertools
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from tests.vendors.mapping_checks import (
    JSON,
    STRUCTURED_VALUES,
    assert_accepted,
    check_items,
    fuzz_test,
    json_paths,
    maps_or_refuses,
    replace_at,
    wrong_leaves,
)

from meterhub.errors import PayloadError
from meterhub.model import IntervalEnergy
from meterhub.vendors.umeter import mapping
from meterhub.vendors.umeter.measurements import Period, measurements
from meterhub.vendors.umeter.payloads import UMeterAccount, UMeterSimConfig

# Captured UMeter answers, read from the shared fixtures (see their README.md for provenance):
#   p4data.json: bertrik/umeter-api, umeter-api/src/test/resources/p4data.json, commit bcc3617a, MIT
#   customer.redacted.json: bertrik/umeter-api, .../resources/customer.json, commit 764e08f8, MIT
FIXTURES = Path(__file__).parents[2] / "fixtures" / "umeter"
METER = "um-1"
QUARTER = timedelta(minutes=15)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def simulated_day(day: date, now: datetime | None = None) -> Any:
    """Return the simulator's measurements answer for one local day (pure, no HTTP)."""
    account = UMeterAccount(UMeterSimConfig())
    period = Period(day, day + timedelta(days=1), "quarter")
    return measurements(account, period, ("r181", "r182", "r281", "r282"), now or utc(2030, 1, 1), False)


def test_the_captured_day_is_96_quarter_hours_of_import() -> None:
    p4data = fixture("p4data.json")
    measured = mapping.map_measurements(p4data, METER)
    assert len(measured.intervals) == 96
    assert measured.intervals[0] == IntervalEnergy(METER, utc(2022, 9, 27, 22), utc(2022, 9, 27, 22, 15),
                                                   0.02, 0.0, "umeter")
    assert all(i.end - i.start == QUARTER for i in measured.intervals)
    assert all(b.start == a.end for a, b in itertools.pairwise(measured.intervals))
    usage = p4data["totalUsage"]
    assert sum(i.import_kwh or 0 for i in measured.intervals) == pytest.approx(usage["r181"] + usage["r182"])
    (begin,) = measured.readings
    assert (begin.ts, begin.phase) == (utc(2022, 9, 27, 22), 0)
    assert (begin.energy_import_kwh, begin.energy_export_kwh) == (6190.0 + 4707.0, 0.0)
    temperatures = [e for e in measured.extras if e.name == "outdoor_temperature_c"]
    assert len(temperatures) == 24 and temperatures[0].value == 8.0
    costs = [e for e in measured.extras if e.name == "vendor_cost_eur"]
    assert len(costs) == 96 and costs[0].ts == utc(2022, 9, 27, 22)
    assert costs[0].value == -0.00064197434292866465  # the first row's totalCost, as captured
    # the captured explanation's excBtw: 0.70 + 0.22 - 1.87 + 0.26 + 1.13 + 0.57 + 0.18 = 1.19
    assert sum(e.value for e in costs) == pytest.approx(1.19, abs=0.005)


def test_the_captured_customer_has_one_metering_point() -> None:
    (address,) = mapping.map_customer(fixture("customer.redacted.json"))
    assert address == mapping.Address("ean", "redacted", 0.26119, 0.20976)
    assert address.tariff_facts == {"pricePeak": 0.26119, "priceOffPeak": 0.20976, "peakHourEndsOn": 23,
                                    "flatFee": 64.8, "inclVAT": True}


def test_a_row_without_total_cost_adds_up_its_register_costs() -> None:
    day = fixture("p4data.json")
    row = day["aData"][0]
    del row["totalCost"]
    row["cost"] = {"r181": 0.25, "r182": 0.5, "r281": -0.125, "r282": 0.0}
    day["aData"] = [row]
    costs = [e for e in mapping.map_measurements(day, METER).extras if e.name == "vendor_cost_eur"]
    assert [e.value for e in costs] == [0.625]
    row["cost"] = {"r181": "free"}
    with pytest.raises(PayloadError, match="cost r181"):
        mapping.map_measurements(day, METER)


@pytest.mark.parametrize(("day", "quarters"), [(date(2022, 3, 27), 92), (date(2022, 10, 30), 100),
                                                (date(2022, 6, 1), 96)])
def test_dst_days_have_92_or_100_consecutive_quarter_hours(day: date, quarters: int) -> None:
    measured = mapping.map_measurements(simulated_day(day), METER)
    intervals = measured.intervals
    assert len(intervals) == quarters
    assert all(i.end - i.start == QUARTER for i in intervals)
    assert all(b.start == a.end for a, b in itertools.pairwise(intervals))
    assert intervals[-1].end - intervals[0].start == QUARTER * quarters


def test_days_of_a_month_are_local_days() -> None:
    account = UMeterAccount(UMeterSimConfig())
    answer = measurements(account, Period(date(2022, 10, 1), date(2022, 11, 1), "day"),
                          ("r181", "r182", "r281", "r282"), utc(2030, 1, 1), False)
    intervals = mapping.map_measurements(answer, METER, "umeter:day").intervals
    assert len(intervals) == 31
    assert intervals[0].start == utc(2022, 9, 30, 22)
    autumn = next(i for i in intervals if i.start == utc(2022, 10, 29, 22))
    assert autumn.end - autumn.start == timedelta(hours=25)


def test_usage_in_wh_is_converted() -> None:
    answer = {"unit": "Wh", "aData": [{"dateFrom": "2022-09-28 00:00:00", "dateTo": "2022-09-28 00:15:00",
                                       "usage": {"r181": 20.0, "r182": 5.0, "r281": 1500.0}}]}
    (interval,) = mapping.map_measurements(answer, METER).intervals
    assert interval.import_kwh == pytest.approx(0.025)
    assert interval.export_kwh == pytest.approx(1.5)


def test_registers_not_asked_for_leave_their_energy_unknown() -> None:
    answer = {"aData": [{"dateFrom": "2022-09-28 00:00:00", "dateTo": "2022-09-28 00:15:00",
                         "usage": {"r181": 0.1, "r182": 0.2}}]}
    (interval,) = mapping.map_measurements([answer], METER).intervals
    assert interval.import_kwh == pytest.approx(0.3) and interval.export_kwh is None


@pytest.mark.parametrize(
    ("usage", "reason"),
    [({"r181": -0.1}, "negative"), ({"r181": 1e308, "r182": 1e308}, "overflows")],
)
def test_negative_or_overflowing_usage_is_a_payload_error(usage: dict[str, float], reason: str) -> None:
    answer = copy.deepcopy(SMALL_DAY)
    answer["aData"][1]["usage"] = usage
    with pytest.raises(PayloadError, match=reason):
        mapping.map_measurements(answer, METER)


def test_token_lifetimes_are_never_negative_nor_past_a_year() -> None:
    with pytest.raises(PayloadError, match="negative"):
        mapping.map_token({"access_token": "abc123", "expires_in": -1})
    forever = mapping.map_token({"access_token": "abc123", "expires_in": 1e308})
    assert forever.expires_in_s == mapping.MAX_TOKEN_LIFETIME_S == 366 * 86_400


def test_token_answers_hide_their_tokens() -> None:
    token = mapping.map_token({"access_token": "abc123", "token_type": "Bearer", "expires_in": 86400,
                               "refresh_token": "def456", "userName": "x"})
    assert (token.access_token, token.expires_in_s, token.refresh_token) == ("abc123", 86400.0, "def456")
    assert "abc123" not in repr(token) and "def456" not in repr(token)


@pytest.mark.parametrize(
    "answer",
    [
        {},
        {"aData": {}},
        {"aData": [{"dateFrom": "2022-09-28", "dateTo": "2022-09-28 00:15:00", "usage": {}}]},
        {"aData": [{"dateFrom": "2022-09-28 00:15:00", "dateTo": "2022-09-28 00:15:00", "usage": {}}]},
        {"aData": [{"dateFrom": "2022-09-28 00:00:00", "dateTo": "2022-09-28 00:15:00",
                    "usage": {"r181": "1"}}]},
        {"aData": [{"dateFrom": "2022-13-28 00:00:00", "dateTo": "2022-09-28 00:15:00", "usage": {}}]},
        {"aData": [], "unit": "MWh"},
        {"aData": [], "beginReadings": {"r181": 1.0}, "beginReadingsDate": "2022-09-28"},
        [{"aData": []}, {"aData": []}],
    ],
)
def test_bad_answers_are_payload_errors(answer: Any) -> None:
    with pytest.raises(PayloadError):
        mapping.map_measurements(answer, METER)


# --- fuzz -------------------------------------------------------------------------------------------

SMALL_DAY = {**fixture("p4data.json"), "explain": None}
SMALL_DAY["aData"] = SMALL_DAY["aData"][:6]
TOKEN = {"access_token": "abc123", "expires_in": 86400, "refresh_token": "def456"}
SEEDS = [SMALL_DAY, fixture("customer.redacted.json"), TOKEN]
NOW = utc(2030, 1, 1)


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A captured answer with one part replaced by random JSON (or a near-miss time text)."""
    answer = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    path = draw(st.sampled_from(json_paths(answer)))
    replacement = draw(STRUCTURED_VALUES | st.from_regex(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", fullmatch=True))
    if not path:
        return replacement
    replace_at(answer, path, replacement)
    return answer


def _maps_or_refuses(answer: Any) -> None:
    """Map an answer every way the connector does; each maps to ingestable items or refuses."""
    measured = maps_or_refuses(mapping.map_measurements, answer, METER)
    if measured is not None:
        check_items([*measured.intervals, *measured.readings, *measured.extras], NOW)
    addresses = maps_or_refuses(mapping.map_customer, answer)
    assert addresses is None or all(address.ean for address in addresses)
    token = maps_or_refuses(mapping.map_token, answer)
    assert token is None or (token.access_token and (token.expires_in_s or 0) >= 0)


test_mutated_answers_map_or_raise_payload_error = fuzz_test(mutated(), _maps_or_refuses)


test_random_json_maps_or_raises_payload_error = fuzz_test(JSON, _maps_or_refuses, max_examples=200)


test_wrong_values_under_the_right_keys_map_or_raise_payload_error = fuzz_test(
    wrong_leaves(SEEDS), _maps_or_refuses
)


def test_captured_answers_map_to_what_ingest_accepts() -> None:
    measured = mapping.map_measurements(fixture("p4data.json"), METER)
    assert_accepted([*measured.intervals, *measured.readings, *measured.extras], NOW)
