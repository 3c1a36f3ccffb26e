"""Rollup arithmetic shared by every backend: buckets, register deltas, gaps.

Pure functions and small accumulators: the backends feed them rows and persist what they yield.
A bucket's energy comes from register increments between consecutive readings that carry the
register; an increment is spread over the buckets its interval crosses in proportion to time.

An interval longer than :data:`MAX_SPREAD_MS` (92 days) is spread over nothing: its energy is
unknown, as across a meter swap, and it covers no time. So one reading costs at most the buckets
of 92 days, however far it lies from its neighbours; the gap event between them is still kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "MAX_POWER_W",
    "MAX_SPREAD_MS",
    "RESET_POWER_FALLBACK_W",
    "WIDTHS_MS",
    "Agg",
    "RegisterState",
    "RollupBuilder",
    "Row",
    "SeriesState",
    "register_delta_kwh",
]

WIDTHS_MS: tuple[int, ...] = (900_000, 3_600_000)
MAX_POWER_W = 10_000_000.0
"""Largest plausible power; a forward register jump above it over its interval is a swap."""
MAX_SPREAD_MS = 92 * 86_400_000
"""Longest interval whose register increment is spread over buckets; a longer one counts zero."""
RESET_POWER_FALLBACK_W = 50_000.0
"""Power assumed plausible after a register decrease when the readings carry no power."""


class Row(NamedTuple):
    """The fields of one reading that rollups use; ``stats`` False means pair-only context."""

    ts_ms: int
    power_w: float | None
    voltage_v: float | None
    current_a: float | None
    import_kwh: float | None
    export_kwh: float | None
    stats: bool = True


class RegisterState(NamedTuple):
    """The last reading of a series that carried one register."""

    ts_ms: int
    kwh: float
    power_w: float | None


class SeriesState(NamedTuple):
    """Where one (meter, phase) series stands: its newest row and newest register rows."""

    last_ms: int | None = None
    imp: RegisterState | None = None
    exp: RegisterState | None = None


@dataclass(slots=True)
class Agg:
    """A mutable bucket accumulator in canonical units."""

    bucket_ms: int
    n: int = 0
    p_n: int = 0
    p_sum: float = 0.0
    p_min: float | None = None
    p_max: float | None = None
    v_n: int = 0
    v_sum: float = 0.0
    v_min: float | None = None
    v_max: float | None = None
    i_n: int = 0
    i_sum: float = 0.0
    first_ms: int | None = None
    first_imp: float | None = None
    first_exp: float | None = None
    last_ms: int | None = None
    last_imp: float | None = None
    last_exp: float | None = None
    e_imp: float = 0.0
    e_exp: float = 0.0
    covered_ms: int = 0

    def add_row(self, row: Row) -> None:
        """Fold one reading's instantaneous values into the bucket."""
        self.n += 1
        p = row.power_w
        if p is not None:
            self.p_n += 1
            self.p_sum += p
            if self.p_min is None or p < self.p_min:
                self.p_min = p
            if self.p_max is None or p > self.p_max:
                self.p_max = p
        v = row.voltage_v
        if v is not None:
            self.v_n += 1
            self.v_sum += v
            if self.v_min is None or v < self.v_min:
                self.v_min = v
            if self.v_max is None or v > self.v_max:
                self.v_max = v
        if row.current_a is not None:
            self.i_n += 1
            self.i_sum += row.current_a
        if self.first_ms is None or row.ts_ms < self.first_ms:
            self.first_ms = row.ts_ms
            self.first_imp = row.import_kwh
            self.first_exp = row.export_kwh
        if self.last_ms is None or row.ts_ms >= self.last_ms:
            self.last_ms = row.ts_ms
            self.last_imp = row.import_kwh
            self.last_exp = row.export_kwh

    def merge(self, other: Agg) -> None:
        """Fold another accumulator of a sub-period in."""
        self.n += other.n
        self.p_n += other.p_n
        self.p_sum += other.p_sum
        if other.p_min is not None and (self.p_min is None or other.p_min < self.p_min):
            self.p_min = other.p_min
        if other.p_max is not None and (self.p_max is None or other.p_max > self.p_max):
            self.p_max = other.p_max
        self.v_n += other.v_n
        self.v_sum += other.v_sum
        if other.v_min is not None and (self.v_min is None or other.v_min < self.v_min):
            self.v_min = other.v_min
        if other.v_max is not None and (self.v_max is None or other.v_max > self.v_max):
            self.v_max = other.v_max
        self.i_n += other.i_n
        self.i_sum += other.i_sum
        if other.first_ms is not None and (self.first_ms is None or other.first_ms < self.first_ms):
            self.first_ms, self.first_imp, self.first_exp = (
                other.first_ms,
                other.first_imp,
                other.first_exp,
            )
        if other.last_ms is not None and (self.last_ms is None or other.last_ms >= self.last_ms):
            self.last_ms, self.last_imp, self.last_exp = (
                other.last_ms,
                other.last_imp,
                other.last_exp,
            )
        self.e_imp += other.e_imp
        self.e_exp += other.e_exp
        self.covered_ms += other.covered_ms


