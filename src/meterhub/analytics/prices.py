"""Dynamic prices from CSV or JSON files: one slot per row, checked row by row before anything is stored.

A row has ``start`` (ISO 8601 with an offset), either ``end`` or ``resolution`` (``15m``,
``60m``, ``1h``, ``PT15M``, ``PT60M``), ``price`` (per kWh), ``currency`` and optionally
``direction`` (``import``, the default, or ``export``). Other columns are ignored. A CSV has a
header line and is separated by commas or semicolons (a semicolon file may use decimal commas);
a JSON file is an array of objects or an object with a ``prices`` array. Slots must lie on the
UTC 15-minute grid, must not overlap, and keep one currency per direction; any bad row stops the
import with every reason, so a series is never half imported.

A JSON file may also be an AMS reader's own price answer (``energyprice.json``, hourly keys
``00``..``35``, or ``importprice.json``/``exportprice.json`` with ``resolution`` and ``prices``),
recognised by its shape. It names no day, so it is placed by the time it was read (``read_at``,
by default the file's modification time) in the zone the reader counts its price day in.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from meterhub.errors import ImportFileError
from meterhub.model import Direction, PricePoint
from meterhub.store.base import Store
from meterhub.timeutil import to_ms
from meterhub.vendors.amsreader.pricefile import EnergyPriceError, is_reader_prices, prices_from_energyprice

__all__ = [
    "MAX_REASONS",
    "READER_PRICE_TZ",
    "PriceImport",
    "currency_clash",
    "import_prices",
    "parse_prices",
    "read_prices",
]

MAX_REASONS = 5
"""Bad rows named in the error message; the rest are counted."""
_RESOLUTION_RE = re.compile(r"^(?:PT)?(\d+)\s*(M|MIN|H)$")
_QUARTER_MS = 900_000
READER_PRICE_TZ = "Europe/Oslo"
"""Where a reader's price day begins by default: midnight CET/CEST, as its firmware counts."""


@dataclass(frozen=True, slots=True)
class PriceImport:
    """What an import did: slots read, stored (new or changed) and already equal."""

    series: str
    read: int
    stored: int
    unchanged: int
    first_start: datetime
    last_end: datetime


class _RowError(ValueError):
    """One row's reason for refusal."""


