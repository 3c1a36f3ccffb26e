"""Day-ahead prices as an AMS reader serves them, turned into price slots.

The firmware prints two shapes (``AmsWebServer.cpp``):

* ``/energyprice.json`` (kept for older clients): ``{"currency", "source", "00": p, ..., "35": p}``,
  always hourly. Key ``NN`` is the price of point ``H + NN`` of the reader's price day, where
  ``H`` is the wall-clock hour when the reader answered (``getPriceForRelativeHour``); a point
  is a whole hour counted from the day's midnight, so on a DST day key ``00`` read at 05:30 is
  the slot that starts 5 elapsed hours after midnight. With 15-minute prices the reader
  averages the hour's quarters into that one hourly value.
* ``/importprice.json`` and ``/exportprice.json``: ``{"currency", "source", "resolution": 15|60,
  "direction", "cursor", "importExportPriceDifferent", "prices": [p, ...]}``. ``prices[i]`` is
  the slot starting ``i * resolution`` minutes after midnight of the reader's price day, running
  on into the next day when tomorrow's prices are known (so 92 or 100 quarter hours cover a
  DST day, 96 any other).

Neither shape names its day: the day is the one the reader was in when it answered, so the
time it was read is needed. The reader counts its price day from midnight CET/CEST (its
``entsoeTz``), which is also midnight in Oslo, Stockholm and Copenhagen. Unknown prices are
``null`` and give no slot.

``/priceconfig.json`` holds the user's price modifiers, ``{"o": [row, ...]}`` with a row
``{"t": type, "n": name, "d": direction, "a": [days], "h": [hours], "v": value,
"s": {"m", "d"}, "e": {"m", "d"}}``: type 0 a fixed price (it replaces the spot price; fixed rows
add up), 1 an amount added, 2 a percentage of the price, 3 an amount subtracted; direction 1
import, 2 export, 3 both; days 0 (Monday) to 6 (Sunday); hours 0 to 23 local; the rows apply
from start month/day to end month/day (0 means the year's first or last). A row that applies
at all times maps onto a tariff: fixed prices onto ``import_per_kwh``/``export_per_kwh``,
amounts onto ``import_adder_per_kwh``/``export_adder_per_kwh`` (the reader adds them to fixed
prices too, as the tariff does). Percentages and rows for some days, hours or dates have no
tariff field and are returned as reasons instead. The reader keeps no daily or monthly fees.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from meterhub.model import Direction, PricePoint

__all__ = [
    "LEGACY_HOURS",
    "EnergyPriceError",
    "is_reader_prices",
    "price_day_start",
    "prices_from_energyprice",
    "tariff_fields_from_priceconfig",
]

LEGACY_HOURS = 36
"""Hourly keys ``00`` to ``35`` of ``/energyprice.json``."""
_RESOLUTIONS_MIN = (15, 60)
_CURRENCY_RE = re.compile(r"^[A-Za-z]{3}$")
_FIXED, _ADD, _PERCENT, _SUBTRACT = 0, 1, 2, 3
_IMPORT, _EXPORT = 1, 2


class EnergyPriceError(ValueError):
    """A reader price payload that cannot be read."""


def is_reader_prices(payload: object) -> bool:
    """Tell whether ``payload`` has the shape of a reader's price answer (either shape)."""
    if not isinstance(payload, Mapping) or "currency" not in payload:
        return False
    if "00" in payload:
        return True
    prices = payload.get("prices")
    return (
        "resolution" in payload
        and isinstance(prices, list)
        and all(p is None or (isinstance(p, int | float) and not isinstance(p, bool)) for p in prices)
    )


def price_day_start(read_at: datetime, tz: str) -> datetime:
    """Return the UTC instant the reader's price day that holds ``read_at`` began."""
    zone = _zone(tz)
    local = _aware(read_at).astimezone(zone)
    return datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(UTC)


def prices_from_energyprice(
    payload: Mapping[str, Any], series: str, tz: str, read_at: datetime
) -> list[PricePoint]:
    """Return the slots of a reader price payload read at ``read_at``, in time order.

    ``tz`` is the zone the reader counts its price day in (CET/CEST in current firmware;
    ``Europe/Oslo`` gives the same midnight). Raises :class:`EnergyPriceError` naming what is wrong.
    """
    if not series.strip():
        raise EnergyPriceError("a price series needs a non-empty name")
    if not is_reader_prices(payload):
        raise EnergyPriceError(
            'not a reader price answer: expected "currency" with hourly keys "00".."35" '
            'or "resolution" and a "prices" array'
        )
    currency = payload.get("currency")
    if not isinstance(currency, str) or not _CURRENCY_RE.match(currency.strip()):
        raise EnergyPriceError(f"currency {currency!r} is not a three-letter code like NOK")
    midnight = price_day_start(read_at, tz)
    if "00" in payload:
        hour = _aware(read_at).astimezone(_zone(tz)).hour
        values = [(hour + offset, payload.get(f"{offset:02d}")) for offset in range(LEGACY_HOURS)]
        step = timedelta(minutes=60)
        direction = Direction.IMPORT
    else:
        step = timedelta(minutes=_resolution(payload.get("resolution")))
        values = list(enumerate(payload["prices"]))
        direction = Direction.EXPORT if payload.get("direction") == "export" else Direction.IMPORT
    points: list[PricePoint] = []
    for point, value in values:
        if value is None:
            continue
        price = _price(value, point)
        start = midnight + point * step
        points.append(PricePoint(start, start + step, price, currency.strip().upper(), direction, series))
    return points


