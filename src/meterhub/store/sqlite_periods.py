"""Period figures from the SQLite rollups, as arrays: one short scan of the coarsest table that fits.

Periods that are the meter's local days read the day table, UTC-aligned multiples of six hours
the 6-hour table, and any other multiple of 15 minutes the 15-minute table. Each column comes
back from SQLite as one comma-separated text, which numpy parses in one call; handing Python one
tuple per row costs several times more. Where every period is one stored bucket and all are
present (the common case) the values are the answer as they come; where every period holds the
same number of them (hours of four quarters) runs of rows fold in one reshape; otherwise the rows
are folded into the periods one by one.
"""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from meterhub.errors import StoreError
from meterhub.store.base import PowerColumns, SumField
from meterhub.store.coarse import QUARTER_MS, SIX_HOURS_MS, midnights_around
from meterhub.store.columns import SUM_SOURCES, fold_extreme, power_of_rows, sums_of_rows
from meterhub.store.sqlite_codec import PARTIAL_COUNTS

__all__ = ["FIGURE_FIELDS", "period_figures", "period_power", "period_sums", "table_for"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

_NULL = -(2**63)
"""Stands for NULL in the texts, which would otherwise drop the value and shift the rest."""
_FIXED_TABLES = ((SIX_HOURS_MS, "rollup_6h"), (QUARTER_MS, "rollup_15m"))
_POWER_SOURCES = ("n", "p_n", "p_sum", "p_min", "p_max")
_SUMMED = frozenset({"n", "p_n", "p_sum", "v_n", "v_sum", "i_n", "i_sum", "e_imp", "e_exp", "covered_ms"})
_MINIMA = frozenset({"p_min", "v_min"})
_MAXIMA = frozenset({"p_max", "v_max"})
FIGURE_FIELDS: tuple[str, ...] = (
    "count",
    "power_avg_w",
    "power_min_w",
    "power_max_w",
    "voltage_avg_v",
    "voltage_min_v",
    "voltage_max_v",
    "current_avg_a",
    "energy_import_kwh",
    "energy_export_kwh",
    "covered_s",
)
"""The figures :func:`period_figures` gives, named as in ``Bucket``."""


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


def _sql(table: str, columns: Sequence[str], ordered: bool) -> str:
    """Return the query of the columns' texts; ``ordered`` False leaves the order to the scan.

    The bucket comes as quarters after the first boundary (a few digits instead of thirteen).
    A compacted count (NULL: equal to the row's ``n``) is left out of its text, which then holds
    only the stored counts, and a second text lists the rows those belong to: most rows have
    none, so these texts are short. Without the ORDER BY subquery SQLite concatenates straight
    from its range scan of the primary key, which yields the rows in bucket order and costs a
    fifth less; the caller checks the order and asks again with ``ordered`` if it ever differs.
    The parameters are the meter's pk, the phase, the first and the last boundary.
    """
    where = "WHERE meter = ?1 AND phase = ?2 AND bucket >= ?3 AND bucket < ?4"
    quarter = f"(bucket - ?3) / {QUARTER_MS}"
    source = table
    if ordered:
        picked = ", ".join(["bucket", *columns])
        source = f"(SELECT {picked} FROM {table} {where} ORDER BY bucket)"
        where = ""
    texts = [f"group_concat({quarter})"]
    for column in columns:
        if column in PARTIAL_COUNTS:
            texts.append(f"group_concat({column})")
            texts.append(f"group_concat(CASE WHEN {column} IS NOT NULL THEN {quarter} END)")
        else:
            texts.append(f"group_concat(ifnull({column}, {_NULL}))")
    return f"SELECT count(*), {', '.join(texts)} FROM {source} {where}"


def _parse(text: str | None, count: int | None) -> Ints:
    """Parse one text of :func:`_sql`; call it where warnings are errors (a bad text warns)."""
    if text is None:
        return np.zeros(0, dtype=np.int64)
    try:
        values = np.fromstring(text, dtype=np.int64, sep=",")
    except (ValueError, DeprecationWarning) as exc:
        raise StoreError(f"unreadable rollup values: {exc}") from exc
    if count is not None and len(values) != count:
        raise StoreError(f"expected {count} rollup values, read {len(values)}")
    return values


def _floats(values: Ints) -> Floats:
    return np.where(values == _NULL, np.nan, values.astype(np.float64))


def _zeroed(values: Ints) -> Floats:
    floats = values.astype(np.float64)
    floats[values == _NULL] = 0.0
    return floats


def _fetch(
    conn: sqlite3.Connection,
    pk: int,
    phase: int,
    tz: str,
    bounds: Ints,
    columns: Sequence[str],
    as_sums: frozenset[str] = frozenset(),
) -> tuple[Ints | None, list[Floats]]:
    """Return (None, columns per period) when every period is one present bucket; otherwise
    (bucket per row, columns per row). One query either way. NULL reads as NaN, or as 0 in the
    columns named in ``as_sums``; a compacted count reads as the row's ``n``."""
    table, buckets = table_for(tz, bounds)
    lo = int(bounds[0])
    args = (pk, phase, lo, int(bounds[-1]))
    read = list(columns)
    if "n" not in read and any(c in PARTIAL_COUNTS for c in read):
        read.append("n")  # a compacted count is the row's n
    count, quarter_text, *texts = conn.execute(_sql(table, read, ordered=False), args).fetchone()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quarters = _parse(quarter_text, count)
        if count > 1 and not (quarters[1:] > quarters[:-1]).all():
            count, quarter_text, *texts = conn.execute(_sql(table, read, ordered=True), args).fetchone()
            quarters = _parse(quarter_text, count)
        parsed = _columns_of(read, texts, quarters)
    values = [_zeroed(parsed[c]) if c in as_sums else _floats(parsed[c]) for c in columns]
    if len(buckets) == len(bounds) - 1 and count == len(buckets):
        return None, values
    return lo + quarters * QUARTER_MS, values


def _columns_of(read: Sequence[str], texts: Sequence[str | None], quarters: Ints) -> dict[str, Ints]:
    """Return each column's stored integers per row from the texts of :func:`_sql`."""
    texts_of = iter(texts)
    parsed: dict[str, Ints] = {}
    stored: dict[str, tuple[Ints, Ints]] = {}
    for column in read:
        if column in PARTIAL_COUNTS:
            stored[column] = (_parse(next(texts_of), None), _parse(next(texts_of), None))
        else:
            parsed[column] = _parse(next(texts_of), len(quarters))
    for column, (values, at) in stored.items():
        if len(values) != len(at):
            raise StoreError(f"expected {len(at)} stored {column} counts, read {len(values)}")
        whole = parsed["n"].copy()
        whole[np.searchsorted(quarters, at)] = values
        parsed[column] = whole
    return parsed


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


def _fold(bounds: Ints, buckets: Ints, raw: dict[str, Floats]) -> dict[str, Floats]:
    """Fold rollup rows into the periods: sums add up, minima and maxima keep the extreme."""
    periods = len(bounds) - 1
    per_period = _rows_per_period(bounds, buckets)
    if per_period is not None:
        return {name: _fold_runs(name, values, periods, per_period) for name, values in raw.items()}
    index = np.searchsorted(bounds, buckets, "right") - 1
    folded: dict[str, Floats] = {}
    for name, values in raw.items():
        if name in _MINIMA or name in _MAXIMA:
            folded[name] = fold_extreme(index, values, periods, np.fmin if name in _MINIMA else np.fmax)
        else:
            summed = np.bincount(index, weights=np.nan_to_num(values), minlength=periods)
            folded[name] = summed.astype(np.float64)
    return folded


def _rows_per_period(bounds: Ints, buckets: Ints) -> int | None:
    """Return k when every period holds exactly k rows (an hour's four quarters, say), else None.

    The rows increase and lie in [first bound, last bound); when each k-th one starts a period,
    the k from there on are that period's.
    """
    periods = len(bounds) - 1
    if periods < 1 or len(buckets) % periods:
        return None
    per_period = len(buckets) // periods
    if per_period < 1 or not np.array_equal(buckets[::per_period], bounds[:-1]):
        return None
    return per_period


def _fold_runs(name: str, values: Floats, periods: int, per_period: int) -> Floats:
    """Fold runs of ``per_period`` rows, as :func:`_fold` would; the sums are of whole numbers, exact."""
    runs = values.reshape(periods, per_period)
    folded: Floats
    if name in _MINIMA or name in _MAXIMA:
        folded = (np.fmin if name in _MINIMA else np.fmax).reduce(runs, axis=1)
    else:
        folded = (runs if name in _SUMMED else np.nan_to_num(runs)).sum(axis=1)  # _fetch zeroes _SUMMED
    return folded


_FIGURE_NEEDS: dict[str, tuple[str, ...]] = {
    "count": ("n",),
    "power_avg_w": ("p_sum", "p_n"),
    "power_min_w": ("p_min",),
    "power_max_w": ("p_max",),
    "voltage_avg_v": ("v_sum", "v_n"),
    "voltage_min_v": ("v_min",),
    "voltage_max_v": ("v_max",),
    "current_avg_a": ("i_sum", "i_n"),
    "energy_import_kwh": ("e_imp",),
    "energy_export_kwh": ("e_exp",),
    "covered_s": ("covered_ms",),
}


def period_figures(
    conn: sqlite3.Connection,
    pk: int,
    phase: int,
    tz: str,
    bounds: Ints,
    fields: Sequence[str] = FIGURE_FIELDS,
) -> dict[str, Floats]:
    """Return the asked figures of :data:`FIGURE_FIELDS` per period, NaN where ``aggregate`` gives None.

    The arithmetic is ``aggregate``'s (stored integers summed, then divided), so each figure
    equals the bucket's to the last bit. Only the columns the figures need are read.
    """
    unknown = set(fields) - set(FIGURE_FIELDS)
    if unknown:
        raise StoreError(f"unknown period figures: {', '.join(sorted(unknown))}")
    if len(bounds) < 2:
        return {name: np.zeros(0) for name in fields}
    sources = tuple(dict.fromkeys(source for name in fields for source in _FIGURE_NEEDS[name]))
    rows_bucket, values = _fetch(conn, pk, phase, tz, bounds, sources, as_sums=_SUMMED)
    raw = dict(zip(sources, values, strict=True))
    if rows_bucket is not None:
        raw = _fold(bounds, rows_bucket, raw)

    def mean(total: str, count: str) -> Floats:
        counts = raw[count]
        divided: Floats = np.divide(raw[total], counts, out=np.full(len(counts), np.nan), where=counts > 0)
        return divided / 1e3

    figure: dict[str, Callable[[], Floats]] = {
        "count": lambda: raw["n"],
        "power_avg_w": lambda: mean("p_sum", "p_n"),
        "power_min_w": lambda: raw["p_min"] / 1e3,
        "power_max_w": lambda: raw["p_max"] / 1e3,
        "voltage_avg_v": lambda: mean("v_sum", "v_n"),
        "voltage_min_v": lambda: raw["v_min"] / 1e3,
        "voltage_max_v": lambda: raw["v_max"] / 1e3,
        "current_avg_a": lambda: mean("i_sum", "i_n"),
        "energy_import_kwh": lambda: raw["e_imp"] / 1e9,
        "energy_export_kwh": lambda: raw["e_exp"] / 1e9,
        "covered_s": lambda: raw["covered_ms"] / 1000,
    }
    return {name: figure[name]() for name in fields}
