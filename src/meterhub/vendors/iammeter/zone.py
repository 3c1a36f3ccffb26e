"""The IAMMETER account's time zone, from the offsets between its local and GMT times.

The cloud names no zone; its answers carry each upload's local time (``localTime``, ``rtcTime``)
beside its ``gmtTime``, so every upload tells the account's UTC offset at that instant. An
offset is not a zone: :func:`account_zone` takes the zone the hub was given (the hint) when it
has those offsets at those instants; else, when only one offset is known, the fixed zone
``Etc/GMT±N`` (which has no daylight saving time: such a meter's local hours are off by one in
the other season until its zone is set by hand); else (a daylight-saving change was seen) the
first IANA zone that has all of them, in the hint's area first, then by :data:`AREAS` and name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from meterhub.errors import PayloadError
from meterhub.vendors.iammeter import mapping

__all__ = ["AREAS", "OffsetSample", "account_zone", "fixed_zone", "offset_samples"]

OffsetSample = tuple[datetime, timedelta]
"""An instant (aware UTC) and the account's offset from UTC then."""

_QUARTER_S = 900
_MAX_OFFSET = timedelta(hours=14)


def _sample(local_text: object, gmt_text: object) -> OffsetSample | None:
    try:
        gmt = mapping.parse_vendor_time(gmt_text)
        local = mapping.parse_vendor_time(local_text)
    except PayloadError:
        return None
    offset_s = round((local - gmt).total_seconds() / _QUARTER_S) * _QUARTER_S
    offset = timedelta(seconds=offset_s)
    return (gmt, offset) if abs(offset) <= _MAX_OFFSET else None


def offset_samples(payload: object) -> list[OffsetSample]:
    """Return (instant, offset) of each item of a meterdatalist2 answer (``rtcTime``/``gmtTime``)
    or of a meterdata answer (``localTime``/``gmtTime``); unreadable items are left out."""
    data = mapping.unwrap(payload)
    items = data if isinstance(data, list) else [data]
    samples = []
    for item in items:
        if isinstance(item, dict):
            local = item.get("rtcTime", item.get("localTime"))
            found = _sample(local, item.get("gmtTime"))
            if found is not None:
                samples.append(found)
    return samples


def _fits(zone: ZoneInfo, samples: Iterable[OffsetSample]) -> bool:
    return all(at.astimezone(zone).utcoffset() == offset for at, offset in samples)


def fixed_zone(offset: timedelta) -> str | None:
    """Return ``Etc/GMT±N`` for a whole-hour offset (POSIX signs: UTC+1 is Etc/GMT-1), else None."""
    seconds = int(offset.total_seconds())
    if seconds % 3600:
        return None
    hours = seconds // 3600
    return "Etc/UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"


AREAS = ("Europe", "America", "Asia", "Australia", "Pacific", "Africa", "Atlantic", "Indian", "Antarctica")
"""Where a zone for the offsets seen is looked for first to last (after the hint's own area)."""


@cache
def _named_zones() -> tuple[str, ...]:
    """Return the IANA Area/City zones by area (:data:`AREAS`) and name, without Etc/ and aliases."""
    return tuple(sorted((name for name in available_timezones() if name.split("/")[0] in AREAS),
                        key=lambda name: (AREAS.index(name.split("/")[0]), name)))


def account_zone(samples: Sequence[OffsetSample], hint: str | None = None) -> str | None:
    """Return the zone of the offsets seen, preferring ``hint``; None when nothing was seen."""
    if not samples:
        return None
    if hint:
        try:
            if _fits(ZoneInfo(hint), samples):
                return hint
        except (ZoneInfoNotFoundError, ValueError):
            pass
    offsets = {offset for _, offset in samples}
    if len(offsets) == 1:
        fixed = fixed_zone(next(iter(offsets)))
        if fixed is not None:
            return fixed
    area = (hint or "").split("/")[0]
    candidates = [name for name in _named_zones() if _fits(ZoneInfo(name), samples)]
    for name in sorted(candidates, key=lambda name: name.split("/")[0] != area):
        return name
    latest = max(samples)[1]
    return fixed_zone(latest) or "UTC"

