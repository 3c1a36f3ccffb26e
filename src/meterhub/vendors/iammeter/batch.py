"""Map a whole IAMMETER history answer at once, by columns.

A backfill window is one ``meterdatalist2`` answer: hundreds to a couple of thousand uploads of
one meter. When the answer has the usual shape (every item an object whose ``gmtTime`` reads as
a time and whose ``values`` hold the same number of rows of one width, numbers only), the
window is mapped with arrays: the times are parsed together, the phase totals are column sums,
and the readings are built without a Python call per reading. Anything else (a null, a number
given as text, rows of several shapes, a net (NEM) row, a time that does not exist) makes
:func:`window_readings` return None, and the item-by-item mapping of
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

_TIMES = re.compile(r"(?:\s*\d{1,4}/\d{1,2}/\d{1,2} +\d{1,2}:\d{1,2}:\d{1,2}\s*\|)*", re.ASCII)
"""Item times joined by ``|``: each one as :func:`~mapping.parse_vendor_time` reads it."""
_PARTS = 6
"""Numbers of a vendor time: year, month, day, hour, minute, second."""
_PLACE = np.array([1, 10, 100, 1000])
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_FIRST_YEAR = 1970
"""Earlier years take the item-by-item path (no meter uploads from before it)."""
_LARGEST = 1e300
"""Above this a sum of a row's values could overflow; such rows take the item-by-item path."""
_MAX_PHASE_ROWS = 3
"""A fourth row is a net (NEM) row: the item-by-item path maps it."""

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
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
    numbers = _digit_runs(np.frombuffer(joined.encode("ascii"), np.uint8))
    if len(numbers) != _PARTS * len(texts):  # a text held a "|" of its own
        return None
    year, month, day, hour, minute, second = numbers.reshape(-1, _PARTS).T
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + (leap & (month == 2))
    valid = (year >= _FIRST_YEAR) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    valid &= (hour <= 23) & (minute <= 59) & (second <= 59)
    if not valid.all():
        return None
    seconds = _epoch_days(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
    return list(map(datetime.fromtimestamp, seconds.tolist(), itertools.repeat(UTC)))


def _digit_runs(text: npt.NDArray[np.uint8]) -> Ints:
    """Return the numbers written in ASCII ``text`` (runs of at most four digits), in order."""
    digit = (text >= ord("0")) & (text <= ord("9"))
    edges = np.diff(digit.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    run = np.cumsum(edges[:-1] == 1) - 1
    place = np.where(digit, ends[run] - 1 - np.arange(len(text)), 0)
    worth = np.where(digit, (text.astype(np.int64) - ord("0")) * _PLACE[np.clip(place, 0, 3)], 0)
    found: Ints = np.add.reduceat(worth, starts) if len(starts) else np.zeros(0, np.int64)
    return found


def _epoch_days(year: Ints, month: Ints, day: Ints) -> Ints:
    """Return the days since 1970-01-01 of proleptic Gregorian dates (civil-from-days inverse)."""
    shifted = year - (month <= 2)
    era = shifted // 400
    year_of_era = shifted - era * 400
    day_of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days: Ints = era * 146_097 + day_of_era - 719_468
    return days


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
