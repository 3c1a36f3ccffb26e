"""Price files exported by Nord Pool's data portal and by the ENTSO-E transparency platform.

- ``nordpool-csv``: the data portal's day-ahead export, separated by semicolons (or commas)::

      Delivery Start (CET);Delivery End (CET);NO1 (EUR);NO2 (EUR)
      25.10.2026 00:00:00;25.10.2026 00:15:00;45.12;44.80

  one column per delivery area, headed ``AREA (CURRENCY)`` or ``AREA Price (CURRENCY)``, prices
  per MWh, times local in the zone the header names (CET means Central European time with its
  summer time). ``--zone`` picks the area when the file has several.
- ``entsoe-csv``: the transparency platform's "Day-ahead Prices" export::

      "MTU (CET/CEST)","Day-ahead Price [EUR/MWh]","Currency","BZN|NO1"
      "25.10.2026 00:00 - 25.10.2026 00:15","45.12","EUR",""

  or the newer layout with ``"MTU (CET/CEST)","Area","Sequence","Day-ahead Price (EUR/MWh)"``
  and times like ``25/10/2026 00:00:00``; an hour repeated when clocks go back may carry
  ``(CEST)``/``(CET)``. Rows without a price (``-``, ``n/e`` or empty) are skipped.
- ``entsoe-xml``: an A44 Publication_MarketDocument saved from the platform or its API.

A local time that occurs twice (the hour clocks go back) is taken as the first occurrence the
first time it appears and as the second after that, as both exports list them in order.
Prices are stored raw per kWh (per MWh / 1000).
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

from meterhub.errors import ImportFileError, MeterhubError, VendorError
from meterhub.model import Direction, PricePoint
from meterhub.timeutil import get_zone

from .entsoe import NoPricesFound, parse_document
from .zones import find_zone

__all__ = ["FORMATS", "detect_format", "parse_export", "read_export"]

FORMATS = ("nordpool-csv", "entsoe-csv", "entsoe-xml")
"""The export formats ``meterhub prices import --format`` names."""

_ZONE_LABELS = {
    "CET": "Europe/Brussels",
    "CET/CEST": "Europe/Brussels",
    "CEST": "Europe/Brussels",
    "EET": "Europe/Helsinki",
    "EET/EEST": "Europe/Helsinki",
    "WET": "Europe/Lisbon",
    "WET/WEST": "Europe/Lisbon",
    "UTC": "UTC",
    "GMT": "UTC",
}
_SUMMER_MARKS = {"CEST", "EEST", "WEST"}
_WINTER_MARKS = {"CET", "EET", "WET"}
_AREA_RE = re.compile(r"^(?P<area>[A-Za-z0-9][A-Za-z0-9 _-]*?)(?: Price)? \((?P<currency>[A-Za-z]{3})\)$")
_ENTSOE_PRICE_RE = re.compile(
    r"^Day-ahead Price\s*[\[(](?P<currency>[A-Za-z]{3})/(?P<unit>MWh|kWh)[\])]$", re.I
)
_LABEL_RE = re.compile(r"\(([A-Z/]+)\)\s*$")
_MARK_RE = re.compile(r"\s*\((?P<mark>[A-Z]{3,4})\)\s*$")
_TIME_FORMATS = (
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
)
_NO_PRICE = {"", "-", "n/e", "na", "n/a", "nan"}
_MAX_REASONS = 5


def read_export(
    path: Path,
    series: str,
    fmt: str | None = None,
    zone: str | None = None,
    direction: Direction = Direction.IMPORT,
) -> list[PricePoint]:
    """Read a price export (its format given or recognised); raise ImportFileError naming what is wrong."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ImportFileError(f"file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"cannot read {path}: {exc}") from None
    chosen = fmt or detect_format(text)
    if chosen is None:
        raise ImportFileError(f"{path.name}: not a Nord Pool or ENTSO-E price export")
    return parse_export(text, series, chosen, path.name, zone=zone, direction=direction)


def detect_format(text: str) -> str | None:
    """Return the export format ``text`` is in, or None when it is none of :data:`FORMATS`."""
    head = text.lstrip()[:4000]
    if head.startswith("<"):
        return "entsoe-xml" if "MarketDocument" in head else None
    first_lines = head.splitlines()[:5]
    if any("Delivery Start" in line for line in first_lines):
        return "nordpool-csv"
    if any("MTU" in line and "Day-ahead Price" in line for line in first_lines):
        return "entsoe-csv"
    return None


