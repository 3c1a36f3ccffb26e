"""Read IAMMETER request parameters the forgiving way the vendor's server does.

Parameter names are case-insensitive (the vendor's own examples write ``startTime``,
``starttime`` and ``Token``); days are ``YYYY-MM-DD`` (a time of day after them is ignored).
Every problem raises :class:`BadRequest`, whose message the simulator puts in the vendor's
failure envelope.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from starlette.requests import Request

__all__ = [
    "EARLIEST_DAY",
    "LATEST_DAY",
    "BadRequest",
    "DayRange",
    "day_range",
    "lowered_query",
    "optional_day_range",
    "positive_int",
    "token_of",
]


EARLIEST_DAY = date(2015, 1, 1)
"""No IAMMETER cloud data is older than this."""
LATEST_DAY = date(2999, 12, 31)
"""Days after this are refused before any date arithmetic can overflow."""


class BadRequest(ValueError):
    """A request the vendor answers with its failure envelope; the message says why."""


def lowered_query(request: Request) -> dict[str, str]:
    """Return the query parameters keyed by lower-case name (the first value of each)."""
    query: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        query.setdefault(key.lower(), value)
    return query


def token_of(request: Request, query: Mapping[str, str]) -> str:
    """Return the token from ``?token=`` or the ``token:`` header ("" when neither is given)."""
    return query.get("token") or request.headers.get("token", "")


def _parse_day(name: str, text: str) -> date:
    head = text.strip().split(" ")[0].split("T")[0]
    try:
        day = date.fromisoformat(head)
    except ValueError as exc:
        raise BadRequest(f"{name} {text!r} is not a date like 2023-09-01") from exc
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise BadRequest(f"{name} {text!r} is outside {EARLIEST_DAY} to {LATEST_DAY}")
    return day


def positive_int(query: Mapping[str, str], name: str, default: int | None = None) -> int:
    """Return the positive integer parameter ``name`` (lower-case) or its default."""
    text = query.get(name.lower())
    if text is None or text == "":
        if default is None:
            raise BadRequest(f"{name} is required")
        return default
    try:
        value = int(text)
    except ValueError as exc:
        raise BadRequest(f"{name} {text!r} is not a whole number") from exc
    if value <= 0:
        raise BadRequest(f"{name} must be greater than 0")
    return value


@dataclass(frozen=True, slots=True)
class DayRange:
    """Calendar days ``first_day``..``last_day`` (inclusive) in a zone, with UTC edges."""

    first_day: date
    last_day: date
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        """Return local midnight starting ``first_day``, in UTC."""
        return _local_midnight(self.first_day, self.zone)

    @property
    def end(self) -> datetime:
        """Return local midnight ending ``last_day``, in UTC."""
        return _local_midnight(self.last_day + timedelta(days=1), self.zone)

    @property
    def days(self) -> int:
        """Return how many calendar days the range covers."""
        return (self.last_day - self.first_day).days + 1


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def day_range(
    query: Mapping[str, str],
    zone: ZoneInfo,
    today: date,
    *,
    max_days: int,
    inclusive_end: bool,
    history_days: int | None = None,
) -> DayRange:
    """Return the required startTime..endTime range, checked against the vendor's limits.

    With ``inclusive_end`` False (energyhistory) the end day itself is not part of the range.
    """
    texts = [query.get("starttime", ""), query.get("endtime", "")]
    for name, text in zip(("startTime", "endTime"), texts, strict=True):
        if not text:
            raise BadRequest(f"{name} is required")
    first_day, end_day = _parse_day("startTime", texts[0]), _parse_day("endTime", texts[1])
    return _checked(first_day, end_day, zone, today, max_days, inclusive_end, history_days)


def optional_day_range(
    query: Mapping[str, str], zone: ZoneInfo, today: date, *, max_days: int, history_days: int
) -> DayRange:
    """Return startTime..endTime (inclusive), by default the last ``max_days`` days to today."""
    start_text, end_text = query.get("starttime", ""), query.get("endtime", "")
    last_day = _parse_day("endTime", end_text) if end_text else today
    first_day = _parse_day("startTime", start_text) if start_text else last_day - timedelta(days=max_days - 1)
    return _checked(first_day, last_day, zone, today, max_days, True, history_days)


def _checked(
    first_day: date,
    end_day: date,
    zone: ZoneInfo,
    today: date,
    max_days: int,
    inclusive_end: bool,
    history_days: int | None,
) -> DayRange:
    last_day = end_day if inclusive_end else end_day - timedelta(days=1)
    if first_day > today:
        raise BadRequest("startTime is in the future")
    if first_day > end_day or (not inclusive_end and first_day == end_day):
        raise BadRequest("startTime must be before endTime")
    span_days = (last_day - first_day).days + 1
    if span_days > max_days:
        raise BadRequest(f"the time range is {span_days} days; at most {max_days} days allowed")
    if history_days is not None and first_day < today - timedelta(days=history_days):
        raise BadRequest(f"only the latest {history_days} days can be requested")
    return DayRange(first_day, last_day, zone)
