"""The ENTSO-E transparency platform's day-ahead prices: the A44 document and the RESTful API.

One request::

    GET https://web-api.tp.entsoe.eu/api?documentType=A44&in_Domain=<EIC>&out_Domain=<EIC>
        &periodStart=yyyyMMddHHmm&periodEnd=yyyyMMddHHmm&securityToken=<token>

(times in UTC) answers a ``Publication_MarketDocument``: TimeSeries (``currency_Unit.name``,
``price_Measure_Unit.name`` MWH, ``curveType``) holding Periods (``timeInterval`` start/end,
``resolution`` PT15M or PT60M) of Points (``position`` from 1, ``price.amount``). In a curve of
type A03 a position left out repeats the price before it; in A01 every position is given. A
request the platform cannot answer gets an ``Acknowledgement_MarketDocument`` whose Reason has a
code and text (999 "No matching data found ..." before the day is published). A bad token gets
HTTP 401; more than 400 requests a minute per user gets HTTP 429.

Prices convert to the hub's :class:`~meterhub.model.PricePoint` per kWh in the document's
currency (EUR/MWh / 1000 = EUR/kWh), raw: no VAT, grid fee or markup (a tariff adds those).
"""

from __future__ import annotations

import hashlib
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

import httpx

from meterhub.errors import (
    InputError,
    PayloadError,
    QuotaExceeded,
    VendorAuthError,
    VendorError,
    VendorUnavailable,
)
from meterhub.model import Direction, PricePoint
from meterhub.redact import redact_text
from meterhub.vendors.base import QuotaGuard, QuotaRule

from .zones import BiddingZone

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_SPAN",
    "QUOTA_RULES",
    "EntsoeAcknowledgement",
    "NoPricesFound",
    "fetch_day_ahead",
    "parse_document",
    "period_text",
    "token_scope",
]

DEFAULT_BASE_URL = "https://web-api.tp.entsoe.eu/api"
"""The platform's RESTful endpoint."""
QUOTA_RULES = (QuotaRule("api", 400, 60, scope="account"),)
"""The documented limit: 400 requests per minute per user (security token)."""
MAX_SPAN = timedelta(days=366)
"""The longest interval one A44 request may cover (one year)."""
VENDOR = "entsoe"
_MWH_PER = {"MWH": Decimal(1000), "KWH": Decimal(1)}
_RESOLUTION_RE = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


class EntsoeAcknowledgement(VendorError):
    """The platform answered an Acknowledgement_MarketDocument instead of prices."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"ENTSO-E refused the request: reason {code}: {text}")
        self.code = code
        self.text = text


class NoPricesFound(EntsoeAcknowledgement):
    """Reason 999, no matching data: the day is not published yet, or the zone has no prices."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(code, text)
        self.args = (
            "ENTSO-E has no prices for that zone and interval (tomorrow's come out about 12:45 CET); "
            f"reason {code}: {text}",
        )


def token_scope(token: str) -> str:
    """Return the key the quota ledger counts a token's calls by (a digest, never the token)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def period_text(moment: datetime) -> str:
    """Return an instant as the API's ``yyyyMMddHHmm`` in UTC."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M")


