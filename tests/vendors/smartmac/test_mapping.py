"""smart-MAC answers map to the model: the seed's example, the device's quirks, fuzz."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import strategies as st
from tests.vendors.mapping_checks import (
    HOSTILE_SCALARS,
    JSON,
    STRUCTURED_VALUES,
    assert_accepted,
    check_items,
    decode_fuzz_test,
    fuzz_test,
    maps_or_refuses,
    replaced,
    wrong_leaves,
)

from meterhub.errors import PayloadError
from meterhub.model import Reading
from meterhub.vendors.physics import Household, SiteConfig
from meterhub.vendors.smartmac import mapping
from meterhub.vendors.smartmac.payloads import getdata_payload, render_json

from .seed_examples import GETDATA, GETDATA_RAW

METER = "sm-1"
SEED_TIME = datetime.fromtimestamp(1530607456, UTC)


def by_phase(readings: list[Reading]) -> dict[int, Reading]:
    phases = {r.phase: r for r in readings}
    assert len(phases) == len(readings)
    return phases


def extras(snapshot: mapping.DeviceSnapshot) -> dict[str, float]:
    return {extra.name: extra.value for extra in snapshot.extras}


def entry(value: str, unit: str = "") -> dict[str, str]:
    return {"name": "x", "unit": unit, "value": value}


def test_the_seed_example_with_its_raw_line_breaks() -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(GETDATA_RAW)  # the device's answer is not strict JSON
    snapshot = mapping.map_getdata(mapping.decode(GETDATA_RAW.encode()), METER)
    phases = by_phase(snapshot.readings)
    assert phases[1] == Reading(METER, SEED_TIME, 1, voltage_v=220.89, current_a=2.78, power_w=586.0,
                                power_factor=0.94, energy_import_kwh=33549.075, energy_export_kwh=0.0)
    assert phases[3].energy_import_kwh == pytest.approx(6710.742)
    total = phases[0]
    assert total.power_w == 586 + 30 + 37
    assert total.current_a == pytest.approx(2.78 + 0.34 + 0.28)
    assert total.energy_import_kwh == pytest.approx((33549075 + 4831905 + 6710742) / 1000)
    assert total.voltage_v == pytest.approx((220.89 + 213.40 + 218.59) / 3)
    assert extras(snapshot) == {"temperature_c": 14.0, "relay_on": 0.0}
    assert snapshot.relay_on is False and snapshot.phases == 3


def test_pretty_printed_answers_with_raw_breaks_parse_too() -> None:
    text = json.dumps(GETDATA, indent=2).replace("\\n", "\n")
    assert mapping.decode(text.encode()) == GETDATA


def test_padded_values_reverse_power_and_energy() -> None:
    answer = {"devid": "1", "time": "1700000000", "pout": "1", "data": {
        "V1": entry(" 231.50", "V"), "A1": entry("  6.52", "A"), "W1": entry("    0", "W"),
        "rW1": entry(" 1500", "W"), "Wh1": entry("1000", "Wh"), "rWh1": entry("2500500", "Wh"),
        "PF1": entry("0.99"), "T": entry("21", "°C"),
    }}
    snapshot = mapping.map_getdata(answer, METER)
    (reading,) = snapshot.readings  # one line: phase 0 only
    assert reading.phase == 0
    assert (reading.voltage_v, reading.current_a, reading.power_w) == (231.5, 6.52, -1500.0)
    assert (reading.energy_import_kwh, reading.energy_export_kwh) == (1.0, 2500.5)
    assert snapshot.relay_on is True and extras(snapshot)["relay_on"] == 1.0


def test_newer_firmware_frequency_totals_and_power_limit() -> None:
    household = Household(SiteConfig(seed=3, phases=3, pv_peak_w=4000.0))
    state = household.state_at(datetime(2025, 6, 1, 11, tzinfo=UTC))
    answer = getdata_payload("7", state, state.ts, True, newer_firmware=True, power_limit_w=3500)
    snapshot = mapping.map_getdata(mapping.decode(render_json(answer)), METER)
    phases = by_phase(snapshot.readings)
    assert phases[2].frequency_hz == pytest.approx(state.frequency_hz, abs=0.005)
    total = phases[0]
    assert total.current_a == pytest.approx(sum(abs(p.current_a) for p in state.phases), abs=0.005)
    assert total.energy_import_kwh == pytest.approx(state.total.energy_import_kwh, abs=0.001)
    assert total.power_w == pytest.approx(state.total.power_w, abs=2.0)
    assert extras(snapshot)["power_limit_w"] == 3500.0
    assert snapshot.relay_on is True


@pytest.mark.parametrize("phases", [1, 3])
@pytest.mark.parametrize("hour", [3, 12])
def test_simulated_answers_map_to_the_physics(phases: int, hour: int) -> None:
    household = Household(SiteConfig(seed=5, phases=phases, pv_peak_w=6000.0, initial_export_kwh=321.0))
    state = household.state_at(datetime(2025, 6, 21, hour, 7, tzinfo=UTC))
    snapshot = mapping.map_getdata(mapping.decode(render_json(getdata_payload(
        "9", state, state.ts, False, newer_firmware=False))), METER)
    readings = by_phase(snapshot.readings)
    truths = {0: state.total} if phases == 1 else {0: state.total, **dict(enumerate(state.phases, 1))}
    assert sorted(readings) == sorted(truths)
    for phase, truth in truths.items():
        got = readings[phase]
        assert got.ts == state.ts
        assert got.power_w == pytest.approx(truth.power_w, abs=0.5 * len(state.phases))
        assert got.energy_import_kwh == pytest.approx(truth.energy_import_kwh, abs=0.001 * len(state.phases))
        assert got.energy_export_kwh == pytest.approx(truth.energy_export_kwh, abs=0.001 * len(state.phases))
    assert extras(snapshot)["temperature_c"] == round(state.temperature_c)


@pytest.mark.parametrize(("pout", "relay_on"), [("1", True), ("0", False), (" 1", True), (None, None)])
def test_the_answers_pout_is_1_for_on(pout: str | None, relay_on: bool | None) -> None:
    answer = {**GETDATA, "pout": pout}
    assert mapping.relay_state(answer) is relay_on
    assert mapping.map_getdata(answer, METER).relay_on is relay_on


@pytest.mark.parametrize(
    "answer",
    [
        {"devid": "1", "time": "1700000000", "error": "access denied"},
        {**GETDATA, "pout": "2"},
        {**GETDATA, "time": "yesterday"},
        {**GETDATA, "data": {"V1": entry("abc")}},
        {**GETDATA, "data": {"V1": entry("nan")}},
        {**GETDATA, "data": {"V1": {"name": "Voltage 1"}}},
        {**GETDATA, "data": {"T": entry("14")}},
        {**GETDATA, "data": []},
        [GETDATA],
    ],
)
def test_bad_answers_are_payload_errors(answer: Any) -> None:
    with pytest.raises(PayloadError):
        mapping.map_getdata(answer, METER)


@pytest.mark.parametrize("key", ["V1", "Wh2", "T"])
def test_integers_too_large_for_a_float_are_payload_errors(key: str) -> None:
    answer = copy.deepcopy(GETDATA)
    answer["data"][key]["value"] = 10**400  # JSON has no bound on integers; a float has
    with pytest.raises(PayloadError, match="not a number"):
        mapping.map_getdata(answer, METER)


def test_the_caller_may_set_the_time() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    snapshot = mapping.map_getdata(GETDATA, METER, at)
    assert {r.ts for r in snapshot.readings} == {at} and {e.ts for e in snapshot.extras} == {at}


# --- fuzz -------------------------------------------------------------------------------------------

VALUE_TEXT = (
    st.from_regex(r"\s{0,3}-?\d{0,6}(\.\d{0,3})?\s{0,3}", fullmatch=True)
    | st.text(max_size=8)
    | HOSTILE_SCALARS.map(str)
)


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """The seed example with some values, keys or whole entries replaced."""
    answer = copy.deepcopy(GETDATA)
    keys = list(answer["data"])
    for key in draw(st.lists(st.sampled_from(keys), max_size=4)):
        choice = draw(st.integers(0, 3))
        if choice == 0:
            answer["data"][key] = {**GETDATA["data"][key], "value": draw(VALUE_TEXT)}
        elif choice == 1:
            answer["data"][key] = draw(JSON)
        elif choice == 2:
            answer["data"].pop(key, None)
        else:
            answer[draw(st.sampled_from(["time", "pout", "devid", "powset"]))] = draw(JSON | VALUE_TEXT)
    return answer


def _maps_or_refuses(answer: Any) -> None:
    """Map an answer as the connector does; it maps to ingestable items or refuses."""
    maps_or_refuses(mapping.device_time, answer)
    assert maps_or_refuses(mapping.relay_state, answer) in {None, True, False}
    snapshot = maps_or_refuses(mapping.map_getdata, answer, METER, SEED_TIME)
    if snapshot is not None:
        assert snapshot.readings, "a mapped answer has at least the whole-meter reading"
        check_items([*snapshot.readings, *snapshot.extras], SEED_TIME)
    own_time = maps_or_refuses(mapping.map_getdata, answer, METER)
    if own_time is not None:
        check_items([*own_time.readings, *own_time.extras], own_time.readings[0].ts)


test_mutated_answers_map_or_raise_payload_error = fuzz_test(mutated(), _maps_or_refuses)


test_random_json_maps_or_raises_payload_error = fuzz_test(JSON, _maps_or_refuses, max_examples=200)


test_garbled_bodies_decode_or_raise_payload_error = decode_fuzz_test(
    st.binary(max_size=300) | st.text(max_size=200).map(str.encode),
    mapping.decode,
    _maps_or_refuses,
    max_examples=200,
)


test_hostile_values_in_the_seed_answer_map_or_raise_payload_error = fuzz_test(
    replaced([GETDATA], STRUCTURED_VALUES), _maps_or_refuses
)


test_wrong_values_under_the_right_keys_map_or_raise_payload_error = fuzz_test(
    wrong_leaves([GETDATA]), _maps_or_refuses
)


def test_documented_example_maps_to_what_ingest_accepts() -> None:
    snapshot = mapping.map_getdata(mapping.decode(GETDATA_RAW.encode()), METER)
    assert_accepted([*snapshot.readings, *snapshot.extras], SEED_TIME)
