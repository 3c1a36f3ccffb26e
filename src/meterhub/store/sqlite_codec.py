"""How SQLite rows hold values: fixed-point integers, so a phase-row stays small on disk.

Every quantity is stored as a whole number of milli-units (mV, mA, mW, mvar, mHz, mWh, mvarh),
power factor in millionths and in-bucket energy in microwatt-hours. Values with up to three
decimals (six for registers in kWh) come back exactly as they went in.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from meterhub.errors import InputError
from meterhub.model import Reading
from meterhub.store.fastpath import BatchRollups
from meterhub.store.rollup import Agg, Row
from meterhub.timeutil import from_ms

__all__ = [
    "DECODED_VALUES_SQL",
    "ENCODING_INSERT_VALUES_SQL",
    "LARGEST_STORED",
    "PARTIAL_COUNTS",
    "READING_COLUMNS",
    "READING_SCALES",
    "ROLLUP_COLUMNS",
    "ROLLUP_READ_SQL",
    "STORED_ROLLUP_COLUMNS",
    "compact_counts",
    "decode_reading",
    "encode_agg",
    "encode_reading",
    "encode_rollup_array",
    "round_half_away",
    "round_half_away_array",
    "row_of_encoded",
    "unstorable",
]

READING_COLUMNS: tuple[str, ...] = ("v", "i", "p", "q", "pf", "f", "ei", "ee", "qi", "qe")
"""Column names in READING_FIELDS order."""

READING_SCALES: tuple[float, ...] = (1e3, 1e3, 1e3, 1e3, 1e6, 1e3, 1e6, 1e6, 1e6, 1e6)
"""Scale from canonical unit to stored integer, in READING_FIELDS order."""

POWER_SCALE = 1e3
VOLTAGE_SCALE = 1e3
CURRENT_SCALE = 1e3
REGISTER_SCALE = 1e6
ENERGY_SCALE = 1e9
"""In-bucket energy: microwatt-hours, so pro-rated parts keep their precision."""


def _enc(value: float | None, scale: float) -> int | None:
    return None if value is None else round(value * scale)


def _dec(value: int | None, scale: float) -> float | None:
    return None if value is None else value / scale


def round_half_away(value: float) -> int:
    """Round to the nearest whole number, halves away from zero: exactly as SQLite's round()."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def round_half_away_array(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Vectorised :func:`round_half_away`; NaN stays NaN."""
    result: npt.NDArray[np.float64] = np.copysign(np.floor(np.abs(values) + 0.5), values)
    return result


LARGEST_STORED = 2.0**63
"""Scaled values must stay below this in magnitude to fit SQLite's 64-bit integers."""


def unstorable(reading: Reading) -> InputError:
    """Return the error for a reading with a value too large for the fixed-point columns."""
    return InputError(
        f"reading of meter {reading.meter!r} at {reading.ts.isoformat()} holds a value too large "
        "to store (ingest rejects such values with their reason)"
    )


def encode_reading(pk: int, reading: Reading, ts_ms: int) -> tuple[int | None, ...]:
    """Return the readings-table row of one reading; raise InputError for a value that cannot fit."""
    scaled = [
        None if v is None else v * scale
        for v, scale in zip(reading.values(), READING_SCALES, strict=True)
    ]
    # Not silently clamped as SQLite's CAST would, nor an OverflowError deep in sqlite3.
    if any(v is not None and not abs(v) < LARGEST_STORED for v in scaled):
        raise unstorable(reading)
    return (pk, reading.phase, ts_ms, *(None if v is None else round_half_away(v) for v in scaled))


ENCODING_INSERT_VALUES_SQL = ", ".join(
    ["?", "?", "?"] + [f"CAST(round(? * {scale!r}) AS INTEGER)" for scale in READING_SCALES]
)
"""VALUES list that scales and rounds canonical values to stored integers inside SQLite."""


DECODED_VALUES_SQL = ", ".join(
    f"{column} / {scale!r}" for column, scale in zip(READING_COLUMNS, READING_SCALES, strict=True)
)
"""Select list that turns stored integers back into canonical units inside SQLite."""


def decode_reading(meter_id: str, row: tuple[int | None, ...], offset: int = 0) -> Reading:
    """Return the reading of a row laid out (phase, ts, v, i, p, q, pf, f, ei, ee, qi, qe)."""
    o = offset
    phase, ts = row[o], row[o + 1]
    assert phase is not None and ts is not None
    values = [_dec(row[o + 2 + k], scale) for k, scale in enumerate(READING_SCALES)]
    return Reading(meter_id, from_ms(ts), phase, *values)


def row_of_encoded(encoded: tuple[int | None, ...]) -> Row:
    """Return the rollup view of an encoded readings-table row (as stored, so rebuilds agree)."""
    _, _, ts, v, i, p, _, _, _, ei, ee = encoded[:11]
    assert ts is not None
    return Row(
        ts,
        None if p is None else p / 1e3,
        None if v is None else v / 1e3,
        None if i is None else i / 1e3,
        None if ei is None else ei / 1e6,
        None if ee is None else ee / 1e6,
    )