def parse_export(
    text: str,
    series: str,
    fmt: str,
    where: str = "prices",
    *,
    zone: str | None = None,
    direction: Direction = Direction.IMPORT,
) -> list[PricePoint]:
    """Parse an export of format ``fmt``; every row is checked before any point is returned."""
    if not series.strip():
        raise ImportFileError("a price series needs a non-empty name")
    if fmt == "entsoe-xml":
        try:
            return parse_document(text, series, direction, where=where)
        except NoPricesFound as exc:
            raise ImportFileError(f"{where}: an acknowledgement without prices ({exc.text})") from None
        except VendorError as exc:
            raise ImportFileError(str(exc)) from None
    if fmt == "nordpool-csv":
        points = _nordpool(text, series, where, zone, direction)
    elif fmt == "entsoe-csv":
        points = _entsoe_csv(text, series, where, zone, direction)
    else:
        raise ImportFileError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not points:
        raise ImportFileError(f"{where}: no prices found (every row was empty)")
    _check_overlaps(points, where)
    return points


@dataclass
class _Clock:
    """Turns local times of one export into UTC, telling repeated hours apart by their order."""

    zone: ZoneInfo
    seen: set[datetime]

    def start(self, naive: datetime, mark: str | None) -> datetime:
        fold = 0
        if mark in _WINTER_MARKS or (mark is None and naive in self.seen):
            fold = 1
        self.seen.add(naive)
        return naive.replace(tzinfo=self.zone, fold=fold).astimezone(UTC)

    def end(self, naive: datetime, start: datetime) -> datetime:
        candidates = [naive.replace(tzinfo=self.zone, fold=f).astimezone(UTC) for f in (0, 1)]
        after = [c for c in candidates if c > start]
        if not after:
            raise ValueError(f"end {naive:%Y-%m-%d %H:%M} is not after the start")
        return min(after)


def _rows(text: str, where: str, marker: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    lines = text.splitlines()
    header_at = next((n for n, line in enumerate(lines[:5]) if marker in line), None)
    if header_at is None:
        raise ImportFileError(f"{where}: no header line with {marker!r} in the first lines")
    header_line = lines[header_at]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO("\n".join(lines[header_at:])), delimiter=delimiter)
    header = [name.strip() for name in next(reader)]
    rows = [(header_at + 1 + n, row) for n, row in enumerate(reader, start=1) if any(c.strip() for c in row)]
    return header, rows


def _zone_of(label_source: str, where: str) -> ZoneInfo:
    match = _LABEL_RE.search(label_source)
    label = match.group(1) if match else "CET"
    if label not in _ZONE_LABELS:
        raise ImportFileError(f"{where}: times in {label!r}, which is not CET, EET, WET or UTC")
    return get_zone(_ZONE_LABELS[label])


def _naive(text: str) -> tuple[datetime, str | None]:
    value = text.strip()
    mark_match = _MARK_RE.search(value)
    mark = mark_match.group("mark") if mark_match else None
    if mark_match:
        value = value[: mark_match.start()].strip()
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(value, fmt), mark  # noqa: DTZ007 - local; _Clock gives the zone
        except ValueError:
            continue
    raise ValueError(f"time {text.strip()!r} is not like 25.10.2026 00:15:00")


def _amount(text: str, comma_decimal: bool) -> Decimal | None:
    value = text.strip().replace("\u00a0", "").replace(" ", "")
    if value.lower() in _NO_PRICE:
        return None
    if comma_decimal:
        value = value.replace(".", "").replace(",", ".") if "," in value else value
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"price {text.strip()!r} is not a number") from None
    if not amount.is_finite():
        raise ValueError(f"price {text.strip()!r} is not a finite number")
    return amount


def _nordpool(text: str, series: str, where: str, zone: str | None, direction: Direction) -> list[PricePoint]:
    header, rows = _rows(text, where, "Delivery Start")
    starts = [n for n, name in enumerate(header) if name.startswith("Delivery Start")]
    ends = [n for n, name in enumerate(header) if name.startswith("Delivery End")]
    if not starts or not ends:
        raise ImportFileError(f"{where}: the header lacks Delivery Start or Delivery End")
    areas = {n: m for n, name in enumerate(header) if (m := _AREA_RE.match(name)) and n not in starts + ends}
    if not areas:
        raise ImportFileError(f"{where}: no price column headed like 'NO1 (EUR)'")
    column = _pick_area(areas, zone, where)
    currency = areas[column].group("currency").upper()
    clock = _Clock(_zone_of(header[starts[0]], where), set())
    comma_decimal = ";" in text.splitlines()[0] or _looks_comma_decimal(rows, column)
    return _collect(
        rows,
        where,
        series,
        direction,
        currency,
        Decimal(1000),
        clock,
        column,
        comma_decimal,
        lambda row: (row[starts[0]], row[ends[0]]),
    )


