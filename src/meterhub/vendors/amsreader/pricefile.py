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
]

LEGACY_HOURS = 36
"""Hourly keys ``00`` to ``35`` of ``/energyprice.json``."""
_RESOLUTIONS_MIN = (15, 60)
_CURRENCY_RE = re.compile(r"^[A-Za-z]{3}$")


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
