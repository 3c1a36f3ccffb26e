"""Store fetched or imported price points as one series, refusing a change of currency."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx

from meterhub.analytics.prices import currency_clash
from meterhub.errors import InputError
from meterhub.model import Direction, PricePoint
from meterhub.store.base import Store
from meterhub.threads import run_ingest
from meterhub.vendors.base import QuotaGuard

from .entsoe import DEFAULT_BASE_URL, QUOTA_RULES, VENDOR, fetch_day_ahead
from .zones import BiddingZone

__all__ = ["HTTP_TIMEOUT", "StoredPrices", "fetch_entsoe_into", "store_prices"]

HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
"""A year of quarter hours is a few MB of XML: the platform may take a while to answer."""


@dataclass(frozen=True, slots=True)
class StoredPrices:
    """What storing did: slots given, stored (new or changed) and already equal, and their span."""

    series: str
    read: int
    stored: int
    unchanged: int
    first_start: datetime
    last_end: datetime


def store_prices(store: Store, points: Sequence[PricePoint]) -> StoredPrices:
    """Write ``points`` (of one series) at once; on a currency clash raise InputError, writing nothing."""
    if not points:
        raise InputError("no price slots to store")
    series = points[0].series
    clash = currency_clash(store, series, points)
    if clash is not None:
        direction, held, given = clash
        raise InputError(
            f"series {series!r} holds {direction} prices in {held}, these are in {given}; "
            "choose another --series"
        )
    result = store.write_prices(points)
    return StoredPrices(
        series,
        len(points),
        result.stored,
        result.duplicates,
        min(p.start for p in points),
        max(p.end for p in points),
    )


async def fetch_entsoe_into(
    store: Store,
    *,
    token: str,
    zone: BiddingZone,
    start: datetime,
    end: datetime,
    series: str,
    base_url: str = DEFAULT_BASE_URL,
    direction: Direction = Direction.IMPORT,
) -> StoredPrices:
    """Fetch ENTSO-E day-ahead prices of [start, end) within the quota ledger and store them."""
    quotas = QuotaGuard(store, VENDOR, QUOTA_RULES)
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
        points = await fetch_day_ahead(
            client,
            token=token,
            zone=zone,
            start=start,
            end=end,
            series=series,
            base_url=base_url,
            quotas=quotas,
            direction=direction,
        )
    return await run_ingest(store_prices, store, points)
