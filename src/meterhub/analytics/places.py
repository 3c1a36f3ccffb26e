"""Place energy with the meaning of IAMMETER's energyhistory fields, from the place's meters by role.

- ``yield``: what the solar meters produced, read from their forward (import) register, as
  IAMMETER's PV meters count an inverter's output.
- ``fromGrid`` / ``toGrid``: import and export through the grid meters.
- ``specialLoad``: import of the special-load meters (an EV charger, a heat pump). These loads
  sit behind the grid meter, so they are part of consumption and are never added to it.
- ``selfUse`` = yield - toGrid, never below 0: the solar energy used on site.
- ``consumption`` = fromGrid + selfUse + the import of the consumption meters. A consumption
  meter measures load the grid meter does not see: a separately supplied building, or the
  whole load of a place that has no grid meter.
- self-sufficiency = selfUse / consumption (none when nothing was consumed).

Each figure is computed from its own period's sums, as IAMMETER does, so ``selfUse`` of a day
can exceed the sum of its hours' only where some hour exported more than it produced (a battery).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from meterhub.analytics.calendar import CalendarUnit
from meterhub.analytics.energy import EnergyBucket, calendar_edges, energy_between, total
from meterhub.errors import InputError
from meterhub.model import Place, Role
from meterhub.store.base import Store

__all__ = [
    "PlaceEnergy",
    "combine_roles",
    "grid_energy",
    "meters_energy",
    "place_energy",
    "place_energy_between",
]


@dataclass(frozen=True, slots=True)
class PlaceEnergy:
    """A place's energy over [start, end) in kWh; ``self_sufficiency_ratio`` is 0..1 or None."""

    start: datetime
    end: datetime
    yield_kwh: float
    from_grid_kwh: float
    to_grid_kwh: float
    special_load_kwh: float
    self_use_kwh: float
    consumption_kwh: float
    self_sufficiency_ratio: float | None
    source: str
    estimated: bool


def combine_roles(
    start: datetime, end: datetime, by_role: Mapping[Role, Sequence[EnergyBucket]]
) -> PlaceEnergy:
    """Return a place's energy for one period from its meters' buckets of that period, by role."""
    grid = by_role.get(Role.GRID, ())
    yield_kwh = sum(b.energy_import_kwh for b in by_role.get(Role.SOLAR, ()))
    from_grid_kwh = sum(b.energy_import_kwh for b in grid)
    to_grid_kwh = sum(b.energy_export_kwh for b in grid)
    special_kwh = sum(b.energy_import_kwh for b in by_role.get(Role.SPECIAL, ()))
    elsewhere_kwh = sum(b.energy_import_kwh for b in by_role.get(Role.CONSUMPTION, ()))
    self_use_kwh = max(0.0, yield_kwh - to_grid_kwh)
    consumption_kwh = from_grid_kwh + self_use_kwh + elsewhere_kwh
    buckets = [b for role_buckets in by_role.values() for b in role_buckets]
    merged = _sources(buckets)
    return PlaceEnergy(
        start,
        end,
        yield_kwh,
        from_grid_kwh,
        to_grid_kwh,
        special_kwh,
        self_use_kwh,
        consumption_kwh,
        self_use_kwh / consumption_kwh if consumption_kwh > 0 else None,
        merged.source if buckets else "none",
        merged.estimated if buckets else True,
    )


def meters_energy(
    store: Store, place: Place, boundaries: Sequence[datetime]
) -> dict[Role, list[list[EnergyBucket]]]:
    """Return each role's meters' energy between consecutive boundaries (read-only)."""
    by_role: dict[Role, list[list[EnergyBucket]]] = {}
    for meter_id, role in place.meters:
        by_role.setdefault(role, []).append(energy_between(store, meter_id, boundaries))
    return by_role


def place_energy_between(store: Store, place: Place, boundaries: Sequence[datetime]) -> list[PlaceEnergy]:
    """Return a place's energy between consecutive 15-minute-aligned UTC boundaries (read-only)."""
    if not place.meters:
        raise InputError(f"place {place.id!r} has no meters; attach one with 'meterhub places attach'")
    by_role = meters_energy(store, place, boundaries)
    return [
        combine_roles(
            boundaries[i],
            boundaries[i + 1],
            {role: [series[i] for series in meters] for role, meters in by_role.items()},
        )
        for i in range(len(boundaries) - 1)
    ]


def place_energy(
    store: Store,
    place: Place,
    start: datetime,
    end: datetime,
    groupby: CalendarUnit,
    tz: str | tzinfo | None = None,
) -> list[PlaceEnergy]:
    """Return a place's energy per local period covering [start, end), in its zone or ``tz`` (read-only)."""
    edges = calendar_edges(start, end, tz if tz is not None else place.tz, groupby)
    return place_energy_between(store, place, edges)


def grid_energy(store: Store, place: Place, boundaries: Sequence[datetime]) -> list[EnergyBucket]:
    """Return import (fromGrid) and export (toGrid) through a place's grid meters per period (read-only)."""
    grid_ids = [meter_id for meter_id, role in place.meters if role is Role.GRID]
    if not grid_ids:
        raise InputError(
            f"place {place.id!r} has no grid meter; attach one with "
            f"'meterhub places attach {place.id} METER --role grid'"
        )
    series = [energy_between(store, meter_id, boundaries) for meter_id in grid_ids]
    if len(series) == 1:
        return series[0]
    return [_sum_parallel([s[i] for s in series]) for i in range(len(boundaries) - 1)]


def _sources(buckets: Sequence[EnergyBucket]) -> EnergyBucket:
    """Return a bucket whose source and estimated flag merge those of parallel buckets."""
    if not buckets:
        raise InputError("no meters to combine")
    spans = [EnergyBucket(b.start, b.start, 0.0, 0.0, 0.0, b.source, b.estimated) for b in buckets]
    return total(spans)


def _sum_parallel(buckets: Sequence[EnergyBucket]) -> EnergyBucket:
    merged = _sources(buckets)
    return EnergyBucket(
        buckets[0].start,
        buckets[0].end,
        sum(b.energy_import_kwh for b in buckets),
        sum(b.energy_export_kwh for b in buckets),
        min(b.covered_s for b in buckets),
        merged.source,
        merged.estimated,
    )
