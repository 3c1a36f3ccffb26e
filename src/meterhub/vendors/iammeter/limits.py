"""The IAMMETER cloud's documented limits, as data, and the quota ledger that enforces them."""

from __future__ import annotations

from datetime import datetime

from meterhub.vendors.simkit import QuotaWindow

__all__ = [
    "ANALYSIS_MAX_DAYS",
    "ENERGYHISTORY_MAX_DAYS",
    "HISTORY_DAYS",
    "MAX_LIST_ROWS",
    "QUOTA_LIMITS",
    "Quotas",
]

HISTORY_DAYS = 31
"""meterdatalist, powerAnalysis and offlineAnalysis reach back over the latest month only."""
MAX_LIST_ROWS = 2000
"""meterdatalist answers at most this many rows per call."""
ANALYSIS_MAX_DAYS = 7
"""powerAnalysis and offlineAnalysis cover at most 7 days (the last 7 by default)."""
ENERGYHISTORY_MAX_DAYS: dict[str, int] = {"day": 90, "hour": 7}
"""energyhistory: 90 days grouped by day, 7 days grouped by hour."""

QUOTA_LIMITS: dict[str, tuple[tuple[int, float], ...]] = {
    "login": ((5, 3600.0), (30, 86400.0)),
    "meterdata": ((12, 3600.0),),
    "powerAnalysis": ((5, 86400.0),),
    "offlineAnalysis": ((5, 86400.0),),
    "metersdata": ((1, 300.0),),
}
"""Calls allowed per window in seconds: login per IP, metersdata per token, the others per SN.

meterdata and meterdata2 share one quota (the document lists one ``/site/meterdata/`` row).
"""


class Quotas:
    """The documented quotas of one simulated cloud, as sliding windows on the simulated clock."""

    def __init__(self) -> None:
        self._windows = {
            name: tuple(QuotaWindow(limit, window_s) for limit, window_s in limits)
            for name, limits in QUOTA_LIMITS.items()
        }

    def allow(self, name: str, key: str, now: datetime) -> bool:
        """Record a call of ``key`` against quota ``name``; return False if any window is full.

        A refused call is not recorded, so a client that waits gets through when a window frees.
        """
        windows = self._windows[name]
        if any(window.retry_after_s(key, now) > 0 for window in windows):
            return False
        return all([window.allow(key, now) for window in windows])
