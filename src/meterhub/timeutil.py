"""Conversions between user-facing time text, aware datetimes and epoch milliseconds."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from meterhub.errors import InputError

__all__ = ["from_ms", "get_zone", "parse_duration_s", "parse_time", "to_ms"]

_EPOCH_RE = re.compile(r"^-?\d+(\.\d+)?$")
_DURATION_RE = re.compile(r"^(\d+)\s*(s|m|min|h|d)$")
_DURATION_UNIT_S = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def to_ms(ts: datetime) -> int:
    """Return epoch milliseconds of an aware datetime."""
    return (
        (ts - _EPOCH).days * 86_400_000
        + (ts - _EPOCH).seconds * 1000
        + (ts - _EPOCH).microseconds // 1000
    )


def from_ms(ts_ms: int) -> datetime:
    """Return the aware UTC datetime of epoch milliseconds."""
    return _EPOCH + timedelta(milliseconds=ts_ms)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def get_zone(name: str) -> ZoneInfo:
    """Return the IANA zone ``name`` or raise InputError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a folder such as 'America'
        raise InputError(f"unknown time zone {name!r} (use an IANA name like Europe/Oslo)") from exc


_DAY_WORDS = {"yesterday": -1, "today": 0, "tomorrow": 1}
"""Day words and their offset in local days from today."""


def parse_time(text: str, tz: str = "UTC", now: datetime | None = None) -> datetime:
    """Parse ISO 8601, a date, epoch seconds, ``now``/``now-2h`` or a day word into aware UTC.

    ``yesterday``, ``today`` and ``tomorrow`` are that day's local midnight in ``tz``.

    A time without an offset is read in zone ``tz``.
    """
    value = text.strip()
    zone = get_zone(tz)
    current = now or datetime.now(UTC)
    if not value:
        raise InputError(
            "empty time; use ISO 8601 (2026-03-29T10:00:00+02:00), a date or epoch seconds"
        )
    if _EPOCH_RE.match(value):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise InputError(f"epoch seconds {text!r} are out of range") from exc
    lowered = value.lower()
    if lowered in _DAY_WORDS:
        local = current.astimezone(zone).date() + timedelta(days=_DAY_WORDS[lowered])
        return datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(UTC)
    if lowered.startswith("now"):
        rest = lowered[3:].strip()
        if not rest:
            return current
        sign = -1 if rest[0] == "-" else 1 if rest[0] == "+" else 0
        if sign == 0:
            raise InputError(f"cannot read time {text!r}; try now-2h or now-7d")
        try:
            return current + timedelta(seconds=sign * parse_duration_s(rest[1:]))
        except OverflowError as exc:
            raise InputError(f"time {text!r} is out of range") from exc
    try:
        if len(value) == 10 and value[4] == "-":
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError as exc:
        raise InputError(
            f"cannot read time {text!r}; use ISO 8601 like 2026-03-29T10:00:00+02:00, "
            "a date like 2026-03-29, epoch seconds, now-2h, yesterday, today or tomorrow"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def parse_duration_s(text: str) -> int:
    """Parse ``15m``, ``1h``, ``1d``, ``90s`` into seconds."""
    match = _DURATION_RE.match(text.strip().lower())
    if not match:
        raise InputError(f"cannot read duration {text!r}; use e.g. 90s, 15m, 1h or 7d")
    return int(match.group(1)) * _DURATION_UNIT_S[match.group(2)]
