"""Phase 0 of IAMMETER phase rows of plain numbers equals the general mapping's phase total."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from meterhub.vendors.iammeter import mapping
from meterhub.vendors.iammeter.mapping import ROW_LAYOUTS, map_meterdata

TS = datetime(2025, 6, 2, 4, 0, 5, tzinfo=UTC)
VALUES = st.floats(min_value=-20_000, max_value=20_000, allow_nan=False) | st.integers(0, 300)


@st.composite
def phase_rows(draw: st.DrawFn) -> list[list[float | int]]:
    width = draw(st.sampled_from(sorted(ROW_LAYOUTS)))
    phases = draw(st.integers(2, 3))
    return [draw(st.lists(VALUES, min_size=width, max_size=width)) for _ in range(phases)]


@given(phase_rows())
def test_number_rows_map_as_the_general_rows_do(rows: list[list[float | int]]) -> None:
    payload = {"successful": True, "data": {"gmtTime": "2025/6/2 4:00:05", "values": rows}}
    got = map_meterdata(payload, "m")
    general = [mapping._row(row, "test") for row in rows]
    expected = mapping._readings("m", TS, general, None)
    assert got == expected
    assert [r.phase for r in got] == list(range(len(rows) + 1))


def test_a_null_in_a_phase_row_takes_the_general_path() -> None:
    rows = [[230.0, 1.0, 200.0, 0.9, 10.0, 1.0], [None, 2.0, 300.0, 0.8, 20.0, 2.0]]
    payload = {"successful": True, "data": {"gmtTime": "2025/6/2 4:00:05", "values": rows}}
    (total, first, second) = map_meterdata(payload, "m")
    assert total.voltage_v == 230.0  # the one phase that knows its voltage
    assert total.current_a == 3.0 and total.power_w == 500.0 and total.energy_import_kwh == 30.0
    assert second.voltage_v is None and first.power_factor == 0.9 and total.power_factor is None
