"""Reading blocks: columns of a whole batch give what each block gives alone, and what the row path gives.

Blocks are built from the simulators' own payloads (IAMMETER meterdata2 and meterdatalist2,
smart-MAC getdata) and from drawn rows. Readings are compared by ``repr``, so an int where a
float belongs, or -0.0 where 0.0 belongs, counts as a difference.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterhub.model import READING_FIELDS, Reading
from meterhub.readingblocks import (
    EPOCH,
    LIVE_PHASE_MIN_V,
    ArrayRows,
    PlannedRows,
    ReadingBlock,
    blocks_columns,
    epoch_us,
)
from meterhub.vendors.iammeter import mapping as iammeter_mapping
from meterhub.vendors.iammeter import payloads as iammeter_payloads
from meterhub.vendors.physics import Household, SiteConfig
from meterhub.vendors.smartmac import mapping as smartmac_mapping
from meterhub.vendors.smartmac import payloads as smartmac_payloads

ZONE = ZoneInfo("Europe/Oslo")
FIRST = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)
STEP = timedelta(seconds=61)
THREE_PHASES = Household(SiteConfig(seed=11, phases=3, pv_peak_w=6000.0))
ONE_PHASE = Household(SiteConfig(seed=13, phases=1))


def _iammeter(meter: str, at: datetime, *, phases: int) -> tuple[PlannedRows, list[Reading]]:
    """Return a meterdata2 answer's block (a flat row for one phase) and its row-by-row readings."""
    household = THREE_PHASES if phases == 3 else ONE_PHASE
    data = iammeter_payloads.meterdata_payload(household.state_at(at), ZONE, advanced=True)
    if phases == 1:
        data["values"] = data["values"][0]  # a single-phase meter's flat row
    block = iammeter_mapping.meterdata_block(iammeter_payloads.success(data), meter)
    assert isinstance(block, PlannedRows)
    values: Any = data["values"]
    rows = iammeter_mapping._row_readings(values, meter, iammeter_mapping.parse_vendor_time(data["gmtTime"]),
                                          "meterdata values")
    return block, rows


def _smartmac(meter: str, at: datetime, *, phases: int, newer: bool) -> tuple[PlannedRows, list[Reading]]:
    """Return a getdata answer's block and its field-by-field readings."""
    household = THREE_PHASES if phases == 3 else ONE_PHASE
    answer = smartmac_payloads.getdata_payload("1728053249", household.state_at(at), at, True,
                                               newer_firmware=newer, power_limit_w=3500)
    decoded = smartmac_mapping.decode(smartmac_payloads.render_json(answer))
    snapshot = smartmac_mapping.map_getdata(decoded, meter)
    assert isinstance(snapshot.readings, PlannedRows)
    ts = smartmac_mapping.device_time(decoded)
    assert ts is not None
    return snapshot.readings, smartmac_mapping._field_readings(decoded["data"], meter, ts)


def _window(meter: str, at: datetime, uploads: int, *, phases: int) -> tuple[ArrayRows, list[Reading]]:
    """Return a meterdatalist2 answer's arrays and its item-by-item readings."""
    household = THREE_PHASES if phases == 3 else ONE_PHASE
    items = [iammeter_payloads.meterdatalist2_item(household.state_at(at + k * STEP), ZONE)
             for k in range(uploads)]
    block = iammeter_mapping.meterdatalist2_block(iammeter_payloads.success(items), meter)
    assert isinstance(block, ArrayRows)
    return block, iammeter_mapping.map_meterdatalist2_items(items, meter)


def _mixed() -> list[tuple[ReadingBlock, list[Reading]]]:
    """Return blocks of every plan, interleaved, a plan's answers apart from one another."""
    return [
        _iammeter("iam-3p", FIRST, phases=3),
        _smartmac("sm-3l", FIRST, phases=3, newer=False),
        _iammeter("iam-1p", FIRST, phases=1),
        _window("win-3p", FIRST, 7, phases=3),
        _smartmac("sm-1l", FIRST, phases=1, newer=False),
        _iammeter("iam-3p", FIRST + STEP, phases=3),
        _smartmac("sm-3l-new", FIRST, phases=3, newer=True),
        _window("win-1p", FIRST, 3, phases=1),
        _iammeter("iam-1p", FIRST + STEP, phases=1),
        _smartmac("sm-3l", FIRST + STEP, phases=3, newer=False),
        _window("win-3p", FIRST + 7 * STEP, 2, phases=3),
        _iammeter("iam-3p", FIRST + 2 * STEP, phases=3),
        _smartmac("sm-1l", FIRST + STEP, phases=1, newer=False),
    ]


