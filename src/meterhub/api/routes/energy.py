"""Energy, cost and capacity of meters and places, per local calendar period.

Place energy carries the meaning of IAMMETER's energyhistory (yield, fromGrid, toGrid,
specialLoad, selfUse, consumption) under meterhub's own names with units: ``yield_kwh``,
``from_grid_kwh``, ``to_grid_kwh``, ``special_load_kwh``, ``self_use_kwh``, ``consumption_kwh``
and ``self_sufficiency_ratio`` (see :mod:`meterhub.analytics.places`). Periods are named by
``bucket`` (``15m``, ``1h``, ``1d``, ``1w``, ``1mo``, ``1y``; the former ``groupby`` words are
accepted too); their edges are local to ``tz`` (default: the meter's or place's zone) and are
shown in that zone.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, tzinfo
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from meterhub.analytics.calendar import BUCKET_ALIASES, BUCKET_CHOICES, BUCKETS, bucket_name, to_zone
from meterhub.analytics.capacity import place_capacity
from meterhub.analytics.cost import CostBucket, meter_cost, place_cost
from meterhub.analytics.energy import EnergyBucket, meter_energy
from meterhub.analytics.places import PlaceEnergy, place_energy
from meterhub.api.deps import PrincipalDep, StoreDep
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.api.render import FormatQuery, render
from meterhub.api.routes._params import (
    EndQuery,
    StartQuery,
    TzQuery,
    time_range,
    visible_meter,
    visible_place,
    zone_name,
)
from meterhub.errors import InputError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["energy"], responses=PROBLEM_RESPONSES)

_BUCKET_PATTERN = f"^({'|'.join(BUCKET_CHOICES)})$"
BucketQuery = Annotated[
    str | None,
    Query(
        pattern=_BUCKET_PATTERN,
        description=f"Calendar period, local to the zone: {', '.join(BUCKETS)} (1w: ISO weeks from "
        f"Monday; {', '.join(BUCKET_ALIASES)} are accepted too). Default 1d.",
    ),
]
GroupbyQuery = Annotated[
    str | None,
    Query(pattern=_BUCKET_PATTERN, description="The former name of bucket, still accepted."),
]


def chosen_bucket(bucket: str | None, groupby: str | None) -> str:
    """Return the bucket asked by ``bucket`` or its former name ``groupby`` (default ``1d``)."""
    names = {bucket_name(text) for text in (bucket, groupby) if text is not None}
    if len(names) > 1:
        raise InputError("bucket and groupby name different periods; give only bucket")
    return names.pop() if names else "1d"
DEFAULT_SPAN = timedelta(days=7)


class MeterEnergyRow(BaseModel):
    """Energy through a meter over one period, in kWh, with where it came from."""

    start: datetime
    end: datetime
    energy_import_kwh: float
    energy_export_kwh: float
    covered_s: float
    source: str
    estimated: bool


class MeterEnergy(BaseModel):
    """A meter's energy per period."""

    meter: str
    bucket: str
    tz: str
    data: list[MeterEnergyRow]


class PlaceEnergyRow(BaseModel):
    """A place's energy over one period, in kWh (IAMMETER's energyhistory in meterhub's names)."""

    start: datetime
    end: datetime
    yield_kwh: float = Field(description="kWh the solar meters produced (IAMMETER: yield).")
    from_grid_kwh: float = Field(description="kWh imported through the grid meters (fromGrid).")
    to_grid_kwh: float = Field(description="kWh exported through the grid meters (toGrid).")
    special_load_kwh: float = Field(description="kWh of the special-load meters (specialLoad).")
    self_use_kwh: float = Field(
        description="kWh of solar used on site: yield - to grid, never below 0 (selfUse)."
    )
    consumption_kwh: float = Field(
        description="kWh consumed: from grid + self-use + consumption meters (consumption)."
    )
    self_sufficiency_ratio: float | None = Field(description="self-use / consumption, 0..1.")
    source: str
    estimated: bool


class PlaceEnergyPublic(BaseModel):
    """A place's energy per period."""

    place: str
    bucket: str
    tz: str
    data: list[PlaceEnergyRow]


class CostRow(BaseModel):
    """What the energy of one period cost, in ``currency``; export credit is subtracted."""

    start: datetime
    end: datetime
    energy_import_kwh: float
    energy_export_kwh: float
    import_cost: float
    export_credit: float
    fees: float
    total_cost: float
    currency: str
    unpriced_import_kwh: float
    unpriced_export_kwh: float
    source: str
    estimated: bool
    vendor_cost: float | None = None
    """What the vendor itself priced the period at in ``currency``, where it says."""


class CostPublic(BaseModel):
    """Cost per period of a meter or of a place's grid meters, and the sum."""

    meter: str | None = Field(None, description="The meter priced (a meter's cost).")
    place: str | None = Field(None, description="The place whose grid meters are priced (a place's cost).")
    bucket: str
    tz: str
    total_cost: float
    currency: str
    data: list[CostRow]
    vendor_cost: float | None = None
    """The sum of the periods' vendor costs, where the vendor priced any."""


