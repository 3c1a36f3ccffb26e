"""Map a whole IAMMETER history answer at once, by columns.

A backfill window is one ``meterdatalist2`` answer: hundreds to a couple of thousand uploads of
one meter. When the answer has the usual shape (every item an object whose ``gmtTime`` reads as
a time and whose ``values`` hold the same number of rows of one width, numbers only), the
window is mapped with arrays: the numbers are read into one array, the phase totals are column
sums, and ingest takes the window as columns (:class:`~meterhub.readingblocks.ArrayRows`).
Anything else (a null, rows of several shapes, a net (NEM) row, a time that does not exist)
makes :func:`window_block` return None, and the item-by-item mapping of
:mod:`meterhub.vendors.iammeter.mapping` maps the answer or raises the error it deserves. Both
give the same readings, value for value (the tests compare them).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from meterhub.errors import PayloadError
from meterhub.model import READING_FIELDS, Reading
from meterhub.readingblocks import ArrayRows, phase_total
from meterhub.vendors.iammeter import mapping
from meterhub.vendors.iammeter.mapping import ROW_LAYOUTS

__all__ = ["window_block", "window_readings"]

_LARGEST = 1e300
"""Above this a sum of a row's values could overflow; such rows take the item-by-item path."""
_MAX_PHASE_ROWS = 3
"""A fourth row is a net (NEM) row: the item-by-item path maps it."""

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


def window_readings(items: Sequence[Any], meter_id: str) -> list[Reading] | None:
    """Return the readings of ``meterdatalist2`` items, or None when they need the item-by-item path."""
    block = window_block(items, meter_id)
    return None if block is None else list(block)


def window_block(items: Sequence[Any], meter_id: str) -> ArrayRows | None:
    """Return ``meterdatalist2`` items as arrays, or None when they need the item-by-item path."""
    if not items:
        return ArrayRows(meter_id, np.zeros(0, dtype=np.int64), np.zeros((0, 1, len(READING_FIELDS))), (0,))
    if not all(type(item) is dict for item in items):
        return None
    stamps = _times([item.get("gmtTime") for item in items])
    values = _values([item.get("values") for item in items])
    if stamps is None or values is None:
        return None
    rows = _rows(values, ROW_LAYOUTS[values.shape[2]])
    return ArrayRows(meter_id, stamps, rows, tuple(range(rows.shape[1])))


def _times(texts: list[Any]) -> Ints | None:
    """Return the epoch microseconds of vendor times (UTC), or None unless all of them read."""
    try:
        return np.fromiter(map(mapping.vendor_time_us, texts), np.int64, len(texts))
    except PayloadError:  # the item path says which time, and why
        return None


def _values(values: list[Any]) -> Floats | None:
    """Return items' values as (items, phase rows, width), or None unless plainly numeric.

    Every item's ``values`` must be a list: one flat row (a single-phase meter), or the same
    number of rows, up to three, all of one width. Numbers are read as ``float()`` reads them.
    """
    items = len(values)
    if list(map(type, values)).count(list) != items or not values[0]:
        return None
    chain = itertools.chain.from_iterable
    if type(values[0][0]) is list:
        count = len(values[0])
        rows = list(chain(values))
        if (len(rows) != count * items or list(map(len, values)).count(count) != items
                or list(map(type, rows)).count(list) != len(rows)):
            return None
        width = len(rows[0])
        if list(map(len, rows)).count(width) != len(rows):
            return None
    else:
        count, rows, width = 1, values, len(values[0])
        if list(map(len, values)).count(width) != items:
            return None
    if not 1 <= count <= _MAX_PHASE_ROWS or width not in ROW_LAYOUTS:
        return None
    try:
        numbers = np.fromiter(chain(rows), np.float64, items * count * width)
    except (ValueError, TypeError, OverflowError):  # a row within a row, or no number
        return None
    if not np.abs(numbers).max() < _LARGEST:  # a null (read as NaN), infinity, or too large
        return None
    return numbers.reshape(items, count, width)


def _rows(values: Floats, layout: tuple[str, ...]) -> Floats:
    """Return (items, readings per item, fields): phase 0 first, then the phases; NaN: unknown."""
    items, phases, _ = values.shape
    width = 1 if phases == 1 else phases + 1
    rows = np.full((items, width, len(READING_FIELDS)), np.nan)
    for field, name in enumerate(READING_FIELDS):
        if name not in layout:
            continue
        column = values[:, :, layout.index(name)]
        if phases == 1:
            rows[:, 0, field] = column[:, 0]
            continue
        rows[:, 1:, field] = column
        rule = mapping.BLOCK_TOTALS.get(name)
        rows[:, 0, field] = np.nan if rule is None else phase_total(rule, column)
    return rows
