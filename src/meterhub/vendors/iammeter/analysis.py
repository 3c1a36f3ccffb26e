"""The IAMMETER cloud's computed answers: power statistics and energy bucket edges."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from meterhub.vendors.iammeter.account import SimMeter
from meterhub.vendors.iammeter.params import DayRange
from meterhub.vendors.iammeter.payloads import PowerSummary

__all__ = ["ANALYSIS_INTERVAL_S", "DAYTIME_HOURS", "bucket_edges", "power_summary"]

ANALYSIS_INTERVAL_S = 300
"""powerAnalysis looks at one upload per five minutes."""
DAYTIME_HOURS = range(8, 20)
"""Local hours that count as daytime for ``averageDaytime`` (8:00am-8:00pm)."""


def power_summary(meter: SimMeter, days: DayRange, now: datetime, zone: ZoneInfo) -> PowerSummary:
    """Return average, daytime average, minimum and maximum power of a meter's uploads."""
    powers_w: list[float] = []
    daytime_w: list[float] = []
    for at in meter.uploads(days.start, min(days.end, now), ANALYSIS_INTERVAL_S):
        power_w = meter.reading_at(at).total.power_w
        powers_w.append(power_w)
        if at.astimezone(zone).hour in DAYTIME_HOURS:
            daytime_w.append(power_w)
    return PowerSummary(
        first_day=days.first_day,
        last_day=days.last_day,
        average_w=sum(powers_w) / len(powers_w) if powers_w else 0.0,
        average_daytime_w=sum(daytime_w) / len(daytime_w) if daytime_w else 0.0,
        minimum_w=min(powers_w, default=0.0),
        maximum_w=max(powers_w, default=0.0),
    )


def bucket_edges(days: DayRange, group_by: str) -> list[datetime]:
    """Return the UTC edges of local days or of hours over ``days`` (first start to last end)."""
    if group_by == "hour":
        hours = int((days.end - days.start).total_seconds() // 3600)
        return [days.start + timedelta(hours=hour) for hour in range(hours + 1)]
    edges = [
        DayRange(days.first_day + timedelta(days=n), days.last_day, days.zone).start
        for n in range(days.days)
    ]
    return [*edges, days.end]
