"""Phase 0 of a multi-line device is what the generic per-field rules make of its lines.

:func:`mapping._phase_total` skips the fields no line or device total can give; this compares
it with the rules applied to every field, over any mix of known and unknown values.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from meterhub.model import READING_FIELDS
from meterhub.vendors.smartmac import mapping


def _every_field(lines: list[list[Any]], totals: list[Any]) -> list[Any]:
    """The rules applied to each field in turn: the device total, else the rule over known values."""
    result: list[Any] = []
    for name, column, total in zip(READING_FIELDS, zip(*lines, strict=True), totals, strict=True):
        rule = mapping.PHASE_TOTAL_RULES[name]
        known = [v for v in column if v is not None]
        if total is not None:
            result.append(total)
        elif rule is None or not known:
            result.append(None)
        else:
            result.append(rule(known))
    return result


_FILLED_BY_LINES = {index for index, _, _ in mapping._LINE_PLANS[0]}
_FILLED_BY_TOTALS = {index for index, _, _ in mapping._TOTAL_PLAN}
_value = st.one_of(st.none(), st.floats(-1e6, 1e6), st.sampled_from([0.0, -0.0, 49.9, 50.0, 231.2]))


@st.composite
def _device(draw: st.DrawFn) -> tuple[list[list[Any]], list[Any]]:
    count = draw(st.integers(2, 3))
    lines = [[draw(_value) if index in _FILLED_BY_LINES else None for index in range(len(READING_FIELDS))]
             for _ in range(count)]
    totals = [draw(_value) if index in _FILLED_BY_TOTALS else None for index in range(len(READING_FIELDS))]
    return lines, totals


@settings(max_examples=500, deadline=None)
@given(_device())
def test_phase_total_equals_the_rules_over_every_field(device: tuple[list[list[Any]], list[Any]]) -> None:
    lines, totals = device
    assert repr(mapping._phase_total(lines, totals)) == repr(_every_field(lines, totals))


def test_only_fields_a_line_or_total_gives_are_totalled() -> None:
    totalled = {index for index, _ in mapping._TOTALLED}
    assert totalled == {READING_FIELDS.index(name) for name in
                        ("voltage_v", "current_a", "power_w", "frequency_hz", "energy_import_kwh",
                         "energy_export_kwh")}