def test_the_columns_of_mixed_blocks_are_each_block_in_order() -> None:
    mixed = _mixed()
    blocks = [block for block, _ in mixed]
    plans = {id(block.plan) for block in blocks if isinstance(block, PlannedRows)}
    assert len(plans) == 5  # IAMMETER 3-phase and flat, smart-MAC 3-line (two firmwares) and 1-line
    columns = blocks_columns(blocks)
    together = columns.readings()
    assert columns.rows == len(together) == sum(map(len, blocks))
    assert [repr(columns.reading(row)) for row in range(columns.rows)] == [repr(r) for r in together]
    offset = 0
    for block, rows in mixed:
        alone = blocks_columns([block]).readings()
        assert repr(together[offset : offset + len(block)]) == repr(alone)
        assert repr(list(block)) == repr(alone)
        assert repr(alone) == repr(rows)  # the row-by-row path of the same answer
        assert set(columns.meters[offset : offset + len(block)]) == {block.meter}
        offset += len(block)
    assert offset == columns.rows


def test_blocks_know_their_span_and_phases() -> None:
    block, _ = _iammeter("iam-3p", FIRST, phases=3)
    assert block.span_us() == (epoch_us(FIRST), epoch_us(FIRST))
    assert [reading.phase for reading in block] == [0, 1, 2, 3]
    single, _ = _smartmac("sm-1l", FIRST, phases=1, newer=False)
    assert [reading.phase for reading in single] == [0]
    window, _ = _window("win-3p", FIRST, 4, phases=3)
    assert window.span_us() == (epoch_us(FIRST), epoch_us(FIRST + 3 * STEP))
    assert len(window) == 4 * 4


METER = "drawn"
AT = datetime(2025, 6, 2, 4, 0, tzinfo=UTC)

_number = st.one_of(
    st.floats(-1e6, 1e6),
    st.integers(-10**6, 10**6),
    st.sampled_from([0.0, -0.0, 0, 1, 2**53 + 1, -(2**53) - 1]),
)
_voltage = st.one_of(
    st.floats(LIVE_PHASE_MIN_V - 1.0, LIVE_PHASE_MIN_V + 1.0),
    st.sampled_from([LIVE_PHASE_MIN_V, 50, 49, float(np.nextafter(LIVE_PHASE_MIN_V, 0.0)), 0.0, -0.0, 230.1]),
    st.floats(0.0, 300.0),
    _number,
)


@st.composite
def _answer(draw: st.DrawFn) -> list[Any]:
    """Draw an answer's values: 1-3 finite rows of one width, or one flat row; voltage first."""
    width = draw(st.sampled_from([5, 6, 7]))
    count = draw(st.integers(1, 3))

    def row() -> list[Any]:
        return [draw(_voltage), *(draw(_number) for _ in range(width - 1))]

    if count == 1 and draw(st.booleans()):
        return row()
    return [row() for _ in range(count)]


def _planned(values: list[Any], meter: str, ts_us: int) -> PlannedRows:
    if type(values[0]) is list:
        plan = iammeter_mapping._BLOCK_PLANS[(len(values), len(values[0]))]
    else:
        plan = iammeter_mapping._FLAT_PLANS[len(values)]
    return PlannedRows(meter, ts_us, values, plan)


@settings(max_examples=1000, deadline=None)
@given(_answer())
def test_planned_rows_read_as_the_row_path(values: list[Any]) -> None:
    block = _planned(values, METER, epoch_us(AT))
    expected = iammeter_mapping._row_readings(values, METER, AT, "meterdata values")
    assert repr(list(block)) == repr(expected)
    assert len(block) == len(expected)


