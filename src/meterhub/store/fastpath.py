"""Vectorised rollups for a batch of new rows: the ingest fast path.

Given the rows of many series, all newer than what is stored for their series, and each series'
state, this computes with numpy what :class:`~meterhub.store.rollup.RollupBuilder` computes row by
row: per-bucket statistics, register energy spread over buckets, covered time, gap events and the
new series states. The arithmetic (register deltas, resets, the 10 MW rule, nothing spread over
an interval longer than 92 days) is the same; a test holds the two to the same results.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from meterhub.store.rollup import (
    MAX_POWER_W,
    MAX_SPREAD_MS,
    RESET_POWER_FALLBACK_W,
    WIDTHS_MS,
    RegisterState,
    SeriesState,
)

__all__ = ["BatchRollups", "SeriesBatch", "rollup_batch"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class SeriesBatch:
    """New rows of many series, sorted by (key, ts), values in canonical units (NaN = missing)."""

    keys: Ints
    ts_ms: Ints
    power_w: Floats
    voltage_v: Floats
    current_a: Floats
    import_kwh: Floats
    export_kwh: Floats
    gap_ms: Ints
    """Per row: the gap threshold of its meter."""
    track_gaps: npt.NDArray[np.bool_]
    """Per row: whether its series records gap events (phase 0)."""


@dataclass(frozen=True, slots=True)
class BatchRollups:
    """Per-bucket aggregates as columns; one entry per (width, key, bucket)."""

    width_ms: Ints
    keys: Ints
    bucket_ms: Ints
    n: Ints
    p_n: Ints
    p_sum: Floats
    p_min: Floats
    p_max: Floats
    v_n: Ints
    v_sum: Floats
    v_min: Floats
    v_max: Floats
    i_n: Ints
    i_sum: Floats
    first_ms: Floats
    first_imp: Floats
    first_exp: Floats
    last_ms: Floats
    last_imp: Floats
    last_exp: Floats
    e_imp: Floats
    e_exp: Floats
    covered_ms: Ints


def _register_deltas(k0: Floats, k1: Floats, dt_ms: Ints, p0: Floats, p1: Floats) -> Floats:
    """Vectorised :func:`~meterhub.store.rollup.register_delta_kwh`."""
    hours = dt_ms / 3_600_000
    delta = k1 - k0
    forward = np.where(delta <= MAX_POWER_W / 1000 * hours, delta, 0.0)
    both_missing = np.isnan(p0) & np.isnan(p1)
    with np.errstate(invalid="ignore"):
        peak_w = np.fmax(np.abs(p0), np.abs(p1))
    bound_w = np.where(both_missing, RESET_POWER_FALLBACK_W, 1.5 * peak_w + 100.0)
    restart = np.where((k1 >= 0) & (k1 <= bound_w / 1000 * hours), k1, 0.0)
    return np.where(dt_ms > MAX_SPREAD_MS, 0.0, np.where(delta >= 0, forward, restart))


def _state_columns(series_keys: Ints, states: dict[int, SeriesState]) -> dict[str, Floats]:
    """Return each series' stored state as columns; NaN where there is none."""
    count = len(series_keys)
    columns = {
        name: np.full(count, np.nan)
        for name in ("last", "imp_ts", "imp_kwh", "imp_p", "exp_ts", "exp_kwh", "exp_p")
    }
    for position, key in enumerate(series_keys.tolist()):
        state = states.get(key)
        if state is None:
            continue
        if state.last_ms is not None:
            columns["last"][position] = state.last_ms
        for prefix, register in (("imp", state.imp), ("exp", state.exp)):
            if register is not None:
                columns[f"{prefix}_ts"][position] = register.ts_ms
                columns[f"{prefix}_kwh"][position] = register.kwh
                columns[f"{prefix}_p"][position] = (
                    np.nan if register.power_w is None else register.power_w
                )
    return columns