class PeakPublic(BaseModel):
    """The biggest hourly import of one local day."""

    day: date
    hour_start: datetime
    energy_kwh: float


class CapacityPublic(BaseModel):
    """A place's capacity-tariff figures for one local month, to date."""

    place: str
    month: str
    start: datetime
    end: datetime
    as_of: datetime
    hours: int
    month_value_kwh: float
    step_kwh: float | None
    next_threshold_kwh: float | None
    month_import_kwh: float
    thresholds_kwh: list[float]
    estimated: bool
    missing_days: list[date] = Field(
        description="Days without hourly data (and without a reader's peak): no peak is made up for them."
    )
    peaks: list[PeakPublic]
    day_peaks: list[PeakPublic]


def _local(ts: datetime, zone: tzinfo) -> str:
    return ts.astimezone(zone).isoformat()


def meter_row(bucket: EnergyBucket, zone: tzinfo) -> dict[str, Any]:
    """Return one period of a meter's energy as a flat row, its edges in ``zone``."""
    return {
        "start": _local(bucket.start, zone),
        "end": _local(bucket.end, zone),
        "energy_import_kwh": bucket.energy_import_kwh,
        "energy_export_kwh": bucket.energy_export_kwh,
        "covered_s": bucket.covered_s,
        "source": bucket.source,
        "estimated": bucket.estimated,
    }


def place_row(period: PlaceEnergy, zone: tzinfo) -> dict[str, Any]:
    """Return one period of a place's energy as a flat row, its edges in ``zone``."""
    return {
        "start": _local(period.start, zone),
        "end": _local(period.end, zone),
        "yield_kwh": period.yield_kwh,
        "from_grid_kwh": period.from_grid_kwh,
        "to_grid_kwh": period.to_grid_kwh,
        "special_load_kwh": period.special_load_kwh,
        "self_use_kwh": period.self_use_kwh,
        "consumption_kwh": period.consumption_kwh,
        "self_sufficiency_ratio": period.self_sufficiency_ratio,
        "source": period.source,
        "estimated": period.estimated,
    }


def cost_row(cost: CostBucket, zone: tzinfo) -> dict[str, Any]:
    """Return one period's cost as a flat row, its edges in ``zone``."""
    return {
        "start": _local(cost.start, zone),
        "end": _local(cost.end, zone),
        "energy_import_kwh": cost.energy_import_kwh,
        "energy_export_kwh": cost.energy_export_kwh,
        "import_cost": cost.import_cost,
        "export_credit": cost.export_credit,
        "fees": cost.fees,
        "total_cost": cost.total_cost,
        "currency": cost.currency,
        "unpriced_import_kwh": cost.unpriced_import_kwh,
        "unpriced_export_kwh": cost.unpriced_export_kwh,
        "source": cost.source,
        "estimated": cost.estimated,
        "vendor_cost": cost.vendor_cost,
    }


def _period(
    start: str | None, end: str | None, tz: str | None, default_tz: str
) -> tuple[str, datetime, datetime]:
    zone = zone_name(tz) if tz is not None else default_tz
    start_ts, end_ts = time_range(start, end, zone, DEFAULT_SPAN)
    return zone, start_ts, end_ts


@router.get("/meters/{meter_id}/energy", response_model=MeterEnergy, summary="Energy of a meter")
def energy_of_meter(
    meter_id: str,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    start: StartQuery = None,
    end: EndQuery = None,
    bucket: BucketQuery = None,
    groupby: GroupbyQuery = None,
    tz: TzQuery = None,
    fmt: FormatQuery = None,
) -> Response:
    """Return import and export energy per local period covering [start, end) (default 7 days)."""
    meter = visible_meter(store, principal.can_see_meter, meter_id)
    zone, start_ts, end_ts = _period(start, end, tz, meter.tz)
    period = chosen_bucket(bucket, groupby)
    unit = BUCKETS[period]
    rows = [meter_row(b, to_zone(zone)) for b in meter_energy(store, meter_id, start_ts, end_ts, unit, zone)]
    payload = {"meter": meter_id, "bucket": period, "tz": zone, "data": rows}
    return render(request, payload, rows=rows, root="energy")


@router.get("/places/{place_id}/energy", response_model=PlaceEnergyPublic, summary="Energy of a place")
def energy_of_place(
    place_id: str,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    start: StartQuery = None,
    end: EndQuery = None,
    bucket: BucketQuery = None,
    groupby: GroupbyQuery = None,
    tz: TzQuery = None,
    fmt: FormatQuery = None,
) -> Response:
    """Return yield, from/to grid, special loads, self-use and consumption per local period, in kWh."""
    place = visible_place(store, principal.can_see_place, place_id)
    zone, start_ts, end_ts = _period(start, end, tz, place.tz)
    period = chosen_bucket(bucket, groupby)
    unit = BUCKETS[period]
    periods = place_energy(store, place, start_ts, end_ts, unit, zone)
    rows = [place_row(p, to_zone(zone)) for p in periods]
    payload = {"place": place_id, "bucket": period, "tz": zone, "data": rows}
    return render(request, payload, rows=rows, root="energy")