def register_delta_kwh(
    prev_kwh: float,
    cur_kwh: float,
    dt_ms: int,
    prev_power_w: float | None,
    cur_power_w: float | None,
) -> float:
    """Return the energy metered between two register values; never negative.

    A decrease is a counter reset, wrap or meter swap: the new value counts as energy since a
    restart from zero when it is plausible for the interval (from the readings' power, else
    50 kW), and the interval's energy is zero otherwise. A forward jump beyond 10 MW over the
    interval is a swap to a meter with a higher register and counts as zero. Across an interval
    longer than 92 days the energy is unknown and counts as zero.
    """
    if dt_ms > MAX_SPREAD_MS:
        return 0.0
    hours = dt_ms / 3_600_000
    delta = cur_kwh - prev_kwh
    if delta >= 0:
        return delta if delta <= MAX_POWER_W / 1000 * hours else 0.0
    powers = [abs(p) for p in (prev_power_w, cur_power_w) if p is not None]
    bound_w = 1.5 * max(powers) + 100.0 if powers else RESET_POWER_FALLBACK_W
    return cur_kwh if 0 <= cur_kwh <= bound_w / 1000 * hours else 0.0


@dataclass(slots=True)
class RollupBuilder:
    """Accumulates bucket contributions and gap events for the series it is fed.

    Only the finest width is accumulated row by row; every coarser width must be a multiple of
    it and is merged from the finest buckets on :meth:`take`, which is exact because energy is
    spread linearly in time and the fine buckets tile the coarse ones.
    """

    widths_ms: tuple[int, ...] = WIDTHS_MS
    aggs: dict[int, Agg] = field(default_factory=dict)
    """finest bucket start -> accumulator, for the one series being fed."""
    gaps: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        finest = min(self.widths_ms)
        if any(width % finest for width in self.widths_ms):
            raise ValueError("every rollup width must be a multiple of the finest one")

    def feed(
        self, state: SeriesState, rows: Iterable[Row], gap_ms: int, track_gaps: bool
    ) -> SeriesState:
        """Fold rows (ascending ts, newer than ``state.last_ms``) in; return the new state."""
        width = min(self.widths_ms)
        aggs = self.aggs
        last_ms, imp, exp = state
        for row in rows:
            ts = row.ts_ms
            if row.stats:
                bucket = ts - ts % width
                agg = aggs.get(bucket)
                if agg is None:
                    agg = aggs[bucket] = Agg(bucket)
                agg.add_row(row)
            covered_from = None
            if last_ms is not None:
                if ts - last_ms > gap_ms:
                    if track_gaps and row.stats:
                        self.gaps.append((last_ms, ts))
                else:
                    covered_from = last_ms
            e_imp = e_exp = None
            power = row.power_w
            if row.import_kwh is not None:
                if imp is not None:
                    e_imp = (
                        imp.ts_ms,
                        register_delta_kwh(
                            imp.kwh, row.import_kwh, ts - imp.ts_ms, imp.power_w, power
                        ),
                    )
                imp = RegisterState(ts, row.import_kwh, power)
            if row.export_kwh is not None:
                if exp is not None:
                    e_exp = (
                        exp.ts_ms,
                        register_delta_kwh(
                            exp.kwh, row.export_kwh, ts - exp.ts_ms, exp.power_w, power
                        ),
                    )
                exp = RegisterState(ts, row.export_kwh, power)
            if (
                e_imp is not None
                and e_exp is not None
                and e_imp[0] == e_exp[0]
                and (covered_from is None or covered_from == e_imp[0])
            ):
                # The common case: both registers and the coverage span the same interval.
                self._spread(e_imp[0], ts, e_imp[1], e_exp[1], covered_from is not None)
            else:
                self._spread_apart(ts, covered_from, e_imp, e_exp)
            last_ms = ts
        return SeriesState(last_ms, imp, exp)

    def _spread_apart(
        self,
        ts: int,
        covered_from: int | None,
        e_imp: tuple[int, float] | None,
        e_exp: tuple[int, float] | None,
    ) -> None:
        if e_imp is not None:
            self._spread(e_imp[0], ts, e_imp[1], 0.0, covered_from == e_imp[0])
            if covered_from == e_imp[0]:
                covered_from = None
        if e_exp is not None:
            self._spread(e_exp[0], ts, 0.0, e_exp[1], covered_from == e_exp[0])
            if covered_from == e_exp[0]:
                covered_from = None
        if covered_from is not None:
            self._spread(covered_from, ts, 0.0, 0.0, True)

    def _spread(self, t0: int, t1: int, e_imp: float, e_exp: float, covered: bool) -> None:
        span = t1 - t0
        if span <= 0 or span > MAX_SPREAD_MS:  # bounds the buckets one reading can touch
            return
        width = min(self.widths_ms)
        aggs = self.aggs
        bucket = t0 - t0 % width
        if t1 <= bucket + width:  # the interval lies in one bucket
            agg = aggs.get(bucket)
            if agg is None:
                agg = aggs[bucket] = Agg(bucket)
            agg.e_imp += e_imp
            agg.e_exp += e_exp
            if covered:
                agg.covered_ms += span
            return
        while bucket < t1:
            overlap = min(t1, bucket + width) - max(t0, bucket)
            agg = aggs.get(bucket)
            if agg is None:
                agg = aggs[bucket] = Agg(bucket)
            agg.e_imp += e_imp * overlap / span
            agg.e_exp += e_exp * overlap / span
            if covered:
                agg.covered_ms += overlap
            bucket += width

    def take(self) -> tuple[dict[tuple[int, int], Agg], list[tuple[int, int]]]:
        """Return what was accumulated, keyed (width_ms, bucket_ms) for every width, and forget it."""
        finest = min(self.widths_ms)
        result: dict[tuple[int, int], Agg] = {}
        for bucket, agg in self.aggs.items():
            result[(finest, bucket)] = agg
            for width in self.widths_ms:
                if width == finest:
                    continue
                start = bucket - bucket % width
                coarse = result.get((width, start))
                if coarse is None:
                    coarse = result[(width, start)] = Agg(start)
                coarse.merge(agg)
        gaps = self.gaps
        self.aggs, self.gaps = {}, []
        return result, gaps
