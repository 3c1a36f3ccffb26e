"""``/api/v1/meters/{id}/analysis/power`` and ``/analysis/offline``, with IAMMETER's meaning.

Power analysis is IAMMETER's powerAnalysis: average power, average over local daytime
(08:00-20:00), minimum and maximum, over the last 7 days unless a range is given. Offline
analysis is its offlineAnalysis: the minutes in the range, the minutes offline, and each gap
longer than ``interval_min`` (default: every gap recorded, i.e. longer than twice the meter's
interval). Unlike IAMMETER, any range the store holds may be asked, as often as wanted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from meterhub.analytics.calendar import to_zone
from meterhub.analytics.offline import gaps_within
from meterhub.analytics.power import power_stats
from meterhub.api.deps import PrincipalDep, StoreDep
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.api.render import FormatQuery, render
from meterhub.api.routes._params import EndQuery, StartQuery, TzQuery, time_range, visible_meter, zone_name

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/meters", tags=["analysis"], responses=PROBLEM_RESPONSES)

DEFAULT_SPAN = timedelta(days=7)
"""IAMMETER's default range: the last 7 days."""


class PowerAnalysis(BaseModel):
    """Average, daytime average (08-20 local), minimum and maximum power; null without data."""

    meter: str
    start: datetime
    end: datetime
    tz: str
    avg_w: float | None
    daytime_avg_w: float | None
    min_w: float | None
    max_w: float | None


class GapPublic(BaseModel):
    """A stretch without readings, clipped to the range."""

    start: datetime
    end: datetime
    duration_min: float


class OfflineAnalysis(BaseModel):
    """Minutes in the range, minutes offline, and the gaps (IAMMETER's totalCount, offlineCount, list)."""

    meter: str
    start: datetime
    end: datetime
    tz: str
    total_min: float
    offline_min: float
    gaps: int
    interval_min: float | None
    list_: list[GapPublic] = Field(alias="list")


@router.get("/{meter_id}/analysis/power", response_model=PowerAnalysis, summary="Power analysis")
def power_analysis(
    meter_id: str,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    start: StartQuery = None,
    end: EndQuery = None,
    tz: TzQuery = None,
    fmt: FormatQuery = None,
) -> Response:
    """Return average, daytime average, minimum and maximum power (default: the last 7 days)."""
    meter = visible_meter(store, principal.can_see_meter, meter_id)
    zone = zone_name(tz) if tz is not None else meter.tz
    start_ts, end_ts = time_range(start, end, zone, DEFAULT_SPAN)
    stats = power_stats(store, meter_id, start_ts, end_ts, zone)
    local = to_zone(zone)
    payload = {
        "meter": meter_id,
        "start": start_ts.astimezone(local).isoformat(),
        "end": end_ts.astimezone(local).isoformat(),
        "tz": zone,
        "avg_w": stats.avg_w,
        "daytime_avg_w": stats.daytime_avg_w,
        "min_w": stats.min_w,
        "max_w": stats.max_w,
    }
    return render(request, payload, rows=[payload], root="power")


@router.get("/{meter_id}/analysis/offline", response_model=OfflineAnalysis, summary="Offline analysis")
def offline_analysis(
    meter_id: str,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    start: StartQuery = None,
    end: EndQuery = None,
    tz: TzQuery = None,
    interval_min: Annotated[
        float | None, Query(ge=0, le=525_600, description="List only gaps longer than this many minutes.")
    ] = None,
    fmt: FormatQuery = None,
) -> Response:
    """Return the minutes offline and the gaps in [start, end) (default: the last 7 days)."""
    meter = visible_meter(store, principal.can_see_meter, meter_id)
    zone = zone_name(tz) if tz is not None else meter.tz
    start_ts, end_ts = time_range(start, end, zone, DEFAULT_SPAN)
    longer_than_s = (interval_min or 0.0) * 60
    gaps = [g for g in gaps_within(store, meter_id, start_ts, end_ts) if g.duration_s > longer_than_s]
    local = to_zone(zone)
    rows = [
        {
            "start": g.start.astimezone(local).isoformat(),
            "end": g.end.astimezone(local).isoformat(),
            "duration_min": g.duration_s / 60,
        }
        for g in gaps
    ]
    payload = {
        "meter": meter_id,
        "start": start_ts.astimezone(local).isoformat(),
        "end": end_ts.astimezone(local).isoformat(),
        "tz": zone,
        "total_min": (end_ts - start_ts).total_seconds() / 60,
        "offline_min": sum(g.duration_s for g in gaps) / 60,
        "gaps": len(gaps),
        "interval_min": interval_min,
        "list": rows,
    }
    return render(request, payload, rows=rows, root="offline")
