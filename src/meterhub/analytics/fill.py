"""Quarter-hour energy of one meter where readings leave gaps, filled from interval records.

Registers win wherever readings cover a quarter. An uncovered quarter takes the energy of the
finest source whose records cover it completely. A record no longer than a quarter and inside
it counts whole; a longer record gives what its covered quarters did not meter (it is exact in
total) to its uncovered quarters in proportion to time. A quarter no source covers keeps the
register increment the rollups spread over the gap.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from meterhub.model import PHASE_TOTAL, IntervalEnergy
from meterhub.store.base import Bucket, Store
from meterhub.timeutil import from_ms, to_ms

__all__ = [
    "INTERVAL_SOURCE_PREFIX",
    "MAX_RECORD",
    "QUARTER_MS",
    "SOURCE_REGISTERS",
    "Quarter",
    "fill_quarters",
    "quarter_energy",
    "records_near",
]

SOURCE_REGISTERS = "registers"
"""Energy metered by the meter's own cumulative registers."""
INTERVAL_SOURCE_PREFIX = "interval:"
"""Prefix of a source that reported energy per closed interval, as in ``interval:umeter``."""
QUARTER_MS = 900_000
MAX_RECORD = timedelta(days=32)
"""Longest interval record looked for before a range (UMeter reports whole months)."""
_TOLERANCE_MS = 500


@dataclass(frozen=True, slots=True)
class Quarter:
    """Energy of one UTC quarter hour, its covered seconds, origins and any records split into it."""

    import_kwh: float
    export_kwh: float
    covered_s: float
    parts: frozenset[str]
    split_records: tuple[tuple[int, int], ...] = ()
    """(start ms, end ms) of records longer than a quarter whose energy was divided by time."""


@dataclass(frozen=True, slots=True)
class _Share:
    import_kwh: float
    export_kwh: float
    uncovered_ms: int


def records_near(store: Store, meter_id: str, lo: datetime, hi: datetime) -> list[IntervalEnergy]:
    """Return the interval records that overlap [lo, hi), ordered by start (read-only)."""
    return [r for r in store.intervals(meter_id, lo - MAX_RECORD, hi) if r.end > lo]


def fill_quarters(
    store: Store, meter_id: str, lo: datetime, hi: datetime, records: Sequence[IntervalEnergy]
) -> dict[int, Quarter] | None:
    """Return the quarters of [lo, hi) keyed by start ms, or None when no record reaches in (read-only).

    ``records`` may hold more than those overlapping [lo, hi); they must be ordered by start.
    """
    lo_ms, hi_ms = to_ms(lo), to_ms(hi)
    first = bisect_left(records, lo - MAX_RECORD, key=lambda r: r.start)
    last = bisect_left(records, hi, key=lambda r: r.start)
    near = [r for r in records[first:last] if r.end > lo]
    if not near:
        return None
    span_lo = min(lo_ms, *(to_ms(r.start) for r in near))
    span_hi = max(hi_ms, *(to_ms(r.end) for r in near))
    span_lo -= span_lo % QUARTER_MS
    span_hi += -span_hi % QUARTER_MS
    rollups = store.rollups(meter_id, PHASE_TOTAL, from_ms(span_lo), from_ms(span_hi), 900)
    return quarter_energy({to_ms(b.start): b for b in rollups}, near, lo_ms, hi_ms)


