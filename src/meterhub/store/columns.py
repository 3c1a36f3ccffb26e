"""Period figures as arrays: boundary checks and the folding of rollup rows into periods.

Shared by the backends' ``period_sums`` and ``period_power``: rows of a rollup table (stored
integers) are folded into the periods between boundaries that are edges of that table, so each
row lies in exactly one period.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from meterhub.errors import InputError
from meterhub.store.base import Bucket, PowerColumns, SumField

__all__ = [
    "SUM_SOURCES",
    "checked_bounds",
    "fold_extreme",
    "power_of_buckets",
    "power_of_rows",
    "sums_of_buckets",
    "sums_of_rows",
]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

_QUARTER_MS = 900_000
_MAX_PERIODS = 200_000
"""Most periods one call folds (over five years of 15-minute periods)."""


def checked_bounds(boundaries_ms: Sequence[int] | Ints) -> Ints:
    """Return the boundaries as an int64 array, or raise InputError naming what is wrong."""
    bounds = np.asarray(boundaries_ms, dtype=np.int64)
    if bounds.ndim != 1 or len(bounds) < 1:
        raise InputError("give the period boundaries as a list of epoch milliseconds")
    if len(bounds) - 1 > _MAX_PERIODS:
        raise InputError(f"{len(bounds) - 1} periods exceed {_MAX_PERIODS}; choose longer periods")
    if (bounds % _QUARTER_MS).any():
        raise InputError("period boundaries must fall on 15-minute edges")
    if (np.diff(bounds) <= 0).any():
        raise InputError("period boundaries must increase")
    return bounds


SUM_SOURCES: dict[SumField, tuple[str, float]] = {
    "energy_import_kwh": ("e_imp", 1e9),
    "energy_export_kwh": ("e_exp", 1e9),
    "covered_s": ("covered_ms", 1e3),
    "count": ("n", 1.0),
}
"""Each sum's rollup column and the scale of its stored integers."""


def sums_of_rows(bounds: Ints, buckets: Ints, raw: dict[SumField, Floats]) -> dict[SumField, Floats]:
    """Fold rollup rows (stored integers) into periods, in the fields' units."""
    periods = len(bounds) - 1
    index = np.searchsorted(bounds, buckets, "right") - 1
    return {
        field: np.bincount(index, weights=np.nan_to_num(values), minlength=periods) / SUM_SOURCES[field][1]
        for field, values in raw.items()
    }


def fold_extreme(index: Ints, values: Floats, periods: int, reduce: np.ufunc) -> Floats:
    """Return ``reduce`` (np.fmin or np.fmax) of the values of each period, NaN where none.

    ``index`` gives each value's period and must not decrease (rows come in bucket order), so
    one ``reduceat`` over the runs does it; ``ufunc.at`` would take an element at a time.
    """
    out = np.full(periods, np.nan)
    if len(index) == 0:
        return out
    starts = np.flatnonzero(np.concatenate(([True], index[1:] != index[:-1])))
    out[index[starts]] = reduce.reduceat(values, starts)
    return out


def power_of_rows(
    bounds: Ints, buckets: Ints, n: Floats, p_n: Floats, p_sum: Floats, p_min: Floats, p_max: Floats
) -> PowerColumns:
    """Fold rollup rows (power in mW) into periods."""
    periods = len(bounds) - 1
    index = np.searchsorted(bounds, buckets, "right") - 1
    count = np.bincount(index, weights=np.nan_to_num(n), minlength=periods)
    powered = np.bincount(index, weights=np.nan_to_num(p_n), minlength=periods)
    total = np.bincount(index, weights=np.nan_to_num(p_sum), minlength=periods)
    low = fold_extreme(index, p_min, periods, np.fmin)
    high = fold_extreme(index, p_max, periods, np.fmax)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(powered > 0, total / powered / 1e3, np.nan)
    return PowerColumns(count.astype(np.int64), avg, low / 1e3, high / 1e3)


def _floats(values: Sequence[float | None]) -> Floats:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def sums_of_buckets(buckets: Sequence[Bucket], fields: Sequence[SumField]) -> dict[SumField, Floats]:
    """Return the asked sums of aggregated buckets."""
    return {field: np.array([getattr(b, field) for b in buckets], dtype=np.float64) for field in fields}


def power_of_buckets(buckets: Sequence[Bucket]) -> PowerColumns:
    """Return the power columns of aggregated buckets."""
    return PowerColumns(
        np.array([b.count for b in buckets], dtype=np.int64),
        _floats([b.power_avg_w for b in buckets]),
        _floats([b.power_min_w for b in buckets]),
        _floats([b.power_max_w for b in buckets]),
    )
