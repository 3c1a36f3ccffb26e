"""Energy per calendar period of one meter: registers through the rollups, gaps filled from records.

A period's energy is what the rollups hold: register increments between consecutive readings,
with counter resets, wraps and meter swaps already resolved at ingest, so it is never negative
and never doubled. Where readings leave a 15-minute quarter uncovered, interval-energy records
(UMeter usage, AMS reader dayplot, IAMMETER energyhistory, Intellimeter interval) that cover
it take its place; where none does, the register increment spread over the gap remains and the
period is flagged estimated. Every figure names its sources.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from meterhub.analytics.calendar import CalendarUnit, local_boundaries, to_zone
from meterhub.analytics.fill import (
    INTERVAL_SOURCE_PREFIX,
    SOURCE_REGISTERS,
    Quarter,
    fill_quarters,
    records_near,
)
from meterhub.errors import InputError
from meterhub.model import PHASE_TOTAL
from meterhub.store.base import Store, SumField
from meterhub.timeutil import to_ms

__all__ = [
    "INTERVAL_SOURCE_PREFIX",
    "MAX_BUCKETS",
    "SOURCE_ESTIMATED",
    "SOURCE_NONE",
    "SOURCE_REGISTERS",
    "EnergyBucket",
    "EnergyColumns",
    "calendar_edges",
    "energy_between",
    "energy_columns_between",
    "label",
    "meter_energy",
    "total",
]

SOURCE_ESTIMATED = "estimated"
"""Energy of a stretch no reading or record covers: the register increment pro-rated over it."""
SOURCE_NONE = "none"
"""Nothing is known about the period."""
MAX_BUCKETS = 50_000
"""Most periods one call returns (a year of 15-minute periods is 35,040)."""
COVER_TOLERANCE_S = 0.5
"""Coverage this close to a period's length counts as complete."""


@dataclass(frozen=True, slots=True)
class EnergyBucket:
    """Energy through one meter (or a place's grid) over [start, end), in kWh, with its sources.

    ``source`` joins the origins with ``+`` (``registers``, ``interval:<name>``, ``estimated``)
    or is ``none``; ``estimated`` is set when part of the period is not covered by readings or
    records, or when a record reaching past the period's edge had to be split by time.
    """

    start: datetime
    end: datetime
    energy_import_kwh: float
    energy_export_kwh: float
    covered_s: float
    source: str
    estimated: bool

    @property
    def width_s(self) -> float:
        """Return the period's length in seconds."""
        return (self.end - self.start).total_seconds()

    @property
    def energy_net_kwh(self) -> float:
        """Return import minus export."""
        return self.energy_import_kwh - self.energy_export_kwh


def label(parts: Iterable[str], covered_s: float, width_s: float, has_energy: bool) -> tuple[str, bool]:
    """Return the source text and the estimated flag of a period from its origins and coverage."""
    origins = set(parts)
    estimated = covered_s < width_s - COVER_TOLERANCE_S
    if estimated and (origins or has_energy):
        origins.add(SOURCE_ESTIMATED)
    return _joined(origins), estimated


def _joined(origins: set[str]) -> str:
    """Return origins as source text: registers, then interval sources by name, then estimated."""
    ordered = [
        *([SOURCE_REGISTERS] if SOURCE_REGISTERS in origins else []),
        *sorted(p for p in origins if p.startswith(INTERVAL_SOURCE_PREFIX)),
        *([SOURCE_ESTIMATED] if SOURCE_ESTIMATED in origins else []),
    ]
    return "+".join(ordered) or SOURCE_NONE


def calendar_edges(start: datetime, end: datetime, tz: str | tzinfo, groupby: CalendarUnit) -> list[datetime]:
    """Return the UTC edges of the local ``groupby`` periods covering [start, end)."""
    if end <= start:
        raise InputError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    edges = local_boundaries(start, end, to_zone(tz), groupby)
    if len(edges) - 1 > MAX_BUCKETS:
        raise InputError(
            f"{len(edges) - 1} periods of {groupby} exceed {MAX_BUCKETS}; choose a coarser --bucket"
        )
    return edges