async def fetch_day_ahead(
    client: httpx.AsyncClient,
    *,
    token: str,
    zone: BiddingZone,
    start: datetime,
    end: datetime,
    series: str,
    base_url: str = DEFAULT_BASE_URL,
    quotas: QuotaGuard | None = None,
    direction: Direction = Direction.IMPORT,
) -> list[PricePoint]:
    """Fetch the day-ahead prices of ``zone`` in [start, end) as price points of ``series``.

    Raises NoPricesFound (nothing published for the interval), VendorAuthError (token refused),
    QuotaExceeded (429 or our own ledger full), VendorUnavailable, PayloadError or
    EntsoeAcknowledgement; messages never hold the token.
    """
    if end <= start:
        raise InputError(f"the end {end.isoformat()} is not after the start {start.isoformat()}")
    if end - start > MAX_SPAN:
        raise InputError("ENTSO-E answers at most one year per request; shorten the interval")
    if not token:
        raise VendorAuthError("no ENTSO-E security token given")
    if quotas is not None:
        await quotas.acquire("api", token_scope(token))
    params = {
        "documentType": "A44",
        "in_Domain": zone.eic,
        "out_Domain": zone.eic,
        "periodStart": period_text(start),
        "periodEnd": period_text(end),
        "securityToken": token,
    }
    host = httpx.URL(base_url).host or base_url
    try:
        response = await client.get(base_url, params=params)
    except httpx.TimeoutException:
        raise VendorUnavailable(f"ENTSO-E at {host} did not answer in time") from None
    except httpx.HTTPError as exc:
        reason = redact_text(str(exc), [token]) or type(exc).__name__
        raise VendorUnavailable(f"cannot reach ENTSO-E at {host}: {reason}") from None
    _check_status(response)
    points = parse_document(response.content, series, direction, where=f"ENTSO-E answer from {host}")
    return [p for p in points if start <= p.start and p.end <= end]


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if status in (401, 403):
        raise VendorAuthError(
            f"ENTSO-E refused the security token (HTTP {status}); check the token and that "
            "RESTful API access is granted for the account"
        )
    if status == 429:
        retry = response.headers.get("retry-after", "")
        retry_after_s = float(retry) if retry.replace(".", "", 1).isdigit() else 60.0
        raise QuotaExceeded(
            f"ENTSO-E allows 400 requests per minute per user; try again in {math.ceil(retry_after_s)} s",
            retry_after_s=retry_after_s,
        )
    if status >= 500:
        raise VendorUnavailable(f"ENTSO-E answered HTTP {status}; the platform is having trouble")
    if status >= 400 and b"Acknowledgement_MarketDocument" not in response.content:
        raise VendorError(f"ENTSO-E answered HTTP {status} to the price request")


def parse_document(
    body: bytes | str,
    series: str,
    direction: Direction = Direction.IMPORT,
    *,
    where: str = "ENTSO-E document",
) -> list[PricePoint]:
    """Return the price points of an A44 Publication_MarketDocument, ordered by start.

    Where the document holds the same interval in several TimeSeries, the first sequence wins
    (``classificationSequence_AttributeInstanceComponent.position`` 1, or none given: further
    sequences are other auctions of the zone), then the finest resolution (PT15M over PT60M).
    An Acknowledgement raises NoPricesFound (reason 999) or EntsoeAcknowledgement.
    """
    root = _root(body, where)
    kind = _local(root.tag)
    if kind == "Acknowledgement_MarketDocument":
        raise _acknowledgement(root)
    if kind != "Publication_MarketDocument":
        raise PayloadError(f"{where}: expected a Publication_MarketDocument, not <{kind}>")
    doc_type = _text(root, "type")
    if doc_type not in (None, "A44"):
        raise PayloadError(f"{where}: a document of type {doc_type}, not day-ahead prices (A44)")
    slots: list[tuple[int, timedelta, PricePoint]] = []
    for number, series_element in enumerate(_children(root, "TimeSeries"), start=1):
        here = f"{where}: TimeSeries {number}"
        sequence = _sequence(series_element, here)
        slots.extend(
            (sequence, step, point) for step, point in _series_slots(series_element, series, direction, here)
        )
    if not slots:
        raise PayloadError(f"{where}: the document holds no prices")
    taken: list[PricePoint] = []
    covered: list[tuple[datetime, datetime]] = []
    for _, _, point in sorted(slots, key=lambda item: (item[0], item[1], item[2].start)):
        if any(point.start < end and start < point.end for start, end in covered):
            continue  # a coarser or later sequence of an interval already priced
        taken.append(point)
        covered.append((point.start, point.end))
    currencies = sorted({p.currency for p in taken})
    if len(currencies) > 1:
        raise PayloadError(f"{where}: prices in several currencies ({', '.join(currencies)})")
    return sorted(taken, key=lambda p: p.start)


def _sequence(element: ET.Element, where: str) -> int:
    """Return a TimeSeries' classificationSequence position (1 when it names none)."""
    text = _text(element, "classificationSequence_AttributeInstanceComponent.position")
    if text is None:
        return 1
    try:
        return int(text)
    except ValueError:
        raise PayloadError(f"{where}: classificationSequence position {text!r} is not a number") from None