class _Contributions:
    """Energy and covered time per (key, finest bucket), collected from interval pairs."""

    def __init__(self, width_ms: int) -> None:
        self.width = width_ms
        self.parts: list[tuple[Ints, Ints, Floats, Floats, Ints]] = []

    def add(
        self, keys: Ints, t0: Ints, t1: Ints, e_imp: Floats, e_exp: Floats, covered: bool
    ) -> None:
        """Spread each interval (t0, t1] over the buckets it crosses, in proportion to time.

        An interval longer than MAX_SPREAD_MS is left out: it carries no energy and covers nothing.
        """
        width = self.width
        kept = t1 - t0 <= MAX_SPREAD_MS
        keys, t0, t1, e_imp, e_exp = keys[kept], t0[kept], t1[kept], e_imp[kept], e_exp[kept]
        span = t1 - t0
        b0 = t0 - t0 % width
        single = t1 <= b0 + width
        self.parts.append(
            (
                keys[single],
                b0[single],
                e_imp[single],
                e_exp[single],
                span[single] if covered else np.zeros(int(single.sum()), dtype=np.int64),
            )
        )
        spread = ~single
        if not spread.any():
            return
        # Each interval crossing buckets becomes one part per bucket it overlaps, in order: the
        # bucket starts from its first bucket up to its end, with energy in proportion to time.
        k, a, b, ei, ee = keys[spread], t0[spread], t1[spread], e_imp[spread], e_exp[spread]
        first = b0[spread]
        parts = (b - first + width - 1) // width
        owner = np.repeat(np.arange(len(k)), parts)
        step = np.arange(len(owner)) - np.repeat(np.cumsum(parts) - parts, parts)
        bucket = first[owner] + step * width
        a, b = a[owner], b[owner]
        overlap = np.minimum(b, bucket + width) - np.maximum(a, bucket)
        length = b - a
        self.parts.append(
            (
                k[owner],
                bucket,
                ei[owner] * overlap / length,
                ee[owner] * overlap / length,
                overlap if covered else np.zeros(len(owner), dtype=np.int64),
            )
        )

    def columns(self) -> tuple[Ints, Ints, Floats, Floats, Ints]:
        """Return all contributions as concatenated columns."""
        k, b, ei, ee, cov = zip(*self.parts, strict=True)
        return (
            np.concatenate(k).astype(np.int64),
            np.concatenate(b).astype(np.int64),
            np.concatenate(ei),
            np.concatenate(ee),
            np.concatenate(cov).astype(np.int64),
        )


def _register_pairs(
    batch: SeriesBatch,
    values: Floats,
    series_of_row: Ints,
    state_ts: Floats,
    state_kwh: Floats,
    state_p: Floats,
    contributions: _Contributions,
    is_import: bool,
) -> Ints:
    """Add the energy between consecutive register readings; return each series' last register row."""
    rows = np.nonzero(~np.isnan(values))[0]
    keys = batch.keys[rows]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    prev_ts = np.empty(len(rows))
    prev_kwh = np.empty(len(rows))
    prev_p = np.empty(len(rows))
    prev_ts[1:] = batch.ts_ms[rows[:-1]]
    prev_kwh[1:] = values[rows[:-1]]
    prev_p[1:] = batch.power_w[rows[:-1]]
    positions = series_of_row[rows[first]]
    prev_ts[first], prev_kwh[first], prev_p[first] = (
        state_ts[positions],
        state_kwh[positions],
        state_p[positions],
    )
    valid = ~np.isnan(prev_ts)
    t0 = prev_ts[valid].astype(np.int64)
    t1 = batch.ts_ms[rows[valid]]
    energy = _register_deltas(
        prev_kwh[valid], values[rows[valid]], t1 - t0, prev_p[valid], batch.power_w[rows[valid]]
    )
    zeros = np.zeros(len(energy))
    if is_import:
        contributions.add(keys[valid], t0, t1, energy, zeros, False)
    else:
        contributions.add(keys[valid], t0, t1, zeros, energy, False)
    last_row = np.full(int(series_of_row[-1]) + 1, -1, dtype=np.int64)
    last_row[series_of_row[rows]] = rows  # later rows overwrite earlier ones
    return last_row


def _group_reduce(
    starts: Ints, columns: Mapping[str, npt.NDArray[np.float64] | Ints]
) -> dict[str, npt.NDArray[np.float64]]:
    """Reduce row columns over the groups beginning at ``starts``."""
    out: dict[str, npt.NDArray[np.float64]] = {}
    for name, column in columns.items():
        if name.endswith("_min"):
            out[name] = np.fmin.reduceat(column, starts)
        elif name.endswith("_max"):
            out[name] = np.fmax.reduceat(column, starts)
        else:
            out[name] = np.add.reduceat(column, starts).astype(np.float64)
    return out