def quarter_energy(
    rollups: dict[int, Bucket], records: list[IntervalEnergy], lo_ms: int, hi_ms: int
) -> dict[int, Quarter]:
    """Return every quarter of [lo_ms, hi_ms) from 15-minute rollups and interval records."""
    # A layer is one source's records of one length, so that a source reporting both hours and
    # days never counts the same energy twice; finer layers are tried first.
    layers: dict[tuple[int, str], dict[int, list[IntervalEnergy]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        r0, r1 = to_ms(record.start), to_ms(record.end)
        layer = layers[(r1 - r0, record.source)]
        for q_ms in range(max(r0 - r0 % QUARTER_MS, lo_ms), min(r1, hi_ms), QUARTER_MS):
            layer[q_ms].append(record)
    ranked = sorted(layers)
    shares: dict[tuple[str, int, int], _Share] = {}
    quarters: dict[int, Quarter] = {}
    for q_ms in range(lo_ms, hi_ms, QUARTER_MS):
        rollup = rollups.get(q_ms)
        covered_s = rollup.covered_s if rollup is not None else 0.0
        if covered_s * 1000 >= QUARTER_MS - _TOLERANCE_MS:
            quarters[q_ms] = _registers(rollup)
            continue
        for key in ranked:
            overlapping = layers[key].get(q_ms, [])
            if _overlap_ms(overlapping, q_ms) >= QUARTER_MS - _TOLERANCE_MS:
                quarters[q_ms] = _from_records(overlapping, q_ms, rollups, shares)
                break
        else:
            quarters[q_ms] = _registers(rollup)
    return quarters


def _registers(rollup: Bucket | None) -> Quarter:
    if rollup is None:
        return Quarter(0.0, 0.0, 0.0, frozenset())
    parts = frozenset({SOURCE_REGISTERS}) if rollup.covered_s > 0 else frozenset()
    return Quarter(rollup.energy_import_kwh, rollup.energy_export_kwh, rollup.covered_s, parts)


def _overlap_ms(records: list[IntervalEnergy], q_ms: int) -> int:
    return sum(max(0, min(to_ms(r.end), q_ms + QUARTER_MS) - max(to_ms(r.start), q_ms)) for r in records)


def _from_records(
    records: list[IntervalEnergy],
    q_ms: int,
    rollups: dict[int, Bucket],
    shares: dict[tuple[str, int, int], _Share],
) -> Quarter:
    import_kwh = export_kwh = 0.0
    split: list[tuple[int, int]] = []
    for record in records:
        r0, r1 = to_ms(record.start), to_ms(record.end)
        if q_ms <= r0 and r1 <= q_ms + QUARTER_MS:
            import_kwh += record.import_kwh or 0.0
            export_kwh += record.export_kwh or 0.0
            continue
        key = (record.source, r0, r1)
        share = shares.get(key)
        if share is None:
            share = shares[key] = _remainder(record, r0, r1, rollups)
        overlap_ms = min(r1, q_ms + QUARTER_MS) - max(r0, q_ms)
        if share.uncovered_ms > 0:
            import_kwh += share.import_kwh * overlap_ms / share.uncovered_ms
            export_kwh += share.export_kwh * overlap_ms / share.uncovered_ms
        split.append((r0, r1))
    parts = frozenset({INTERVAL_SOURCE_PREFIX + records[0].source})
    return Quarter(import_kwh, export_kwh, QUARTER_MS / 1000, parts, tuple(split))


def _remainder(record: IntervalEnergy, r0: int, r1: int, rollups: dict[int, Bucket]) -> _Share:
    """Return what a long record holds beyond the register energy of its covered quarters."""
    metered_import = metered_export = 0.0
    uncovered_ms = 0
    for k_ms in range(r0 - r0 % QUARTER_MS, r1, QUARTER_MS):
        overlap_ms = min(r1, k_ms + QUARTER_MS) - max(r0, k_ms)
        rollup = rollups.get(k_ms)
        if rollup is not None and rollup.covered_s * 1000 >= QUARTER_MS - _TOLERANCE_MS:
            metered_import += rollup.energy_import_kwh * overlap_ms / QUARTER_MS
            metered_export += rollup.energy_export_kwh * overlap_ms / QUARTER_MS
        else:
            uncovered_ms += overlap_ms
    return _Share(
        max(0.0, (record.import_kwh or 0.0) - metered_import),
        max(0.0, (record.export_kwh or 0.0) - metered_export),
        uncovered_ms,
    )