def read_prices(
    path: Path, series: str, *, read_at: datetime | None = None, reader_tz: str = READER_PRICE_TZ
) -> list[PricePoint]:
    """Read and check every slot of a CSV or JSON price file; raise ImportFileError naming bad rows.

    A reader's price answer is placed by ``read_at``, by default the file's modification time.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
        if read_at is None:
            read_at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except FileNotFoundError as exc:
        raise ImportFileError(f"file {path} not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"cannot read {path}: {exc}") from exc
    return parse_prices(text, series, path.name, read_at=read_at, reader_tz=reader_tz)


def parse_prices(
    text: str,
    series: str,
    where: str = "prices",
    *,
    read_at: datetime | None = None,
    reader_tz: str = READER_PRICE_TZ,
) -> list[PricePoint]:
    """Parse price rows from CSV or JSON text (told apart by the first character).

    An AMS reader's price answer is recognised by its shape and needs ``read_at``.
    """
    if not series.strip():
        raise ImportFileError("a price series needs a non-empty name")
    is_json = text.lstrip()[:1] in ("[", "{")
    if is_json:
        document = _json_document(text, where)
        if is_reader_prices(document):
            return _reader_points(document, series, where, read_at, reader_tz)
    rows = _json_rows(document, where) if is_json else _csv_rows(text, where)
    valid: list[tuple[str, PricePoint]] = []
    reasons: list[str] = []
    for line, row in rows:
        try:
            valid.append((line, _point(row, series)))
        except _RowError as exc:
            reasons.append(f"{line}: {exc}")
    if not reasons:
        reasons.extend(_consistency(valid))
    if reasons:
        shown = "; ".join(reasons[:MAX_REASONS])
        more = f" (and {len(reasons) - MAX_REASONS} more)" if len(reasons) > MAX_REASONS else ""
        raise ImportFileError(f"{where}: {len(reasons)} bad row(s), nothing imported: {shown}{more}")
    points = [point for _, point in valid]
    if not points:
        raise ImportFileError(f"{where}: no price rows found")
    return points


def currency_clash(store: Store, series: str, points: Sequence[PricePoint]) -> tuple[str, str, str] | None:
    """Return (direction, currency held, currency given) when ``points`` would change the currency
    of a direction the stored series ``series`` holds; None when they fit it."""
    for name, direction, currency, *_ in store.price_series():
        if name != series:
            continue
        clash = next((p for p in points if p.direction.value == direction and p.currency != currency), None)
        if clash is not None:
            return direction, currency, clash.currency
    return None


def import_prices(
    store: Store,
    path: Path,
    series: str,
    *,
    read_at: datetime | None = None,
    reader_tz: str = READER_PRICE_TZ,
) -> PriceImport:
    """Read a price file and store its slots as series ``series`` (a re-import updates prices)."""
    points = read_prices(path, series, read_at=read_at, reader_tz=reader_tz)
    clash = currency_clash(store, series, points)
    if clash is not None:
        direction, held, given = clash
        raise ImportFileError(
            f"series {series!r} holds {direction} prices in {held}; this file gives {given}"
        )
    result = store.write_prices(points)
    return PriceImport(
        series,
        len(points),
        result.stored,
        result.duplicates,
        min(p.start for p in points),
        max(p.end for p in points),
    )


def _csv_rows(text: str, where: str) -> list[tuple[str, Mapping[str, Any]]]:
    head = text.split("\n", 1)[0]
    delimiter = ";" if head.count(";") > head.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    fields = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [name for name in ("start", "price", "currency") if name not in fields]
    if missing:
        raise ImportFileError(
            f"{where}: the header lacks {', '.join(missing)}; "
            "expected start, end or resolution, price, currency[, direction]"
        )
    rows: list[tuple[str, Mapping[str, Any]]] = []
    for number, raw in enumerate(reader, start=2):
        row = {str(k).strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(row.values()):
            continue
        if delimiter == ";" and "price" in row:
            row["price"] = row["price"].replace(",", ".")
        rows.append((f"line {number}", row))
    return rows


def _json_document(text: str, where: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ImportFileError(f"{where}: not valid JSON ({exc})") from exc


def _reader_points(
    document: Mapping[str, Any], series: str, where: str, read_at: datetime | None, reader_tz: str
) -> list[PricePoint]:
    if read_at is None:
        raise ImportFileError(f"{where}: a reader's price answer names no day; say when it was read")
    try:
        points = prices_from_energyprice(document, series, reader_tz, read_at)
    except EnergyPriceError as exc:
        raise ImportFileError(f"{where}: {exc}") from exc
    if not points:
        raise ImportFileError(f"{where}: the reader knows no prices yet (every price is null)")
    return points


def _json_rows(document: Any, where: str) -> list[tuple[str, Mapping[str, Any]]]:
    if isinstance(document, dict):
        document = document.get("prices")
    if not isinstance(document, list):
        raise ImportFileError(f'{where}: expected an array of price objects or {{"prices": [...]}}')
    rows: list[tuple[str, Mapping[str, Any]]] = []
    for index, item in enumerate(document):
        if not isinstance(item, dict):
            item = {"__not_an_object__": item}
        rows.append((f"item {index}", {str(k).lower(): v for k, v in item.items()}))
    return rows


def _point(row: Mapping[str, Any], series: str) -> PricePoint:
    if "__not_an_object__" in row:
        raise _RowError("not an object")
    start = _time(row.get("start"), "start")
    end_text, resolution = row.get("end"), row.get("resolution")
    if _blank(end_text) == _blank(resolution):
        raise _RowError("give exactly one of end and resolution")
    end = start + _resolution(resolution) if _blank(end_text) else _time(end_text, "end")
    if end <= start:
        raise _RowError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    if to_ms(start) % _QUARTER_MS or to_ms(end) % _QUARTER_MS:
        raise _RowError(f"slot {start.isoformat()} is off the 15-minute grid")
    price = row.get("price")
    if not isinstance(price, str | int | float) or isinstance(price, bool) or _blank(price):
        raise _RowError(f"price {price!r} is not a number")
    try:
        price_per_kwh = float(price)
    except ValueError:
        raise _RowError(f"price {price!r} is not a number") from None
    if not math.isfinite(price_per_kwh):
        raise _RowError(f"price {price!r} is not a finite number")
    currency = row.get("currency")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency.strip()):
        raise _RowError(f"currency {currency!r} is not a three-letter code like EUR")
    direction_text = row.get("direction")
    try:
        direction = Direction("import" if _blank(direction_text) else str(direction_text).strip().lower())
    except ValueError:
        raise _RowError(f"direction {direction_text!r} is neither import nor export") from None
    return PricePoint(start, end, price_per_kwh, currency.strip().upper(), direction, series)


def _consistency(rows: list[tuple[str, PricePoint]]) -> Iterator[str]:
    """Yield overlap and currency conflicts between otherwise valid rows."""
    currency: dict[Direction, str] = {}
    before: PricePoint | None = None
    for line, point in sorted(rows, key=lambda row: (row[1].direction, row[1].start)):
        seen = currency.setdefault(point.direction, point.currency)
        if seen != point.currency:
            yield f"{line}: currency {point.currency} differs from {seen} of the other {point.direction} rows"
        if before is not None and before.direction == point.direction and point.start < before.end:
            yield f"{line}: slot {point.start.isoformat()} overlaps the one from {before.start.isoformat()}"
        before = point


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _time(value: Any, what: str) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise _RowError(f"{what} is missing")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise _RowError(f"{what} {value!r} is not ISO 8601 like 2026-03-29T00:00:00+01:00") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _RowError(f"{what} {value!r} has no UTC offset (add Z or +01:00)")
    return parsed.astimezone(UTC)


def _resolution(value: Any) -> timedelta:
    match = _RESOLUTION_RE.match(str(value).strip().upper())
    if not match:
        raise _RowError(f"resolution {value!r} is not like 15m, 60m, 1h, PT15M or PT60M")
    minutes = int(match.group(1)) * (60 if match.group(2) == "H" else 1)
    if minutes <= 0:
        raise _RowError(f"resolution {value!r} is not positive")
    return timedelta(minutes=minutes)