def _cost_payload(kind: str, target: str, bucket: str, zone: str, costs: list[CostBucket]) -> dict[str, Any]:
    rows = [cost_row(c, to_zone(zone)) for c in costs]
    return {
        kind: target,
        "bucket": bucket,
        "tz": zone,
        "total_cost": sum(c.total_cost for c in costs),
        "currency": costs[0].currency if costs else "",
        "data": rows,
        "vendor_cost": _vendor_total(costs),
    }


def _vendor_total(costs: list[CostBucket]) -> float | None:
    known = [c.vendor_cost for c in costs if c.vendor_cost is not None]
    return sum(known) if known else None


@router.get("/meters/{meter_id}/cost", response_model=CostPublic, summary="Cost of a meter's energy")
def cost_of_meter(
    meter_id: str,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    start: StartQuery = None,
    end: EndQuery = None,
    bucket: BucketQuery = None,
    groupby: GroupbyQuery = None,
    tz: TzQuery = None,
    fmt: FormatQuery = None,
) -> Response:
    """Return what a meter's energy cost per local period under the tariff of its place."""
    meter = visible_meter(store, principal.can_see_meter, meter_id)
    zone, start_ts, end_ts = _period(start, end, tz, meter.tz)
    period = chosen_bucket(bucket, groupby)
    unit = BUCKETS[period]
    payload = _cost_payload(
        "meter", meter_id, period, zone, meter_cost(store, meter_id, start_ts, end_ts, unit, zone)
    )
    return render(request, payload, rows=payload["data"], root="cost")


@router.get("/places/{place_id}/cost", response_model=CostPublic, summary="Cost of a place's grid energy")
def cost_of_place(
    place_id: str,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    start: StartQuery = None,
    end: EndQuery = None,
    bucket: BucketQuery = None,
    groupby: GroupbyQuery = None,
    tz: TzQuery = None,
    fmt: FormatQuery = None,
) -> Response:
    """Return what a place's grid import and export cost per local period under its tariff."""
    place = visible_place(store, principal.can_see_place, place_id)
    zone, start_ts, end_ts = _period(start, end, tz, place.tz)
    period = chosen_bucket(bucket, groupby)
    unit = BUCKETS[period]
    payload = _cost_payload(
        "place", place_id, period, zone, place_cost(store, place, start_ts, end_ts, unit, zone)
    )
    return render(request, payload, rows=payload["data"], root="cost")


def thresholds_kwh(text: str | None) -> list[float] | None:
    """Return capacity steps from ``5,10,15`` text: positive, finite and increasing."""
    if text is None or not text.strip():
        return None
    try:
        steps = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"thresholds {text!r} is not a list of numbers like 5,10,15") from None
    if not steps or not all(math.isfinite(s) for s in steps) or sorted(set(steps)) != steps or steps[0] <= 0:
        raise InputError("thresholds must be positive, finite and increasing, like 5,10,15")
    return steps


@router.get("/places/{place_id}/capacity", response_model=CapacityPublic, summary="Capacity tariff")
def capacity_of_place(
    place_id: str,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    month: Annotated[
        str | None,
        Query(
            pattern=r"^(19[7-9]\d|2[01]\d\d)-(0[1-9]|1[0-2])$",
            description="YYYY-MM, local to the place (default: this month, to date).",
        ),
    ] = None,
    thresholds: Annotated[
        str | None,
        Query(max_length=200, description="Steps in kWh/h such as 5,10,15 (default: the tariff's)."),
    ] = None,
    peaks: Annotated[int | None, Query(ge=1, le=31, description="Peak days averaged (default 3).")] = None,
    fmt: FormatQuery = None,
) -> Response:
    """Return the top hourly peaks on distinct days, the month value, its step and the next threshold."""
    place = visible_place(store, principal.can_see_place, place_id)
    figures = place_capacity(store, place, month, thresholds_kwh=thresholds_kwh(thresholds), peak_days=peaks)
    zone = to_zone(place.tz)

    def peak(p: Any) -> dict[str, Any]:
        return {
            "day": p.day.isoformat(),
            "hour_start": _local(p.hour_start, zone),
            "energy_kwh": p.energy_kwh,
        }

    top_peaks = [peak(p) for p in figures.peaks]
    payload = {
        "place": place_id,
        "month": figures.month,
        "start": _local(figures.start, zone),
        "end": _local(figures.end, zone),
        "as_of": _local(figures.as_of, zone),
        "hours": figures.hours,
        "month_value_kwh": figures.month_value_kwh,
        "step_kwh": figures.step_kwh,
        "next_threshold_kwh": figures.next_threshold_kwh,
        "month_import_kwh": figures.month_import_kwh,
        "thresholds_kwh": list(figures.thresholds_kwh),
        "estimated": figures.estimated,
        "missing_days": [day.isoformat() for day in figures.missing_days],
        "peaks": top_peaks,
        "day_peaks": [peak(p) for p in figures.day_peaks],
    }
    return render(request, payload, rows=top_peaks, root="capacity")