def rollup_batch(
    batch: SeriesBatch, states: dict[int, SeriesState], widths_ms: tuple[int, ...] = WIDTHS_MS
) -> tuple[BatchRollups, list[tuple[int, int, int]], dict[int, SeriesState]]:
    """Return the rollups, gap events (key, start, end) and new states of a batch of new rows."""
    width = min(widths_ms)
    keys, ts = batch.keys, batch.ts_ms
    count = len(keys)
    series_start = np.ones(count, dtype=bool)
    series_start[1:] = keys[1:] != keys[:-1]
    starts = np.nonzero(series_start)[0]
    series_keys = keys[starts]
    series_of_row = np.cumsum(series_start) - 1
    stored = _state_columns(series_keys, states)

    prev_any = np.empty(count)
    prev_any[1:] = ts[:-1]
    prev_any[series_start] = stored["last"]
    has_prev = ~np.isnan(prev_any)
    dt = ts - np.where(has_prev, prev_any, 0)
    gap = has_prev & (dt > batch.gap_ms)
    gap_rows = np.nonzero(gap & batch.track_gaps)[0]
    gaps = list(
        zip(
            keys[gap_rows].tolist(),
            prev_any[gap_rows].astype(np.int64).tolist(),
            ts[gap_rows].tolist(),
            strict=True,
        )
    )

    contributions = _Contributions(width)
    cover = has_prev & ~gap
    t0 = prev_any[cover].astype(np.int64)
    zeros = np.zeros(int(cover.sum()))
    contributions.add(keys[cover], t0, ts[cover], zeros, zeros, True)
    last_imp = _register_pairs(
        batch,
        batch.import_kwh,
        series_of_row,
        stored["imp_ts"],
        stored["imp_kwh"],
        stored["imp_p"],
        contributions,
        True,
    )
    last_exp = _register_pairs(
        batch,
        batch.export_kwh,
        series_of_row,
        stored["exp_ts"],
        stored["exp_kwh"],
        stored["exp_p"],
        contributions,
        False,
    )

    rollups = _combine(batch, series_start, contributions, widths_ms)
    new_states = _new_states(batch, starts, series_keys, states, last_imp, last_exp)
    return rollups, gaps, new_states


