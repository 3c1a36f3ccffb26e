"""The reader's slow-changing answers a connector keeps up with: prices, peaks and temperatures.

Prices change once a day and the reader's capacity peaks once an hour, so a connector reads
them far less often than ``data.json``: prices at most once per :data:`PRICE_REFRESH`, peaks
once per hour a little after the hour changed (:data:`PEAK_SETTLE`), and after a failed read
again only after :data:`RETRY_AFTER`. When each was last read is kept in the store's token
table (:func:`upkeep_key`), so a restarted hub does not read them again early.

The reader's 1-Wire sensors (``/temperature.json``) are read every :data:`TEMPERATURE_REFRESH`:
room and outdoor temperatures move by tenths of a degree in minutes, and the reader itself
reads its sensors only every few seconds, so reading them more often would spend the reader's
one call slot on values that barely change.

Firmware from v2.5.0 serves ``/importprice.json`` (15- or 60-minute prices from midnight);
older firmware only the hourly ``/energyprice.json``. Both count their day from midnight
CET/CEST (:data:`READER_PRICE_ZONE`), whatever zone the reader is set to.

The reader's peaks (``tariff.json``: day of month, local start hour, kWh) become extras named
:data:`PEAK_EXTRA` stamped at the peak hour's start, which the capacity figures read for days
the hub holds no hourly data of. A peak without an hour (firmware 2.3's answer) has no instant
and is left out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from meterhub.model import Extra

from .pricefile import tariff_fields_from_priceconfig
from .tariff import ReaderPeak, capacity_from_tariff_json

__all__ = [
    "IMPORTPRICE_SINCE",
    "PEAK_EXTRA",
    "PEAK_SETTLE",
    "PRICE_REFRESH",
    "READER_PRICE_ZONE",
    "RETRY_AFTER",
    "TEMPERATURE_REFRESH",
    "UpkeepRecord",
    "peak_extras",
    "peaks_due",
    "place_tariff",
    "price_route",
    "prices_due",
    "read_record",
    "series_name",
    "temperatures_due",
    "upkeep_key",
    "upkeep_record",
]

PRICE_REFRESH = timedelta(hours=1)
"""Prices are read at most this often (the reader learns tomorrow's once a day)."""
PEAK_SETTLE = timedelta(seconds=120)
"""How long after an hour ends the reader may still be counting it among its peaks."""
TEMPERATURE_REFRESH = timedelta(minutes=5)
"""The 1-Wire sensors (``temperature.json``) are read at most this often."""
RETRY_AFTER = timedelta(minutes=10)
"""After a failed read, how long to wait before trying again."""
PEAK_EXTRA = "capacity_peak_kwh"
"""The extra holding one of the reader's own capacity peaks, stamped at the peak hour's start."""
READER_PRICE_ZONE = "Europe/Oslo"
"""The reader counts its price day from midnight CET/CEST, the same midnight as Oslo's."""
IMPORTPRICE_SINCE = (2, 5, 0)
"""``/importprice.json`` exists from this firmware version on."""
_HOUR = timedelta(hours=1)

UpkeepRecord = tuple[datetime, bool]
"""When a slow answer was last read, and whether that read succeeded."""


def upkeep_key(kind: str, base_url: str) -> str:
    """Return the token-table key of when ``kind`` (``prices``, ``peaks``, ``temperatures``) was last read."""
    return f"{kind}:{base_url.rstrip('/')}"


def upkeep_record(at: datetime, ok: bool) -> str:
    """Return the kept record of a read at ``at`` that succeeded or failed."""
    return json.dumps({"at": at.timestamp(), "ok": ok})


def read_record(value: str | None) -> UpkeepRecord | None:
    """Return a kept record, or None when there is none or it cannot be read."""
    try:
        stored = json.loads(value) if value is not None else None
    except ValueError:
        return None
    if not isinstance(stored, dict):
        return None
    at, ok = stored.get("at"), stored.get("ok")
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        return None
    try:
        return datetime.fromtimestamp(at, UTC), ok is True
    except (OverflowError, OSError, ValueError):
        return None


def prices_due(record: UpkeepRecord | None, now: datetime) -> bool:
    """Say whether the prices should be read at ``now``."""
    if record is None:
        return True
    at, ok = record
    return now - at >= (PRICE_REFRESH if ok else RETRY_AFTER) or now < at


def temperatures_due(record: UpkeepRecord | None, now: datetime) -> bool:
    """Say whether the 1-Wire sensors should be read at ``now``."""
    if record is None:
        return True
    at, ok = record
    return now - at >= (TEMPERATURE_REFRESH if ok else RETRY_AFTER) or now < at


def peaks_due(record: UpkeepRecord | None, now: datetime) -> bool:
    """Say whether the peaks should be read at ``now``: once per hour, once that hour settled."""
    if record is None:
        return True
    at, ok = record
    if now < at:
        return True  # the clock went back: the record says nothing
    if not ok:
        return now - at >= RETRY_AFTER
    settled = (at - PEAK_SETTLE).replace(minute=0, second=0, microsecond=0)
    return now >= settled + _HOUR + PEAK_SETTLE


def price_route(version: tuple[int, int, int] | None) -> str:
    """Return the route that serves a firmware's import prices (a development build: the newest)."""
    if version is None or version >= IMPORTPRICE_SINCE:
        return "importprice.json"
    return "energyprice.json"


def series_name(meter_id: str) -> str:
    """Return the price series a reader's import prices are kept under."""
    return f"{meter_id}-import"


def peak_extras(peaks: Iterable[ReaderPeak], meter_id: str, now: datetime, zone: ZoneInfo) -> list[Extra]:
    """Return the reader's peaks of ``now``'s local month as extras at each peak hour's start.

    Peaks without an hour, and peaks on a day or hour that has not ended by ``now`` (the reader's
    month ran ahead of ours at a month change), are left out.
    """
    local = now.astimezone(zone)
    extras: list[Extra] = []
    for peak in peaks:
        if peak.hour is None:
            continue
        try:
            start = datetime(local.year, local.month, peak.day, peak.hour, tzinfo=zone).astimezone(UTC)
        except ValueError:
            continue  # day 31 of a 30-day month: not a day of ours
        if start + _HOUR <= now:
            extras.append(Extra(meter_id, start, PEAK_EXTRA, peak.energy_kwh))
    return extras


def place_tariff(
    series: str,
    currency: str,
    priceconfig: Mapping[str, Any] | None,
    tariff: Mapping[str, Any] | None,
    peak_days: int | None = None,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Return the tariff settings of the reader's place, and notes on what the tariff cannot hold.

    Import is priced by the reader's price series plus its always-applying amounts, unless
    ``priceconfig`` sets a fixed price (which replaces the spot price on the reader too). The
    capacity thresholds come from ``tariff``; the number of peaks averaged from ``peak_days``
    (``configuration.json`` ``t.h``) where given, since ``tariff.json`` lists only the peaks
    so far early in a month. Raises the parsers' ValueErrors.
    """
    fields: dict[str, Any] = {}
    notes: tuple[str, ...] = ()
    if priceconfig is not None:
        fields, notes = tariff_fields_from_priceconfig(priceconfig, currency)
    if "import_per_kwh" not in fields:
        fields["import_series"] = series
        fields["currency"] = currency.strip().upper()
    if tariff is not None:
        fields.update(capacity_from_tariff_json(tariff)[0])
    if peak_days is not None:
        fields["capacity_peak_days"] = peak_days
    return fields, notes
