"""``/api/v1/meters/{id}/series``: a meter's device extras as named series.

The list names each series with its unit, how many values it holds, its first and last time
and its last value. One series over [start, end) answers its values, or min/mean/max per bucket
for long ranges (read from a 15-minute rollup, so a year answers quickly).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel

from meterhub.api.deps import PrincipalDep, StoreDep
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.api.render import FormatQuery, render
from meterhub.api.routes._params import (
    EndQuery,
    StartQuery,
    TzQuery,
    iso,
    time_range,
    visible_meter,
    zone_name,
)
from meterhub.extraseries import MAX_AUTO_POINTS, SeriesRead, SeriesSummary, list_series, read_series
from meterhub.model import utc_now

__all__ = ["router", "series_data_rows", "summary_row"]

router = APIRouter(prefix="/api/v1/meters", tags=["series"], responses=PROBLEM_RESPONSES)

SeriesName = Annotated[
    str, Path(max_length=64, description="The series' name, such as temperature_c, rssi_dbm or relay_on.")
]


class SeriesPublic(BaseModel):
    """One device series of a meter; ``age_s`` is how old its last value is."""

    name: str
    label: str
    unit: str
    kind: Literal["number", "state", "counter"]
    count: int
    first: datetime
    last: datetime
    last_value: float
    age_s: float


class SeriesData(BaseModel):
    """One series over [start, end): each value (``bucket`` raw: ts, value) or per bucket
    (start, end, count, min, avg, max); ``bucket_s`` is the buckets' width, null for raw values."""

    meter: str
    name: str
    label: str
    unit: str
    kind: Literal["number", "state", "counter"]
    start: datetime
    end: datetime
    bucket: str
    bucket_s: int | None
    data: list[dict[str, Any]]


def summary_row(item: SeriesSummary) -> dict[str, Any]:
    """Return one series of the list as a flat row."""
    return {
        "name": item.name,
        "label": item.info.label,
        "unit": item.info.unit,
        "kind": item.info.kind,
        "count": item.count,
        "first": iso(item.first),
        "last": iso(item.last),
        "last_value": item.last_value,
        "age_s": round(item.age_s, 3),
    }


def series_data_rows(read: SeriesRead) -> list[dict[str, Any]]:
    """Return a series read as flat rows: ts and value, or a bucket's edges and figures."""
    if read.bucket_s is None:
        return [{"ts": iso(p.ts), "value": p.value} for p in read.points]
    return [
        {"start": iso(b.start), "end": iso(b.end), "count": b.count, "min": b.min, "avg": b.avg, "max": b.max}
        for b in read.buckets
    ]


@router.get("/{meter_id}/series", response_model=list[SeriesPublic], summary="A meter's device series")
def series_list(
    meter_id: str,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    fmt: FormatQuery = None,
) -> Response:
    """List the meter's device series (temperature, RSSI, uptime, relay...) with their last values."""
    visible_meter(store, principal.can_see_meter, meter_id)
    rows = [summary_row(item) for item in list_series(store, meter_id, utc_now())]
    return render(request, rows, rows=rows, root="series")


@router.get("/{meter_id}/series/{name}", response_model=SeriesData, summary="One device series")
def series_values(
    meter_id: str,
    name: SeriesName,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    start: StartQuery = None,
    end: EndQuery = None,
    bucket: Annotated[
        Literal["raw", "1m", "5m", "15m", "1h", "6h", "1d"] | None,
        Query(
            description=(
                "raw for every value, or a bucket for min/avg/max per bucket (1d is a local day). "
                f"Default: the values when the range holds at most {MAX_AUTO_POINTS}, else round buckets."
            )
        ),
    ] = None,
    tz: TzQuery = None,
    fmt: FormatQuery = None,
) -> Response:
    """Return one series' values, or min/avg/max per bucket, over [start, end) (default the last day)."""
    meter = visible_meter(store, principal.can_see_meter, meter_id)
    zone = zone_name(tz) if tz is not None else meter.tz
    start_ts, end_ts = time_range(start, end, zone, timedelta(days=1))
    read = read_series(store, meter_id, name, start_ts, end_ts, bucket=bucket, tz=zone)
    rows = series_data_rows(read)
    payload = {
        "meter": meter_id,
        "name": name,
        "label": read.info.label,
        "unit": read.info.unit,
        "kind": read.info.kind,
        "start": iso(start_ts),
        "end": iso(end_ts),
        "bucket": read.bucket,
        "bucket_s": read.bucket_s,
        "data": rows,
    }
    return render(request, payload, rows=rows, root="series")