def _combine(
    batch: SeriesBatch,
    series_start: npt.NDArray[np.bool_],
    contributions: _Contributions,
    widths_ms: tuple[int, ...],
) -> BatchRollups:
    width = min(widths_ms)
    keys, ts = batch.keys, batch.ts_ms
    bucket = ts - ts % width
    group_start = series_start.copy()
    group_start[1:] |= bucket[1:] != bucket[:-1]
    groups = np.nonzero(group_start)[0]
    ends = np.append(groups[1:], len(ts)) - 1
    p, v, i = batch.power_w, batch.voltage_v, batch.current_a
    stats = _group_reduce(
        groups,
        {
            "n": np.ones(len(ts), dtype=np.int64),
            "p_n": (~np.isnan(p)).astype(np.int64),
            "p_sum": np.nan_to_num(p),
            "p_min": p,
            "p_max": p,
            "v_n": (~np.isnan(v)).astype(np.int64),
            "v_sum": np.nan_to_num(v),
            "v_min": v,
            "v_max": v,
            "i_n": (~np.isnan(i)).astype(np.int64),
            "i_sum": np.nan_to_num(i),
        },
    )
    stats.update(
        first_ms=ts[groups].astype(np.float64),
        first_imp=batch.import_kwh[groups],
        first_exp=batch.export_kwh[groups],
        last_ms=ts[ends].astype(np.float64),
        last_imp=batch.import_kwh[ends],
        last_exp=batch.export_kwh[ends],
    )
    c_keys, c_buckets, c_imp, c_exp, c_cov = contributions.columns()
    all_keys = np.concatenate((keys[groups], c_keys))
    all_buckets = np.concatenate((bucket[groups], c_buckets))
    # One integer per (series, bucket): the bucket's index counted from the batch's first bucket,
    # so buckets before 1970 (negative times) keep their series.
    first_index = int(all_buckets.min()) // width
    shift = np.int64(int(all_buckets.max()) // width - first_index + 1)
    codes = all_keys * shift + (all_buckets // width - first_index)
    unique, inverse = np.unique(codes, return_inverse=True)
    size = len(unique)
    fine: dict[str, npt.NDArray[np.float64]] = {}
    for name, column in stats.items():
        filler = 0.0 if name.endswith(("_n", "_sum")) or name == "n" else np.nan
        fine[name] = np.full(size, filler)
        fine[name][inverse[: len(groups)]] = column
    tail = inverse[len(groups) :]
    fine["e_imp"] = np.bincount(tail, weights=c_imp, minlength=size).astype(np.float64)
    fine["e_exp"] = np.bincount(tail, weights=c_exp, minlength=size).astype(np.float64)
    covered = np.bincount(tail, weights=c_cov.astype(np.float64), minlength=size)
    fine["covered_ms"] = covered.astype(np.float64)
    fine_keys = unique // shift
    fine_buckets = (unique % shift + first_index) * width
    parts = [(width, fine_keys, fine_buckets, fine)]
    for coarse_width in sorted(set(widths_ms) - {width}):
        parts.append(_coarsen(fine_keys, fine_buckets, fine, coarse_width))
    return _as_rollups(parts)


def _coarsen(
    keys: Ints, buckets: Ints, fine: dict[str, Floats], width: int
) -> tuple[int, Ints, Ints, dict[str, Floats]]:
    """Merge fine buckets (sorted by key, bucket) into buckets of ``width``."""
    coarse = buckets - buckets % width
    start = np.ones(len(keys), dtype=bool)
    start[1:] = (keys[1:] != keys[:-1]) | (coarse[1:] != coarse[:-1])
    groups = np.nonzero(start)[0]
    sums = {
        name: fine[name]
        for name in fine
        if name.endswith(("_n", "_sum", "_min", "_max"))
        or name in ("n", "e_imp", "e_exp", "covered_ms")
    }
    out = _group_reduce(groups, sums)
    index = np.arange(len(keys))
    has_rows = fine["n"] > 0
    first = np.minimum.reduceat(np.where(has_rows, index, len(keys)), groups)
    last = np.maximum.reduceat(np.where(has_rows, index, -1), groups)
    for edge, picked in (("first", first), ("last", last)):
        found = (picked >= 0) & (picked < len(keys))
        safe = np.where(found, picked, 0)
        for name in (f"{edge}_ms", f"{edge}_imp", f"{edge}_exp"):
            out[name] = np.where(found, fine[name][safe], np.nan)
    return width, keys[groups], coarse[groups], out


def _as_rollups(parts: list[tuple[int, Ints, Ints, dict[str, Floats]]]) -> BatchRollups:
    def cat(name: str) -> Floats:
        return np.concatenate([columns[name] for *_, columns in parts])

    def cat_int(name: str) -> Ints:
        return cat(name).astype(np.int64)

    return BatchRollups(
        width_ms=np.concatenate([np.full(len(k), w, dtype=np.int64) for w, k, _, _ in parts]),
        keys=np.concatenate([k for _, k, _, _ in parts]),
        bucket_ms=np.concatenate([b for _, _, b, _ in parts]),
        n=cat_int("n"),
        p_n=cat_int("p_n"),
        p_sum=cat("p_sum"),
        p_min=cat("p_min"),
        p_max=cat("p_max"),
        v_n=cat_int("v_n"),
        v_sum=cat("v_sum"),
        v_min=cat("v_min"),
        v_max=cat("v_max"),
        i_n=cat_int("i_n"),
        i_sum=cat("i_sum"),
        first_ms=cat("first_ms"),
        first_imp=cat("first_imp"),
        first_exp=cat("first_exp"),
        last_ms=cat("last_ms"),
        last_imp=cat("last_imp"),
        last_exp=cat("last_exp"),
        e_imp=cat("e_imp"),
        e_exp=cat("e_exp"),
        covered_ms=cat_int("covered_ms"),
    )


def _register_states(rows: Ints, batch: SeriesBatch, values: Floats) -> list[RegisterState | None]:
    """Return the register state at each row index (None where the index is -1)."""
    safe = np.where(rows >= 0, rows, 0)
    found = (rows >= 0).tolist()
    ts = batch.ts_ms[safe].tolist()
    kwh = values[safe].tolist()
    power = batch.power_w[safe].tolist()
    return [
        RegisterState(t, k, None if math.isnan(p) else p) if ok else None
        for ok, t, k, p in zip(found, ts, kwh, power, strict=True)
    ]


def _new_states(
    batch: SeriesBatch,
    starts: Ints,
    series_keys: Ints,
    states: dict[int, SeriesState],
    last_imp: Ints,
    last_exp: Ints,
) -> dict[int, SeriesState]:
    ends = np.append(starts[1:], len(batch.keys)) - 1
    imports = _register_states(last_imp, batch, batch.import_kwh)
    exports = _register_states(last_exp, batch, batch.export_kwh)
    result: dict[int, SeriesState] = {}
    for key, last_ms, imp, exp in zip(
        series_keys.tolist(), batch.ts_ms[ends].tolist(), imports, exports, strict=True
    ):
        old = states.get(key)
        if old is not None:
            imp = imp or old.imp
            exp = exp or old.exp
        result[key] = SeriesState(last_ms, imp, exp)
    return result
