"""AMS reader data.json, dayplot.json and monthplot.json map to readings, extras and intervals."""

from __future__ import annotations

import copy
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.vendors.mapping_checks import (
    JSON,
    STRUCTURED_VALUES,
    assert_accepted,
    check_items,
    fuzz_test,
    maps_or_refuses,
    replaced,
    wrong_leaves,
)

from meterhub.errors import PayloadError
from meterhub.model import IntervalEnergy, Reading
from meterhub.vendors.amsreader import mapping

SEED_DIR = Path(__file__).parent / "seed"
OSLO = ZoneInfo("Europe/Oslo")
NOW = datetime(2026, 3, 15, 12, 34, 56, tzinfo=UTC)
RECEIVED = datetime(2026, 3, 15, 12, 35, tzinfo=UTC)


def seed(name: str) -> dict[str, Any]:
    return dict(json.loads((SEED_DIR / name).read_text()))


def live_data() -> dict[str, Any]:
    """A data.json of a three-phase meter exporting on L3 that reports all three currents."""
    document = seed("data.json")
    document.update(
        i=2100, e=0, ri=300, re=0, ic=1234.5, ec=12.25, ric=100.5, rec=2.0, f=0.95, c=1_773_578_096
    )
    document["l1"] = {"u": 231.2, "i": 4.1, "p": 900, "q": 0, "f": 0.95}
    document["l2"] = {"u": 229.8, "i": 7.0, "p": 1600, "q": 0, "f": 0.99, "e": False}
    document["l3"] = {"u": 230.5, "i": 1.9, "p": 0, "q": 400, "f": 0.9}
    document.update(t=21.5, r=-61, v=3.3, u=3600)
    return document


def test_seed_data_json_maps_to_a_total_of_zeros_and_no_phases() -> None:
    fetched = mapping.map_data_json(seed("data.json"), "ams", RECEIVED)
    assert [reading.phase for reading in fetched.readings] == [0]
    assert fetched.readings[0].ts == RECEIVED  # clock c is 0: the reader's clock is not set
    assert fetched.readings[0].power_w == 0.0


def test_data_json_gives_the_total_and_each_phase_with_q_as_export() -> None:
    fetched = mapping.map_data_json(live_data(), "ams", RECEIVED, version=(2, 3, 0))
    ts = datetime(2026, 3, 15, 12, 34, 56, tzinfo=UTC)
    total, l1, l2, l3 = fetched.readings
    assert total == Reading(
        "ams", ts, 0, power_w=2100.0, reactive_power_var=300.0, power_factor=0.95,
        energy_import_kwh=1234.5, energy_export_kwh=12.25,
        reactive_import_kvarh=100.5, reactive_export_kvarh=2.0,
    )  # fmt: skip
    assert l1 == Reading("ams", ts, 1, voltage_v=231.2, current_a=4.1, power_w=900.0, power_factor=0.95)
    assert l2 == Reading("ams", ts, 2, voltage_v=229.8, current_a=7.0, power_w=1600.0, power_factor=0.99)
    assert l3 == Reading("ams", ts, 3, voltage_v=230.5, current_a=1.9, power_w=-400.0, power_factor=0.9)
    older = mapping.map_data_json(live_data(), "ams", RECEIVED, version=(2, 2, 9)).readings[3]
    assert older == Reading(
        "ams", ts, 3, voltage_v=230.5, current_a=1.9, power_w=0.0, reactive_power_var=400.0, power_factor=0.9
    )  # before v2.3.0 q is reactive power
    unknown = mapping.map_data_json(live_data(), "ams", RECEIVED).readings[3]
    assert unknown == Reading("ams", ts, 3, voltage_v=230.5, current_a=1.9, power_factor=0.9)
    extras = {extra.name: extra.value for extra in fetched.extras}
    assert extras["temperature_c"] == 21.5 and extras["rssi_dbm"] == -61 and extras["uptime_s"] == 3600