def _resolution(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in _RESOLUTIONS_MIN:
        raise EnergyPriceError(f"resolution {value!r} is neither 15 nor 60 minutes")
    return value


def _price(value: Any, point: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EnergyPriceError(f"price {value!r} of point {point} is not a number")
    return float(value)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise EnergyPriceError(f"the time the prices were read ({moment.isoformat()}) needs a UTC offset")
    return moment


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise EnergyPriceError(f"unknown time zone {tz!r}") from None


def tariff_fields_from_priceconfig(
    payload: Mapping[str, Any], currency: str
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Return tariff fields (plain data for ``Place.tariff``) from ``/priceconfig.json``, and
    one reason per row that no tariff field can hold.

    ``currency`` is the reader's (``energyprice.json`` names it); it is set when any price is.
    Raises :class:`EnergyPriceError` for a malformed answer.
    """
    rows = payload.get("o")
    if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
        raise EnergyPriceError('expected price settings "o" as a list of objects')
    sums = {
        "import_per_kwh": 0.0,
        "export_per_kwh": 0.0,
        "import_adder_per_kwh": 0.0,
        "export_adder_per_kwh": 0.0,
    }
    fixed: set[str] = set()
    skipped: list[str] = []
    for index, row in enumerate(rows):
        name = str(row.get("n") or f"row {index}")
        kind, direction = row.get("t"), row.get("d")
        if kind not in (_FIXED, _ADD, _PERCENT, _SUBTRACT) or direction not in (1, 2, 3):
            raise EnergyPriceError(
                f"{name}: type {kind!r} or direction {direction!r} is not one the reader uses"
            )
        value = row.get("v")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise EnergyPriceError(f"{name}: value {value!r} is not a number")
        if kind == _PERCENT:
            skipped.append(f"{name}: a percentage of the price ({value:g} %) has no tariff field")
            continue
        limits = _limits(row)
        if limits:
            skipped.append(f"{name}: applies only on some {limits}; the tariff has no such field")
            continue
        sides = [side for bit, side in ((_IMPORT, "import"), (_EXPORT, "export")) if direction & bit]
        for side in sides:
            if kind == _FIXED:
                sums[f"{side}_per_kwh"] += value
                fixed.add(f"{side}_per_kwh")
            else:
                sums[f"{side}_adder_per_kwh"] += value if kind == _ADD else -value
    fields: dict[str, Any] = {
        name: round(total, 4)
        for name, total in sums.items()
        if name in fixed or (name.endswith("adder_per_kwh") and total)
    }
    if fields:
        if not isinstance(currency, str) or not _CURRENCY_RE.match(currency.strip()):
            raise EnergyPriceError(f"currency {currency!r} is not a three-letter code like NOK")
        fields["currency"] = currency.strip().upper()
    return fields, tuple(skipped)


def _limits(row: Mapping[str, Any]) -> str:
    """Name what a row is limited to (days, hours, dates), or return '' when it always applies."""
    limited: list[str] = []
    if sorted(_whole_list(row.get("a"), "days", 6)) != list(range(7)):
        limited.append("days")
    if sorted(_whole_list(row.get("h"), "hours", 23)) != list(range(24)):
        limited.append("hours")
    start, end = row.get("s") or {}, row.get("e") or {}
    if not isinstance(start, Mapping) or not isinstance(end, Mapping):
        raise EnergyPriceError('expected "s" and "e" as {"m", "d"} objects')
    begins = (_month_day(start.get("m"), 1, 12), _month_day(start.get("d"), 1, 31))
    ends = (_month_day(end.get("m"), 12, 12), _month_day(end.get("d"), 31, 31))
    if begins != (1, 1) or ends != (12, 31):
        limited.append("dates")
    return " and ".join(limited)


def _whole_list(value: Any, what: str, high: int) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= high for item in value
    ):
        raise EnergyPriceError(f"{what} {value!r} are not whole numbers from 0 to {high}")
    return sorted(set(value))


def _month_day(value: Any, default: int, high: int) -> int:
    """Read a month or day of month as the reader does: 0 or out of range means ``default``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise EnergyPriceError(f"month or day {value!r} is not a whole number")
    return default if value == 0 or value > high else value