def meter_energy(
    store: Store,
    meter_id: str,
    start: datetime,
    end: datetime,
    groupby: CalendarUnit,
    tz: str | tzinfo | None = None,
) -> list[EnergyBucket]:
    """Return a meter's energy per local period covering [start, end) (read-only).

    Periods are whole calendar periods in ``tz`` (default: the meter's zone), so the first
    begins at or before ``start`` and the last ends at or after ``end``.
    """
    zone = tz if tz is not None else store.get_meter(meter_id).tz
    return energy_between(store, meter_id, calendar_edges(start, end, zone, groupby))


def energy_between(store: Store, meter_id: str, boundaries: Sequence[datetime]) -> list[EnergyBucket]:
    """Return a meter's energy between consecutive 15-minute-aligned UTC boundaries (read-only)."""
    return energy_columns_between(store, meter_id, boundaries).buckets()


@dataclass(frozen=True, slots=True)
class EnergyColumns:
    """Energy of consecutive periods as columns, what :func:`energy_between` gives as buckets.

    ``edges`` holds the UTC boundaries (one more than the periods); the other fields hold one
    value per period, equal to the matching :class:`EnergyBucket` field.
    """

    edges: Sequence[datetime]
    energy_import_kwh: list[float]
    energy_export_kwh: list[float]
    covered_s: list[float]
    source: list[str]
    estimated: list[bool]

    def buckets(self) -> list[EnergyBucket]:
        """Return the periods as :class:`EnergyBucket` records."""
        return [
            EnergyBucket(*fields)
            for fields in zip(
                self.edges[:-1],
                self.edges[1:],
                self.energy_import_kwh,
                self.energy_export_kwh,
                self.covered_s,
                self.source,
                self.estimated,
                strict=True,
            )
        ]


def energy_columns_between(
    store: Store,
    meter_id: str,
    boundaries: Sequence[datetime],
    bounds_ms: npt.NDArray[np.int64] | None = None,
) -> EnergyColumns:
    """Return a meter's energy between consecutive 15-minute-aligned UTC boundaries as columns.

    ``bounds_ms`` may give the boundaries as epoch milliseconds already. Every period is
    labelled from the sums in one pass (numpy past a few dozen periods); only the stretches
    the readings leave incomplete look for interval records (one look-up for all of them).
    """
    if bounds_ms is None:
        bounds_ms = np.array([to_ms(b) for b in boundaries], dtype=np.int64)
    sums = store.period_sums(meter_id, PHASE_TOTAL, bounds_ms, _SUMS)
    imported, exported, covered = sums["energy_import_kwh"], sums["energy_export_kwh"], sums["covered_s"]
    columns = EnergyColumns(boundaries, imported.tolist(), exported.tolist(), covered.tolist(), [], [])
    if len(covered) > _FEW_PERIODS:
        incomplete = ~(covered >= np.diff(bounds_ms) / 1000 - COVER_TOLERANCE_S)
        codes: list[int] = ((covered > 0) * 4 + incomplete * 2 + ((imported != 0) | (exported != 0))).tolist()
    else:  # a few periods go faster without numpy
        edges = bounds_ms.tolist()
        codes = [
            (c > 0) * 4 + (not c >= (hi - lo) / 1000 - COVER_TOLERANCE_S) * 2 + (i != 0 or e != 0)
            for lo, hi, i, e, c in zip(
                edges[:-1],
                edges[1:],
                columns.energy_import_kwh,
                columns.energy_export_kwh,
                columns.covered_s,
                strict=True,
            )
        ]
    columns.source.extend([_SOURCE_OF[code] for code in codes])
    columns.estimated.extend([_ESTIMATED_OF[code] for code in codes])
    incomplete_at = [index for index, code in enumerate(codes) if code & 2]
    if incomplete_at:
        _fill_incomplete(store, meter_id, columns, incomplete_at)
    return columns