def _series_slots(
    element: ET.Element, series: str, direction: Direction, where: str
) -> Iterator[tuple[timedelta, PricePoint]]:
    currency = (_text(element, "currency_Unit.name") or "").upper()
    if not _CURRENCY_RE.match(currency):
        raise PayloadError(f"{where}: currency_Unit.name {currency or 'missing'} is not a currency code")
    unit = (_text(element, "price_Measure_Unit.name") or "").upper()
    if unit not in _MWH_PER:
        raise PayloadError(f"{where}: price_Measure_Unit.name {unit or 'missing'} is not MWH")
    per_kwh = _MWH_PER[unit]
    curve = _text(element, "curveType") or "A01"
    if curve not in ("A01", "A03"):
        raise PayloadError(f"{where}: curveType {curve} is neither A01 nor A03")
    for number, period in enumerate(_children(element, "Period"), start=1):
        here = f"{where}, Period {number}"
        start, end, step = _period_frame(period, here)
        prices = _positions(period, here)
        count = (end - start) // step
        if not prices or max(prices) > count:
            raise PayloadError(f"{here}: positions run past the {count} slots of its timeInterval")
        price: Decimal | None = None
        for position in range(1, count + 1):
            given = prices.get(position)
            if given is not None:
                price = given
            elif curve == "A01":
                price = None  # A01 states every slot: one left out has no price
            if price is None:
                if curve == "A03":
                    raise PayloadError(f"{here}: an A03 curve must begin at position 1")
                continue
            slot_start = start + step * (position - 1)
            price_per_kwh = float(price / per_kwh)
            yield step, PricePoint(slot_start, slot_start + step, price_per_kwh, currency, direction, series)


def _period_frame(period: ET.Element, where: str) -> tuple[datetime, datetime, timedelta]:
    interval = _child(period, "timeInterval")
    if interval is None:
        raise PayloadError(f"{where}: no timeInterval")
    start = _instant(_text(interval, "start"), f"{where}: timeInterval start")
    end = _instant(_text(interval, "end"), f"{where}: timeInterval end")
    resolution = (_text(period, "resolution") or "").upper()
    match = _RESOLUTION_RE.match(resolution)
    if not match or not (match.group(1) or match.group(2)):
        raise PayloadError(f"{where}: resolution {resolution or 'missing'} is not like PT15M or PT60M")
    step = timedelta(hours=int(match.group(1) or 0), minutes=int(match.group(2) or 0))
    if step <= timedelta(0) or end <= start or (end - start) % step:
        raise PayloadError(
            f"{where}: timeInterval {start:%Y-%m-%dT%H:%MZ}..{end:%Y-%m-%dT%H:%MZ} "
            f"is not a whole number of {resolution} slots"
        )
    return start, end, step


def _positions(period: ET.Element, where: str) -> dict[int, Decimal]:
    prices: dict[int, Decimal] = {}
    for point in _children(period, "Point"):
        position_text, amount_text = _text(point, "position"), _text(point, "price.amount")
        try:
            position = int(position_text or "")
            amount = Decimal(amount_text or "")
        except (ValueError, InvalidOperation):
            raise PayloadError(
                f"{where}: a Point with position {position_text!r} and price.amount {amount_text!r}"
            ) from None
        if position < 1 or position in prices or not amount.is_finite():
            raise PayloadError(f"{where}: position {position} is out of order, repeated or not finite")
        prices[position] = amount
    return prices


def _acknowledgement(root: ET.Element) -> EntsoeAcknowledgement:
    reason = _child(root, "Reason")
    code = (_text(reason, "code") if reason is not None else None) or "?"
    text = " ".join(((_text(reason, "text") if reason is not None else None) or "no reason given").split())
    if code == "999" and "no matching data" in text.lower():
        return NoPricesFound(code, text)
    return EntsoeAcknowledgement(code, text)


def _root(body: bytes | str, where: str) -> ET.Element:
    raw = body.encode() if isinstance(body, str) else body
    if not raw.strip():
        raise PayloadError(f"{where}: empty answer")
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise PayloadError(f"{where}: declares a DTD or entities, which price documents never do")
    try:
        return ET.fromstring(raw)  # noqa: S314 - no DTD, so no entity can expand or be fetched
    except ET.ParseError as exc:
        raise PayloadError(f"{where}: not well-formed XML ({exc})") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    found = _children(element, name)
    return found[0] if found else None


def _text(element: ET.Element, name: str) -> str | None:
    child = _child(element, name)
    if child is None or child.text is None:
        return None
    return child.text.strip()


def _instant(text: str | None, where: str) -> datetime:
    if not text:
        raise PayloadError(f"{where} is missing")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError(f"{where} {text!r} is not like 2026-03-28T23:00Z") from None
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
