"""An answer read by the plan of its key order maps exactly as it does field by field.

:func:`mapping._planned_readings` reads an answer in a few calls by a plan worked out once per
key order; whenever it answers, its readings must equal :func:`mapping._field_readings`'s value
for value (signed zeros included), and whenever the field-by-field path refuses an answer, the
plan must step aside so the refusal (and its message) stays the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from meterhub.errors import PayloadError
from meterhub.model import Extra, Reading
from meterhub.readingblocks import live_mean
from meterhub.vendors.physics import Household, SiteConfig
from meterhub.vendors.smartmac import mapping
from meterhub.vendors.smartmac.payloads import getdata_payload

METER = "sm-plan"
AT = datetime(2025, 6, 2, 4, 0, tzinfo=UTC)
_LINE_KEYS = tuple(dict.fromkeys(key for field in mapping.PHASE_FIELDS for key, _ in field.terms))
_TOTAL_KEYS = tuple(key for field in mapping.TOTAL_FIELDS for key, _ in field.terms)

_text = st.one_of(
    st.floats(-1e6, 1e6).map(repr),
    st.integers(-10**7, 10**7).map(lambda n: f"  {n}"),  # padded as the device pads
    st.sampled_from(["0", "-0", "-0.0", "49.9", "50", "231.2", " 1e308", "-1e308", "nan", "inf",
                     "1_000", "", "abc", "1e400"]),
)
_entry = st.one_of(
    _text.map(lambda value: {"name": "x", "unit": "", "value": value}),
    st.sampled_from([None, {"name": "x"}, "231", 231.5, [1], {"value": None}, {"value": 7}]),
)


@st.composite
def _data(draw: st.DrawFn) -> dict[str, Any]:
    """Draw a data object: lines sending the same fields (often) or not, totals, other keys."""
    lines = draw(st.lists(st.sampled_from(mapping.LINES), max_size=3, unique=True))
    shared = draw(st.lists(st.sampled_from(_LINE_KEYS), min_size=1, unique=True))
    plain = draw(st.booleans())
    keys: list[str] = []
    for line in sorted(lines):
        sent = shared if draw(st.booleans()) else draw(st.lists(st.sampled_from(_LINE_KEYS), unique=True))
        keys.extend(f"{key}{line}" for key in sent)
    keys.extend(draw(st.lists(st.sampled_from([*_TOTAL_KEYS, "W", "T", "br0"]), unique=True)))
    order = draw(st.permutations(keys))
    return {key: (draw(_text.map(lambda value: {"name": "x", "unit": "", "value": value}))
                  if plain else draw(_entry)) for key in order}


def test_once_the_plans_kept_are_full_new_key_orders_map_field_by_field() -> None:
    mapping._shapes.clear()
    for count in range(mapping._SHAPES_KEPT):
        assert mapping._planned_readings({f"V{count}": {"value": "1"}, "V1": {"value": "230"}}, METER, AT)
    answer = {"V1": {"value": "230"}, "A1": {"value": "1.5"}}
    assert mapping._planned_readings(answer, METER, AT) is None
    assert mapping.map_getdata({"time": "1748836800", "data": answer}, METER).readings == [
        Reading(METER, datetime(2025, 6, 2, 4, 0, tzinfo=UTC), 0, 230.0, 1.5)]
    mapping._shapes.clear()


def _same(ours: list[Reading], theirs: list[Reading]) -> bool:
    return repr(ours) == repr(theirs)  # repr tells -0.0 from 0.0


@settings(max_examples=1500, deadline=None)
@given(_data())
def test_the_plan_maps_as_field_by_field_or_steps_aside(data: dict[str, Any]) -> None:
    planned = mapping._planned_readings(data, METER, AT)
    try:
        expected = mapping._field_readings(data, METER, AT)
    except PayloadError:
        assert planned is None
        return
    assert planned is None or _same(planned, expected)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([1, 3]), st.booleans(), st.integers(0, 23))
def test_the_devices_own_answers_take_the_plan(phases: int, newer: bool, hour: int) -> None:
    mapping._shapes.clear()  # the fuzz above fills the remembered plans with key orders no device sends
    at = AT.replace(hour=hour)
    state = Household(SiteConfig(seed=5, phases=phases, pv_peak_w=4000.0)).state_at(at)
    answer = getdata_payload("1728053249", state, at, False, newer_firmware=newer, power_limit_w=3500)
    planned = mapping._planned_readings(answer["data"], METER, at)
    assert planned is not None
    assert _same(planned, mapping._field_readings(answer["data"], METER, at))
    assert [reading.phase for reading in planned] == ([0] if phases == 1 else [0, 1, 2, 3])


_voltage = st.one_of(st.floats(0, 300), st.sampled_from([49.9, 50.0, float("nan")]))


@settings(max_examples=500, deadline=None)
@given(st.lists(_voltage, min_size=1, max_size=3))
def test_phase_zero_voltage_is_the_mean_of_live_lines(voltages: list[float]) -> None:
    live = [v for v in voltages if v >= mapping.LIVE_PHASE_MIN_V]
    expected = sum(live) / len(live) if live else None
    assert repr(live_mean(tuple(voltages))) == repr(expected)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([1, 3]), st.booleans(), st.integers(0, 23), st.sampled_from(["0", "1", " 1 ", None]))
def test_extras_equal_the_dataclass_built_by_its_own_init(phases: int, newer: bool, hour: int,
                                                          pout: str | None) -> None:
    at = AT.replace(hour=hour)
    state = Household(SiteConfig(seed=5, phases=phases, pv_peak_w=4000.0)).state_at(at)
    answer = getdata_payload("1728053249", state, at, False, newer_firmware=newer, power_limit_w=3500)
    answer["pout"] = pout
    snapshot = mapping.map_getdata(answer, METER, at)
    relay = [] if pout is None else [Extra(METER, at, "relay_on", float(pout.strip()))]
    limit = [Extra(METER, at, "power_limit_w", 3500.0)] if newer else []
    expected = [Extra(METER, at, "temperature_c", float(answer["data"]["T"]["value"])), *relay, *limit]
    assert snapshot.extras == expected
    assert [(type(extra), repr(extra), hash(extra)) for extra in snapshot.extras] == [
        (Extra, repr(extra), hash(extra)) for extra in expected]
    assert snapshot == mapping.DeviceSnapshot(snapshot.readings, expected, snapshot.relay_on, snapshot.phases)
    assert type(snapshot) is mapping.DeviceSnapshot