def row_from_db(
    ts: int,
    p: int | None,
    v: int | None,
    i: int | None,
    ei: int | None,
    ee: int | None,
    stats: bool = True,
) -> Row:
    """Return the rollup view of a stored row."""
    return Row(ts, _dec(p, 1e3), _dec(v, 1e3), _dec(i, 1e3), _dec(ei, 1e6), _dec(ee, 1e6), stats)


ROLLUP_COLUMNS: tuple[str, ...] = (
    "meter",
    "phase",
    "bucket",
    "n",
    "p_n",
    "p_sum",
    "p_min",
    "p_max",
    "v_n",
    "v_sum",
    "v_min",
    "v_max",
    "i_n",
    "i_sum",
    "first_off",
    "first_ei",
    "first_ee",
    "last_off",
    "last_ei",
    "last_ee",
    "e_imp",
    "e_exp",
    "covered_ms",
)
"""The rollup tables' columns before migration 0010 (which migrations 0002 and 0006 create)."""

STORED_ROLLUP_COLUMNS: tuple[str, ...] = (
    "meter",
    "phase",
    "bucket",
    "e_imp",
    "e_exp",
    "covered_ms",
    "n",
    "p_n",
    "p_sum",
    "p_min",
    "p_max",
    "v_n",
    "v_sum",
    "v_min",
    "v_max",
    "i_n",
    "i_sum",
)
"""The rollup tables' columns since migration 0010, in their order on disk (what year views
read first). A bucket's first and last readings are not kept: they are one index seek in the
readings table away. The counts of power, voltage and current values are NULL where they equal
``n`` (every reading carried the value, the usual case), which saves a byte and a header byte
each; :data:`ROLLUP_READ_SQL` reads them back whole."""

PARTIAL_COUNTS: tuple[str, ...] = ("p_n", "v_n", "i_n")
"""Counts stored as NULL when equal to ``n``."""

ROLLUP_READ_SQL: dict[str, str] = {
    column: f"coalesce({column}, n)" if column in PARTIAL_COUNTS else column
    for column in STORED_ROLLUP_COLUMNS
}
"""SQL that reads each rollup column as its whole value (a NULL count is ``n``)."""

_STORED_INDEX = {name: k for k, name in enumerate(STORED_ROLLUP_COLUMNS)}


def compact_counts(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return rollup rows (STORED_ROLLUP_COLUMNS layout) with the counts equal to ``n`` as NaN (NULL)."""
    compact = rows.copy()
    n = rows[:, _STORED_INDEX["n"]]
    for column in PARTIAL_COUNTS:
        k = _STORED_INDEX[column]
        compact[rows[:, k] == n, k] = np.nan
    return compact


def encode_agg(pk: int, phase: int, agg: Agg) -> tuple[int | None, ...]:
    """Return the stored rollup row of an accumulator (STORED_ROLLUP_COLUMNS, counts compacted)."""
    n = agg.n
    return (
        pk,
        phase,
        agg.bucket_ms,
        round(agg.e_imp * 1e9),
        round(agg.e_exp * 1e9),
        agg.covered_ms,
        n,
        None if agg.p_n == n else agg.p_n,
        round(agg.p_sum * 1e3),
        _enc(agg.p_min, 1e3),
        _enc(agg.p_max, 1e3),
        None if agg.v_n == n else agg.v_n,
        round(agg.v_sum * 1e3),
        _enc(agg.v_min, 1e3),
        _enc(agg.v_max, 1e3),
        None if agg.i_n == n else agg.i_n,
        round(agg.i_sum * 1e3),
    )


def encode_rollup_array(rollups: BatchRollups, width_ms: int) -> npt.NDArray[np.float64]:
    """Return the rollup rows of one width as STORED_ROLLUP_COLUMNS, counts whole (NaN binds as NULL)."""
    pick = rollups.width_ms == width_ms
    columns = (
        rollups.keys[pick] // 4,
        rollups.keys[pick] % 4,
        rollups.bucket_ms[pick],
        np.rint(rollups.e_imp[pick] * 1e9),
        np.rint(rollups.e_exp[pick] * 1e9),
        rollups.covered_ms[pick],
        rollups.n[pick],
        rollups.p_n[pick],
        np.rint(rollups.p_sum[pick] * 1e3),
        np.rint(rollups.p_min[pick] * 1e3),
        np.rint(rollups.p_max[pick] * 1e3),
        rollups.v_n[pick],
        np.rint(rollups.v_sum[pick] * 1e3),
        np.rint(rollups.v_min[pick] * 1e3),
        np.rint(rollups.v_max[pick] * 1e3),
        rollups.i_n[pick],
        np.rint(rollups.i_sum[pick] * 1e3),
    )
    rows: npt.NDArray[np.float64] = np.column_stack(columns).astype(np.float64)
    return rows
