"""Map a whole IAMMETER history answer at once, by columns.

A backfill window is one ``meterdatalist2`` answer: hundreds to a couple of thousand uploads of
one meter. When the answer has the usual shape (every item an object whose ``gmtTime`` reads as
a time and whose ``values`` hold the same number of rows of one width, numbers only), the
window is mapped with arrays: the phase totals are column sums, and the readings are built
without a Python call per reading (the times are split apart together, then built one by one).
Anything else (a null, a number given as text, rows of several shapes, a net (NEM) row, a time
that does not exist) makes :func:`window_readings` return None, and the item-by-item mapping of
:mod:`meterhub.vendors.iammeter.mapping` maps the answer or raises the error it deserves. Both
give the same readings, value for value (the tests compare them).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from meterhub.model import READING_FIELDS, Reading
from meterhub.vendors.iammeter import mapping
from meterhub.vendors.iammeter.mapping import LIVE_PHASE_MIN_V, PHASE_TOTAL_RULES, ROW_LAYOUTS

__all__ = ["window_readings"]

_TIMES = re.compile(r"(?:\d{1,4}/\d{1,2}/\d{1,2} \d{1,2}:\d{1,2}:\d{1,2}\|)*", re.ASCII)
"""Item times joined by ``|``, each as the vendor writes it (which :func:`~mapping.parse_vendor_time`
reads too); spaces around a time or within it send the answer item by item."""
_PARTS = 6
"""Numbers of a vendor time: year, month, day, hour, minute, second."""
_NUMBERS = {f"{n}": n for n in range(100)} | {f"{n:02d}": n for n in range(10)} | {
    f"{year}": year for year in range(1970, 2200)}
"""Every text of one or two digits, and the years of uploads, with their numbers (any other year
sends the answer item by item)."""
_LARGEST = 1e300
"""Above this a sum of a row's values could overflow; such rows take the item-by-item path."""
_MAX_PHASE_ROWS = 3
"""A fourth row is a net (NEM) row: the item-by-item path maps it."""

Floats = npt.NDArray[np.float64]
_NEW: Callable[[type[Reading], Iterable[Any]], Reading] = tuple.__new__
"""Builds a reading from a tuple of its fields without a Python call (what Reading._make does)."""


def window_readings(items: Sequence[Any], meter_id: str) -> list[Reading] | None:
    """Return the readings of ``meterdatalist2`` items, or None when they need the item-by-item path."""
    if not items:
        return []
    if not all(type(item) is dict for item in items):
        return None
    stamps = _times([item.get("gmtTime") for item in items])
    values = _values([item.get("values") for item in items])
    if stamps is None or values is None:
        return None
    layout = ROW_LAYOUTS[values.shape[2]]
    rows = _rows(values, layout)
    width = rows.shape[1]
    repeated: Iterable[datetime] = (
        stamps if width == 1 else itertools.chain.from_iterable(zip(*[stamps] * width, strict=True))
    )
    flat = rows.reshape(-1, len(READING_FIELDS))
    columns = [_python_column(flat[:, field]) for field in range(len(READING_FIELDS))]
    return list(map(_NEW, itertools.repeat(Reading), zip(itertools.repeat(meter_id), repeated,
                                       itertools.cycle(range(width)), *columns)))


def _times(texts: list[Any]) -> list[datetime] | None:
    """Return the UTC instants of vendor times, or None unless all of them read plainly."""
    if not all(type(text) is str for text in texts):
        return None
    joined = "|".join(texts) + "|"
    if _TIMES.fullmatch(joined) is None:
        return None
    written = joined.replace("/", " ").replace(":", " ").replace("|", " ").split()
    try:
        numbers = list(map(_NUMBERS.__getitem__, written))
        # datetime() refuses a date or time that does not exist: the item path says which.
        return list(map(datetime, *(numbers[part::_PARTS] for part in range(_PARTS)),
                        itertools.repeat(0), itertools.repeat(UTC)))
    except (KeyError, ValueError):
        return None


def _values(rows: list[Any]) -> Floats | None:
    """Return items' values as (items, phase rows, width), or None unless plainly numeric."""
    try:
        values = np.array(rows)
    except (ValueError, TypeError, OverflowError):  # ragged rows, or numbers no array holds
        return None
    if values.dtype.kind not in "fiu":
        return None
    if values.ndim == 2:
        values = values[:, None, :]
    if values.ndim != 3 or not 1 <= values.shape[1] <= _MAX_PHASE_ROWS or values.shape[2] not in ROW_LAYOUTS:
        return None
    numbers = values.astype(np.float64)
    if not np.abs(numbers).max() < _LARGEST:  # NaN fails too
        return None
    return numbers


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
        rows[:, 0, field] = _phase_total(name, column)
    return rows


def _phase_total(name: str, column: Floats) -> Floats:
    """Return phase 0 of one field from its phases as mapping.PHASE_TOTAL_RULES makes it."""
    rule = PHASE_TOTAL_RULES[name]
    if rule is None:
        return np.full(len(column), np.nan)
    if rule is sum:
        total = 0.0 + column[:, 0]  # Python's sum starts at 0: -0.0 becomes 0.0
        for phase in range(1, column.shape[1]):
            total = total + column[:, phase]
        return total
    if rule is mapping._mean_of_live:
        live = column >= LIVE_PHASE_MIN_V
        total = 0.0 + np.where(live[:, 0], column[:, 0], 0.0)
        for phase in range(1, column.shape[1]):
            total = total + np.where(live[:, phase], column[:, phase], 0.0)
        count = live.sum(axis=1)
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
    if rule is mapping._FIRST:
        return column[:, 0].copy()
    raise TypeError(f"the phase total of {name} has no column form")


def _python_column(column: Floats) -> Iterable[float | None]:
    """Return a field's values as Python floats, None where unknown."""
    unknown = np.isnan(column)
    if unknown.all():
        return itertools.repeat(None)
    if not unknown.any():
        return column.tolist()  # type: ignore[no-any-return]
    boxed = column.astype(object)
    boxed[unknown] = None
    return boxed.tolist()  # type: ignore[no-any-return]