def _fill_incomplete(store: Store, meter_id: str, columns: EnergyColumns, indices: list[int]) -> None:
    """Replace the incomplete periods' figures by what interval records covering them give."""
    edges = columns.edges
    runs: list[list[int]] = []
    for index in indices:
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    # One look-up of interval records serves every stretch the readings leave incomplete.
    records = records_near(store, meter_id, edges[runs[0][0]], edges[runs[-1][-1] + 1])
    if not records:
        return
    for run in runs:
        quarters = fill_quarters(store, meter_id, edges[run[0]], edges[run[-1] + 1], records)
        if quarters is None:
            continue
        for index in run:
            bucket = _from_quarters(
                _Period(
                    edges[index],
                    edges[index + 1],
                    columns.energy_import_kwh[index],
                    columns.energy_export_kwh[index],
                    columns.covered_s[index],
                ),
                quarters,
            )
            columns.energy_import_kwh[index] = bucket.energy_import_kwh
            columns.energy_export_kwh[index] = bucket.energy_export_kwh
            columns.covered_s[index] = bucket.covered_s
            columns.source[index] = bucket.source
            columns.estimated[index] = bucket.estimated


def total(buckets: Sequence[EnergyBucket]) -> EnergyBucket:
    """Return one bucket spanning consecutive buckets, with their energy and sources summed."""
    if not buckets:
        raise InputError("no periods to add up")
    parts = {p for b in buckets for p in b.source.split("+") if p != SOURCE_NONE}
    return EnergyBucket(
        buckets[0].start,
        buckets[-1].end,
        sum(b.energy_import_kwh for b in buckets),
        sum(b.energy_export_kwh for b in buckets),
        sum(b.covered_s for b in buckets),
        _joined(parts),
        any(b.estimated for b in buckets),
    )


class _Period(NamedTuple):
    start: datetime
    end: datetime
    energy_import_kwh: float
    energy_export_kwh: float
    covered_s: float

    @property
    def width_s(self) -> float:
        return (self.end - self.start).total_seconds()


_SUMS: tuple[SumField, ...] = ("energy_import_kwh", "energy_export_kwh", "covered_s")
_FEW_PERIODS = 64
"""Up to this many periods are labelled in plain Python, past it with numpy."""
_LABELS: tuple[tuple[str, bool], ...] = tuple(
    label([SOURCE_REGISTERS] if code & 4 else [], 0.0 if code & 2 else 1.0, 1.0, bool(code & 1))
    for code in range(8)
)
"""Source and estimated flag of a period from the registers alone, by code: 4 when readings
cover part of it, 2 when they leave part uncovered (NaN counts as uncovered), 1 when it holds
energy."""
_SOURCE_OF = tuple(source for source, _ in _LABELS)
_ESTIMATED_OF = tuple(estimated for _, estimated in _LABELS)


def _from_quarters(bucket: _Period, quarters: dict[int, Quarter]) -> EnergyBucket:
    lo_ms, hi_ms = to_ms(bucket.start), to_ms(bucket.end)
    import_kwh = export_kwh = covered_s = 0.0
    parts: set[str] = set()
    split_outside = False
    for q_ms in range(lo_ms, hi_ms, 900_000):
        quarter = quarters[q_ms]
        import_kwh += quarter.import_kwh
        export_kwh += quarter.export_kwh
        covered_s += quarter.covered_s
        parts.update(quarter.parts)
        split_outside = split_outside or any(r0 < lo_ms or r1 > hi_ms for r0, r1 in quarter.split_records)
    source, estimated = label(parts, covered_s, bucket.width_s, bool(import_kwh or export_kwh))
    return EnergyBucket(
        bucket.start,
        bucket.end,
        import_kwh,
        export_kwh,
        covered_s,
        source,
        estimated or split_outside,
    )