@settings(max_examples=300, deadline=None)
@given(st.lists(_answer(), min_size=1, max_size=8))
def test_many_blocks_read_together_as_each_alone(answers: list[list[Any]]) -> None:
    blocks = [_planned(values, f"{METER}-{k % 3}", epoch_us(AT) + k) for k, values in enumerate(answers)]
    together = blocks_columns(blocks).readings()
    alone = list(itertools.chain.from_iterable(blocks_columns([block]).readings() for block in blocks))
    assert repr(together) == repr(alone)
    rows = [iammeter_mapping._row_readings(values, block.meter, EPOCH + timedelta(microseconds=block.ts_us),
                                           "meterdata values")
            for values, block in zip(answers, blocks, strict=True)]
    assert repr(together) == repr(list(itertools.chain.from_iterable(rows)))


def _array(instants: Sequence[datetime]) -> ArrayRows:
    """Return two readings (phases 0 and 1) per instant, every value telling its instant and phase."""
    count = len(instants)
    fields = len(READING_FIELDS)
    values = np.arange(count * 2 * fields, dtype=np.float64).reshape(count, 2, fields)
    stamps = np.array([epoch_us(at) for at in instants], dtype=np.int64)
    return ArrayRows("arrays", stamps, values, (0, 1))


def test_array_rows_within_keeps_the_half_open_window() -> None:
    instants = [FIRST + k * STEP for k in range(5)]
    block = _array(instants)
    assert len(block) == 10
    assert block.span_us() == (epoch_us(instants[0]), epoch_us(instants[4]))
    inside = block.within(instants[1], instants[3])
    assert inside.meter == block.meter and inside.phases == block.phases
    assert [reading.ts for reading in inside] == [instants[1], instants[1], instants[2], instants[2]]
    assert [reading.phase for reading in inside] == [0, 1, 0, 1]
    assert repr(list(inside)) == repr(list(block)[2:6])
    assert inside.span_us() == (epoch_us(instants[1]), epoch_us(instants[2]))
    edge = block.within(instants[1], instants[1] + timedelta(microseconds=1))
    assert [reading.ts for reading in edge] == [instants[1], instants[1]]
    assert len(block.within(FIRST - timedelta(days=1), FIRST + timedelta(days=1))) == 10


def test_an_empty_array_block_reads_as_no_readings() -> None:
    block = _array([FIRST, FIRST + STEP])
    empty = block.within(FIRST + timedelta(microseconds=1), FIRST + STEP)
    for nothing in (empty, _array([]), block.within(FIRST, FIRST)):
        assert len(nothing) == 0
        assert nothing.span_us() is None
        assert list(nothing) == []
        assert nothing.columns().rows == 0
        assert nothing.columns().readings() == []
    together = blocks_columns([block, empty, block])
    assert repr(together.readings()) == repr(list(block) * 2)
    window = iammeter_mapping.meterdatalist2_block(iammeter_payloads.success([]), "win")
    assert isinstance(window, ArrayRows)
    assert (len(window), window.span_us(), list(window)) == (0, None, [])


def test_no_blocks_give_no_columns() -> None:
    columns = blocks_columns([])
    assert columns.rows == 0 and columns.values.shape == (10, 0) and columns.readings() == []


def test_a_block_equals_the_list_of_its_readings_and_is_unhashable() -> None:
    block, rows = _iammeter("iam-3p", FIRST, phases=3)
    twin, _ = _iammeter("iam-3p", FIRST, phases=3)
    assert block == rows
    assert block == tuple(rows)
    assert block == twin
    assert block != rows[:-1]
    assert block != [*rows[:-1], rows[-1]._replace(power_w=1.0)]
    assert block != rows[0]
    assert block.__eq__(object()) is NotImplemented
    assert not isinstance(block, Hashable)
    with pytest.raises(TypeError):
        hash(block)
    assert block[1] == rows[1]
    assert list(block[1:3]) == rows[1:3]
    assert repr(block) == "PlannedRows('iam-3p', 4 readings)"