def test_l2_current_is_left_out_when_the_meter_does_not_measure_it() -> None:
    document = live_data()
    document["l2"]["e"] = True  # the firmware's isL2currentMissing()
    ts = datetime(2026, 3, 15, 12, 34, 56, tzinfo=UTC)
    l2 = mapping.map_data_json(document, "ams", RECEIVED, version=(2, 3, 0)).readings[2]
    assert l2 == Reading("ams", ts, 2, voltage_v=229.8, power_w=1600.0, power_factor=0.99)


def test_phases_of_only_zeros_are_absent_and_no_sensor_is_no_temperature() -> None:
    document = live_data()
    document["l2"] = {"u": 0.0, "i": 0.0, "p": 0, "q": 0, "f": 0.0, "e": False}
    document["l3"] = {"u": 0.0, "i": 0.0, "p": 0, "q": 0, "f": 0.0}
    document["t"] = -127.0
    fetched = mapping.map_data_json(document, "ams", RECEIVED)
    assert [reading.phase for reading in fetched.readings] == [0, 1]
    assert "temperature_c" not in {extra.name for extra in fetched.extras}
    assert mapping.phases_in(document) == 1
    assert mapping.phases_in(live_data()) == 3


def test_dayplot_keys_are_the_last_24_closed_utc_hours() -> None:
    records = mapping.dayplot_intervals(seed("dayplot.json"), "ams", NOW)
    assert len(records) == 24
    assert records[0] == IntervalEnergy(
        "ams", datetime(2026, 3, 14, 12, tzinfo=UTC), datetime(2026, 3, 14, 13, tzinfo=UTC), 3.34, 0.0,
        "amsreader.dayplot",
    )  # fmt: skip
    assert records[-1].start == datetime(2026, 3, 15, 11, tzinfo=UTC) and records[-1].import_kwh == 4.2
    assert all(b.start - a.start == timedelta(hours=1) for a, b in itertools.pairwise(records))


def test_dayplot_skips_the_hour_that_just_ended_until_the_reader_settles() -> None:
    just_after = datetime(2026, 3, 15, 12, 0, 30, tzinfo=UTC)
    records = mapping.dayplot_intervals(seed("dayplot.json"), "ams", just_after)
    assert len(records) == 23
    assert datetime(2026, 3, 15, 11, tzinfo=UTC) not in {record.start for record in records}


def test_monthplot_holds_this_month_before_today_and_last_month_after() -> None:
    records = mapping.monthplot_intervals(seed("monthplot.json"), "ams", NOW, OSLO)
    days = [record.start.astimezone(OSLO).date().isoformat() for record in records]
    assert days[0] == "2026-02-15" and days[13] == "2026-02-28"  # February had 28 days
    assert days[14] == "2026-03-01" and days[-1] == "2026-03-14"
    assert len(records) == 28
    first = records[14]
    assert first.import_kwh == 71.3 and first.end - first.start == timedelta(days=1)


def test_monthplot_days_follow_the_local_calendar_across_dst() -> None:
    records = mapping.monthplot_intervals(
        seed("monthplot.json"), "ams", datetime(2026, 3, 31, 12, tzinfo=UTC), OSLO
    )
    spring = next(r for r in records if r.start.astimezone(OSLO).date().isoformat() == "2026-03-29")
    assert spring.end - spring.start == timedelta(hours=23)


def test_plots_in_watt_hours_are_converted() -> None:
    plot = {"unit": "wh", "i00": 1500, "e00": 250}
    [record] = mapping.dayplot_intervals(plot, "ams", NOW)
    assert (record.import_kwh, record.export_kwh) == (1.5, 0.25)
    with pytest.raises(PayloadError, match="unit"):
        mapping.dayplot_intervals({"unit": "joule"}, "ams", NOW)


