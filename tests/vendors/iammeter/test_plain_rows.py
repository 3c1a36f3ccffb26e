"""Rows of plain numbers map at once exactly as they do row by row.

:func:`mapping._plain_readings` maps up to three rows of one width holding finite numbers in a
few calls; whenever it answers, its readings must equal :func:`mapping._row_readings`'s value for
value (signed zeros and ints read as floats included), and whenever the row-by-row path refuses
the values, it must step aside so the refusal and its message stay the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from meterhub.errors import PayloadError
from meterhub.readingblocks import live_mean
from meterhub.vendors.iammeter import mapping

METER = "iam-plain"
AT = datetime(2025, 6, 2, 4, 0, tzinfo=UTC)

_number = st.one_of(
    st.floats(-1e6, 1e6),
    st.integers(-10**6, 10**6),
    st.sampled_from([0.0, -0.0, 49.9, 50.0, 231.2, 1e308, -1e308, 1.7e308]),
)
_odd = st.sampled_from([None, "231", "x", True, [1.0], {"a": 1}, float("nan"), float("inf"), 10**400])


@st.composite
def _values(draw: st.DrawFn) -> list[Any]:
    """Draw values as a meter sends them (flat or nested rows of 5 to 7), now and then odd."""
    width = draw(st.sampled_from([5, 6, 7, 7, 4, 8]))
    count = draw(st.integers(1, 5))
    odd = draw(st.integers(0, 3)) == 0

    def row(width: int) -> list[Any]:
        return [draw(st.one_of(_number, _odd) if odd else _number) for _ in range(width)]

    rows = [row(width if draw(st.integers(0, 9)) else width + 1) for _ in range(count)]
    if count == 1 and draw(st.booleans()):
        return rows[0]  # a single-phase meter's flat row
    if odd and draw(st.booleans()):
        rows[draw(st.integers(0, count - 1))] = draw(_odd)  # type: ignore[call-overload]
    return rows


@settings(max_examples=2000, deadline=None)
@given(_values())
def test_plain_rows_map_as_row_by_row_or_step_aside(values: list[Any]) -> None:
    plain = mapping._plain_readings(values, METER, AT)
    try:
        expected = mapping._row_readings(values, METER, AT, "meterdata values")
    except PayloadError:
        assert plain is None
        return
    assert plain is None or repr(plain) == repr(expected)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3), st.sampled_from([5, 6, 7]), st.data())
def test_finite_rows_of_one_width_take_the_plain_path(count: int, width: int, data: st.DataObject) -> None:
    rows = [[data.draw(st.floats(-1e6, 1e6)) for _ in range(width)] for _ in range(count)]
    plain = mapping._plain_readings(rows, METER, AT)
    assert plain is not None
    assert repr(plain) == repr(mapping._row_readings(rows, METER, AT, "meterdata values"))
    assert [reading.phase for reading in plain] == ([0] if count == 1 else list(range(count + 1)))


_voltage = st.one_of(st.floats(0, 300), st.sampled_from([49.9, 50.0, float("nan")]))


@settings(max_examples=500, deadline=None)
@given(st.lists(_voltage, min_size=1, max_size=3))
def test_phase_zero_voltage_is_the_mean_of_connected_phases(voltages: list[float]) -> None:
    live = [v for v in voltages if v >= mapping.LIVE_PHASE_MIN_V]
    expected = sum(live) / len(live) if live else None
    assert repr(live_mean(tuple(voltages))) == repr(expected)
