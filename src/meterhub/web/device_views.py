"""The meter page's Device panel: each device series' last value and age, and the period's values.

Series the page draws (``SeriesInfo.chart``: temperatures, RSSI, supply voltage, relay, power
limit) come as columns on the zone's wall clock, like the power chart: the values themselves
when the period holds few, else min/avg/max per round bucket. A relay's buckets are the share
of its reports that said on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from meterhub.analytics.calendar import to_zone
from meterhub.extraseries import list_series, read_series
from meterhub.model import Meter
from meterhub.store.base import Store
from meterhub.timeutil import to_ms
from meterhub.web.periods import Period
from meterhub.web.views import wall_clock_ms

__all__ = ["DEVICE_CHART_BUCKETS", "device_view"]

DEVICE_CHART_BUCKETS = 300
"""Buckets a small device chart asks for when the period holds more values than it draws."""


def _wall_ms(times: list[datetime], meter: Meter) -> list[int]:
    instants = np.array([to_ms(t) for t in times], dtype=np.int64)
    return [int(v) for v in wall_clock_ms(instants, to_zone(meter.tz))]


def device_view(store: Store, meter: Meter, period: Period, now: datetime) -> list[dict[str, Any]]:
    """Return the meter's series: last value and age, and the period's values of those drawn."""
    shown: list[dict[str, Any]] = []
    for item in list_series(store, meter.id, now):
        entry: dict[str, Any] = {
            "name": item.name,
            "label": item.info.label,
            "unit": item.info.unit,
            "kind": item.info.kind,
            "chart": item.info.chart,
            "count": item.count,
            "last_value": item.last_value,
            "last": item.last.isoformat(),
            "age_s": round(item.age_s, 1),
        }
        if item.info.chart:
            read = read_series(
                store, meter.id, item.name, period.start, period.end, auto_buckets=DEVICE_CHART_BUCKETS
            )
            if read.bucket_s is None:
                entry["values"] = {
                    "t": _wall_ms([p.ts for p in read.points], meter),
                    "v": [p.value for p in read.points],
                    "bucket_s": None,
                }
            else:
                entry["values"] = {
                    "t": _wall_ms([b.start for b in read.buckets], meter),
                    "v": [b.avg for b in read.buckets],
                    "min": [b.min for b in read.buckets],
                    "max": [b.max for b in read.buckets],
                    "bucket_s": read.bucket_s,
                }
        shown.append(entry)
    return shown