@pytest.mark.parametrize(
    "document",
    [
        [],
        "data",
        {"i": "2100"},
        {"i": True},
        {"l1": 5},
        {"l1": {"u": [230]}},
        {"l2": {"u": 230.0, "i": 5.0, "e": "yes"}},
        {"c": -5},
        {"c": 1e300},
        {"ic": float("inf")},
    ],
)
def test_misshapen_data_json_is_a_payload_error(document: object) -> None:
    with pytest.raises(PayloadError):
        mapping.map_data_json(document, "ams", RECEIVED)


@pytest.mark.parametrize("plot", [{"i01": -1.0}, {"i01": "3"}, {"unit": 5}, ["i01"]])
def test_misshapen_plots_are_payload_errors(plot: object) -> None:
    with pytest.raises(PayloadError):
        mapping.dayplot_intervals(plot, "ams", NOW)
    with pytest.raises(PayloadError):
        mapping.monthplot_intervals(plot, "ams", NOW, OSLO)


# --- fuzz ---------------------------------------------------------------------------------------
VALUES = STRUCTURED_VALUES
LIVE_DATA = live_data()
DATA_KEYS = st.sampled_from(["i", "e", "ic", "c", "t", "r", "l1", "l2", "l3", "ea", "f"])
PLOT_KEYS = st.sampled_from(["unit", "i00", "e00", "i13", "e31", "i31", "x"])


def garble(document: dict[str, Any], data: st.DataObject, keys: st.SearchStrategy[str]) -> dict[str, Any]:
    garbled = copy.deepcopy(document)
    for key in data.draw(st.lists(keys, max_size=4)):
        garbled[key] = data.draw(VALUES)
    if data.draw(st.booleans()):
        inner = garbled.get(data.draw(st.sampled_from(["l1", "l2", "ea"])))
        if isinstance(inner, dict):
            inner[data.draw(st.sampled_from(["u", "i", "p", "q", "e", "h", "x"]))] = data.draw(VALUES)
    return garbled


def _maps_or_refuses(document: object) -> None:
    """Map a document every way the connector does; each maps to ingestable items or refuses."""
    fetched = maps_or_refuses(lambda: mapping.map_data_json(document, "ams", RECEIVED))
    if fetched is not None:
        check_items([*fetched.readings, *fetched.intervals, *fetched.extras], RECEIVED)
    phases = maps_or_refuses(lambda: mapping.phases_in(document))
    assert phases is None or phases in {1, 2, 3}
    for records in (
        maps_or_refuses(lambda: mapping.dayplot_intervals(document, "ams", NOW)),
        maps_or_refuses(lambda: mapping.monthplot_intervals(document, "ams", NOW, OSLO)),
    ):
        check_items(records or [], NOW)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_garbled_data_json_maps_or_raises_payload_error(data: st.DataObject) -> None:
    _maps_or_refuses(garble(live_data(), data, DATA_KEYS))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_garbled_plots_map_or_raise_payload_error(data: st.DataObject) -> None:
    _maps_or_refuses(garble(seed("dayplot.json"), data, PLOT_KEYS))


test_fuzz_hostile_values_in_real_documents_map_or_raise_payload_error = fuzz_test(
    replaced([LIVE_DATA, seed("dayplot.json"), seed("monthplot.json")], STRUCTURED_VALUES), _maps_or_refuses
)


test_fuzz_random_json_maps_or_raises_payload_error = fuzz_test(JSON, _maps_or_refuses, max_examples=200)


test_fuzz_wrong_values_under_the_right_keys_map_or_raise_payload_error = fuzz_test(
    wrong_leaves([LIVE_DATA, seed("dayplot.json"), seed("monthplot.json")]), _maps_or_refuses
)


def test_documented_examples_map_to_what_ingest_accepts() -> None:
    for document in (seed("data.json"), live_data()):
        fetched = mapping.map_data_json(document, "ams", RECEIVED)
        assert_accepted([*fetched.readings, *fetched.extras], RECEIVED)
    assert_accepted(mapping.dayplot_intervals(seed("dayplot.json"), "ams", NOW), NOW)
    assert_accepted(mapping.monthplot_intervals(seed("monthplot.json"), "ams", NOW, OSLO), NOW)
