"""How pages write times and durations: local to the meter's zone, zone named, no microseconds."""

from __future__ import annotations

from datetime import datetime

from meterhub.analytics.calendar import to_zone
from meterhub.model import utc_now

__all__ = ["ago", "duration", "local", "when"]


def duration(seconds: float | None) -> str:
    """Return a duration in words: 45 s, 5 min, 2 h, 1 day, 1 h 30 min."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    for unit_s, name in ((86_400, "day"), (3600, "h"), (60, "min")):
        if whole >= unit_s and whole % unit_s == 0:
            count = whole // unit_s
            return f"{count} {name}{'s' if name == 'day' and count != 1 else ''}"
    if whole >= 3600:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    if whole >= 60:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole} s"


def ago(ts: datetime, now: datetime | None = None) -> str:
    """Return how long ago an instant was, in words."""
    seconds = max(0.0, ((now or utc_now()) - ts).total_seconds())
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 86_400:
        return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:.0f} min ago"
    return f"{seconds // 86_400:.0f} d ago"


def local(ts: datetime | None, tz: str) -> str:
    """Return an instant as local date and time in ``tz`` with the zone's abbreviation."""
    if ts is None:
        return "-"
    shown = ts.astimezone(to_zone(tz))
    return f"{shown:%Y-%m-%d %H:%M:%S} {shown.tzname()}"


def when(ts: datetime | None, tz: str, now: datetime | None = None) -> str:
    """Return an instant as local time with how long ago it was, or 'never'."""
    if ts is None:
        return "never"
    return f"{local(ts, tz)} ({ago(ts, now)})"
