"""Period figures from the SQLite rollups, as arrays: one short scan of the coarsest table that fits.

Periods that are the meter's local days read the day table, UTC-aligned multiples of six hours
the 6-hour table, and so on down to 15 minutes. Each column comes back from SQLite as one
comma-separated text, which numpy parses in one call; handing Python one tuple per row costs
several times more. Where every period is one stored bucket and all are present (the common
case) the values are the answer as they come; otherwise the rows are folded into the periods.
"""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from meterhub.errors import StoreError
from meterhub.store.base import PowerColumns, SumField
from meterhub.store.coarse import QUARTER_MS, SIX_HOURS_MS, midnights_around
from meterhub.store.columns import SUM_SOURCES, power_of_rows, sums_of_rows

__all__ = ["period_power", "period_sums", "table_for"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

_NULL = -(2**63)
"""Stands for NULL in the texts, which would otherwise drop the value and shift the rest."""
_FIXED_TABLES = ((SIX_HOURS_MS, "rollup_6h"), (3_600_000, "rollup_1h"), (QUARTER_MS, "rollup_15m"))
_POWER_SOURCES = ("n", "p_n", "p_sum", "p_min", "p_max")


def table_for(tz: str, bounds: Ints) -> tuple[str, Ints]:
    """Return the coarsest rollup table whose buckets tile the periods, and those buckets."""
    lo, hi = int(bounds[0]), int(bounds[-1])
    midnights = midnights_around(tz, lo, hi)
    index = np.searchsorted(midnights, bounds)
    if index[-1] < len(midnights) and np.array_equal(midnights[index], bounds):
        days: Ints = midnights[index[0] : index[-1]]
        return "rollup_day", days
    for width, table in _FIXED_TABLES:
        if not (bounds % width).any():
            return table, np.arange(lo, hi, width, dtype=np.int64)
    raise StoreError("period boundaries must fall on 15-minute edges")


def _sql(table: str, columns: Sequence[str], with_bucket: bool) -> str:
    picked = ("bucket", *columns) if with_bucket else tuple(columns)
    texts = ", ".join(f"group_concat(ifnull({c}, {_NULL}))" for c in picked)
    return (
        f"SELECT count(*), {texts} FROM (SELECT {', '.join(picked)} FROM {table} "
        "WHERE meter = ? AND phase = ? AND bucket >= ? AND bucket < ? ORDER BY bucket)"
    )


def _parse(text: str | None, count: int) -> Ints:
    if text is None:
        return np.zeros(0, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            values = np.fromstring(text, dtype=np.int64, sep=",")
        except (ValueError, DeprecationWarning) as exc:
            raise StoreError(f"unreadable rollup values: {exc}") from exc
    if len(values) != count:
        raise StoreError(f"expected {count} rollup values, read {len(values)}")
    return values


def _floats(values: Ints) -> Floats:
    return np.where(values == _NULL, np.nan, values.astype(np.float64))


def _fetch(
    conn: sqlite3.Connection, pk: int, phase: int, tz: str, bounds: Ints, columns: Sequence[str]
) -> tuple[Ints | None, list[Floats]]:
    """Return (None, columns per period) when every period is one present bucket; otherwise
    (bucket per row, columns per row)."""
    table, buckets = table_for(tz, bounds)
    args = (pk, phase, int(bounds[0]), int(bounds[-1]))
    if len(buckets) == len(bounds) - 1:
        count, *texts = conn.execute(_sql(table, columns, False), args).fetchone()
        if count == len(buckets):
            return None, [_floats(_parse(text, count)) for text in texts]
    count, bucket_text, *texts = conn.execute(_sql(table, columns, True), args).fetchone()
    return _parse(bucket_text, count), [_floats(_parse(text, count)) for text in texts]


def period_sums(
    conn: sqlite3.Connection, pk: int, phase: int, tz: str, bounds: Ints, fields: Sequence[SumField]
) -> dict[SumField, Floats]:
    """Return the requested sums per period between consecutive boundaries."""
    sources = [SUM_SOURCES[field] for field in fields]
    if len(bounds) < 2:
        return {field: np.zeros(0) for field in fields}
    rows_bucket, raw = _fetch(conn, pk, phase, tz, bounds, [column for column, _ in sources])
    if rows_bucket is None:
        return {field: values / scale for field, (_, scale), values in zip(fields, sources, raw, strict=True)}
    return sums_of_rows(bounds, rows_bucket, dict(zip(fields, raw, strict=True)))


def period_power(conn: sqlite3.Connection, pk: int, phase: int, tz: str, bounds: Ints) -> PowerColumns:
    """Return count and average, minimum and maximum power per period."""
    if len(bounds) < 2:
        return PowerColumns(np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0), np.zeros(0))
    rows_bucket, (n, p_n, p_sum, p_min, p_max) = _fetch(conn, pk, phase, tz, bounds, _POWER_SOURCES)
    if rows_bucket is not None:
        return power_of_rows(bounds, rows_bucket, n, p_n, p_sum, p_min, p_max)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(p_n > 0, p_sum / p_n / 1e3, np.nan)
    return PowerColumns(np.nan_to_num(n).astype(np.int64), avg, p_min / 1e3, p_max / 1e3)