def _pick_area(areas: Mapping[int, re.Match[str]], zone: str | None, where: str) -> int:
    names: dict[int, str] = {n: str(m.group("area")).strip().upper() for n, m in areas.items()}
    if zone is None:
        if len(names) == 1:
            return next(iter(names))
        raise ImportFileError(
            f"{where}: prices of several areas ({', '.join(names.values())}); choose one with --zone"
        )
    wanted = {zone.strip().upper(), find_zone(zone).name.upper()}
    for n, name in names.items():
        if name in wanted or name.replace(" ", "-") in wanted:
            return n
    raise ImportFileError(f"{where}: no prices of {zone} (the file has {', '.join(names.values())})")


def _looks_comma_decimal(rows: Sequence[tuple[int, list[str]]], column: int) -> bool:
    return any(column < len(row) and "," in row[column] for _, row in rows[:20])


def _entsoe_csv(
    text: str, series: str, where: str, zone: str | None, direction: Direction
) -> list[PricePoint]:
    header, rows = _rows(text, where, "MTU")
    mtu = next((n for n, name in enumerate(header) if name.startswith("MTU")), None)
    price = next((n for n, name in enumerate(header) if _ENTSOE_PRICE_RE.match(name)), None)
    if mtu is None or price is None:
        raise ImportFileError(f"{where}: the header lacks MTU or 'Day-ahead Price [EUR/MWh]'")
    match = _ENTSOE_PRICE_RE.match(header[price])
    assert match is not None
    currency = match.group("currency").upper()
    per_kwh = Decimal(1000) if match.group("unit").lower() == "mwh" else Decimal(1)
    area = next((n for n, name in enumerate(header) if name.lower() == "area"), None)
    sequence = next((n for n, name in enumerate(header) if name.lower() == "sequence"), None)
    if area is not None:
        present = sorted({row[area].strip() for _, row in rows if area < len(row) and row[area].strip()})
        if len(present) > 1 and zone is None:
            raise ImportFileError(
                f"{where}: prices of several areas ({', '.join(present)}); choose one with --zone"
            )
        if zone is not None:
            name = find_zone(zone).name.upper()
            rows = [(n, row) for n, row in rows if row[area].strip().upper().split("|")[-1] in (name, "")]
    if sequence is not None:
        first = next((row[sequence].strip() for _, row in rows if sequence < len(row)), "")
        rows = [(n, row) for n, row in rows if sequence >= len(row) or row[sequence].strip() == first]
    clock = _Clock(_zone_of(header[mtu], where), set())
    comma_decimal = ";" in text.splitlines()[0]

    def bounds(row: list[str]) -> tuple[str, str]:
        start, sep, end = row[mtu].partition(" - ")
        if not sep:
            raise ValueError(f"MTU {row[mtu]!r} is not like '25.10.2026 00:00 - 25.10.2026 00:15'")
        return start, end

    return _collect(rows, where, series, direction, currency, per_kwh, clock, price, comma_decimal, bounds)


def _collect(
    rows: Sequence[tuple[int, list[str]]],
    where: str,
    series: str,
    direction: Direction,
    currency: str,
    per_kwh: Decimal,
    clock: _Clock,
    column: int,
    comma_decimal: bool,
    bounds: Callable[[list[str]], tuple[str, str]],
) -> list[PricePoint]:
    points: list[PricePoint] = []
    reasons: list[str] = []
    for line, row in rows:
        try:
            if column >= len(row):
                raise ValueError("has fewer columns than the header")
            start_text, end_text = bounds(row)
            start_naive, mark = _naive(start_text)
            start = clock.start(start_naive, mark)
            end_naive, _ = _naive(end_text)
            end = clock.end(end_naive, start)
            amount = _amount(row[column], comma_decimal)
            if amount is None:
                continue
            if (end - start) % timedelta(minutes=15) or start.minute % 15:
                raise ValueError(f"slot {start:%Y-%m-%dT%H:%MZ} is off the 15-minute grid")
            points.append(PricePoint(start, end, float(amount / per_kwh), currency, direction, series))
        except (ValueError, MeterhubError) as exc:
            reasons.append(f"line {line}: {exc}")
    if reasons:
        shown = "; ".join(reasons[:_MAX_REASONS])
        more = f" (and {len(reasons) - _MAX_REASONS} more)" if len(reasons) > _MAX_REASONS else ""
        raise ImportFileError(f"{where}: {len(reasons)} bad row(s), nothing imported: {shown}{more}")
    return points


def _check_overlaps(points: list[PricePoint], where: str) -> None:
    ordered = sorted(points, key=lambda p: p.start)
    for before, after in itertools.pairwise(ordered):
        if after.start < before.end:
            raise ImportFileError(
                f"{where}: the slot from {after.start:%Y-%m-%dT%H:%MZ} overlaps the one from "
                f"{before.start:%Y-%m-%dT%H:%MZ}; nothing imported"
            )
    points[:] = ordered
