"""Domain computations over a store: calendars in a place's zone, power and offline statistics."""

from meterhub.analytics.calendar import CalendarUnit, local_boundaries
from meterhub.analytics.offline import OfflineStats, offline_stats
from meterhub.analytics.power import PowerStats, power_stats

__all__ = [
    "CalendarUnit",
    "OfflineStats",
    "PowerStats",
    "local_boundaries",
    "offline_stats",
    "power_stats",
]
