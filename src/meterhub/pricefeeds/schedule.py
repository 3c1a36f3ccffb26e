"""The hub's price feeds: keep today's and tomorrow's day-ahead prices in the store.

Each ``[[prices]]`` source wakes when a delivery day becomes due (``fetch_after`` in CET/CEST
on the day before, about 15 minutes after the platform publishes), asks for every due day not
fully stored in one request, and while a due day is not out yet (ENTSO-E's reason 999) tries
again every ``retry_s``. A failure (token refused, platform down, a garbled answer) is logged
in one line and retried with a doubling wait up to an hour; the loop never ends on one. Each
request takes a slot of the platform's 400-per-minute quota in the store's ledger, shared with
``meterhub prices fetch``. A restart finds what is stored and asks only for what is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

import anyio
import httpx

from meterhub.config import resolve_secret
from meterhub.errors import MeterhubError, QuotaExceeded
from meterhub.store.base import Store
from meterhub.threads import run_ingest
from meterhub.timeutil import get_zone
from meterhub.vendors.base import QuotaGuard

from .entsoe import QUOTA_RULES, VENDOR, NoPricesFound, fetch_day_ahead
from .sources import PriceSource
from .storing import store_prices
from .zones import day_bounds

__all__ = ["MAX_WAIT_S", "PUBLISH_TZ", "PriceFeed", "alongside_price_feeds", "run_price_feeds"]

log = logging.getLogger(__name__)

PUBLISH_TZ = "Europe/Brussels"
"""The zone ``fetch_after`` is read in: the market's CET/CEST."""
MAX_WAIT_S = 3600.0
"""The longest a feed sleeps before looking again (and the cap of its back-off)."""


class FeedClock(Protocol):
    """The hub's clock: the time, and sleeping by it."""

    def now(self) -> datetime:
        """Return the current instant, aware UTC."""
        ...

    async def sleep(self, clock_s: float) -> None:
        """Sleep that many seconds of this clock."""
        ...


class PriceFeed:
    """One ``[[prices]]`` source kept up to date in the store."""

    def __init__(
        self, store: Store, client: httpx.AsyncClient, source: PriceSource, clock: FeedClock
    ) -> None:
        self.store = store
        self.client = client
        self.source = source
        self.clock = clock
        self.quotas = QuotaGuard(store, VENDOR, QUOTA_RULES, now=clock.now)
        self.failures = 0
        self.fetches = 0
        """Requests made (successful or not), for people and tests."""

    async def run(self) -> None:
        """Fetch due days and sleep until the next is due, until cancelled."""
        log.info(
            "price feed %s: %s %s, asking at %s CET/CEST for the next day",
            self.source.series,
            self.source.source,
            self.source.zone.name,
            self.source.fetch_after.strftime("%H:%M"),
        )
        while True:
            try:
                wait_s = await self.step()
            except MeterhubError as exc:  # the store failed a read: try again later
                self.failures += 1
                wait_s = self._backoff_s()
                log.warning("price feed %s: %s; next look in %d s", self.source.series, exc, wait_s)
            except Exception:  # a fault of ours must not end the feed or the hub; logged with its trace
                self.failures += 1
                wait_s = MAX_WAIT_S
                log.exception("price feed %s: unexpected failure; next look in an hour", self.source.series)
            await self.clock.sleep(wait_s)

    def _backoff_s(self) -> float:
        """Return the wait after ``failures`` failures in a row: retry_s, doubling up to an hour."""
        return min(MAX_WAIT_S, self.source.retry_s * 2.0 ** max(0, self.failures - 1))

    def due_at(self, day: date) -> datetime:
        """Return when ``day``'s prices are first asked for: ``fetch_after`` CET the day before."""
        before = day - timedelta(days=1)
        local = datetime.combine(before, self.source.fetch_after, tzinfo=get_zone(PUBLISH_TZ))
        return local.astimezone(UTC)

    async def step(self) -> float:
        """Fetch what is due and missing; return the seconds of the clock until the next look."""
        now = self.clock.now()
        today = now.astimezone(get_zone(self.source.zone.tz)).date()
        days = [today + timedelta(days=n) for n in range(3)]
        missing = [day for day in days if not await run_ingest(self._complete, day)]
        due = [day for day in missing if self.due_at(day) <= now]
        wait_s: float | None = None
        if due:
            wait_s = await self._fetch(due)
            missing = [day for day in missing if not await run_ingest(self._complete, day)]
            if wait_s is None and any(day in missing for day in due):
                wait_s = float(self.source.retry_s)  # stored, but a due day is still short of slots
        upcoming = [self.due_at(day) for day in missing if self.due_at(day) > now]
        upcoming.append(self.due_at(today + timedelta(days=3)))
        until_next_s = (min(upcoming) - self.clock.now()).total_seconds()
        if wait_s is None:
            wait_s = until_next_s
        return max(0.0, min(wait_s, until_next_s, MAX_WAIT_S))

    async def _fetch(self, days: Sequence[date]) -> float | None:
        """Fetch and store ``days``; return a wait before retrying, or None when all went well."""
        tz = self.source.zone.tz
        start, end = day_bounds(days[0], tz)[0], day_bounds(days[-1], tz)[1]
        span = f"{days[0].isoformat()}" + (f"..{days[-1].isoformat()}" if len(days) > 1 else "")
        self.fetches += 1
        try:
            token = resolve_secret(self.source.token_ref)
            points = await fetch_day_ahead(
                self.client,
                token=token,
                zone=self.source.zone,
                start=start,
                end=end,
                series=self.source.series,
                base_url=self.source.base_url,
                quotas=self.quotas,
                direction=self.source.direction,
            )
            result = await run_ingest(store_prices, self.store, points)
        except NoPricesFound:
            self.failures = 0
            log.info(
                "price feed %s: %s not published yet; next try in %d s",
                self.source.series,
                span,
                self.source.retry_s,
            )
            return float(self.source.retry_s)
        except QuotaExceeded as exc:
            log.warning("price feed %s: %s", self.source.series, exc)
            return max(1.0, exc.retry_after_s or 60.0)
        except MeterhubError as exc:
            self.failures += 1
            wait_s = self._backoff_s()
            log.warning("price feed %s: %s; next try in %d s", self.source.series, exc, wait_s)
            return wait_s
        self.failures = 0
        log.info(
            "price feed %s: %s: %d slots, %d stored, %d unchanged",
            self.source.series,
            span,
            result.read,
            result.stored,
            result.unchanged,
        )
        return None

    def _complete(self, day: date) -> bool:
        """Tell whether every minute of ``day`` (local in the zone) has a stored price."""
        start, end = day_bounds(day, self.source.zone.tz)
        covered = timedelta(0)
        for point in self.store.prices(start, end, self.source.direction.value, self.source.series):
            covered += min(point.end, end) - max(point.start, start)
        return covered >= end - start


async def run_price_feeds(
    store: Store, client: httpx.AsyncClient, sources: Sequence[PriceSource], clock: FeedClock
) -> None:
    """Run one :class:`PriceFeed` per source until cancelled (return at once without sources)."""
    if not sources:
        return
    async with anyio.create_task_group() as task_group:
        for source in sources:
            task_group.start_soon(PriceFeed(store, client, source, clock).run)


async def alongside_price_feeds(
    main: Callable[[], Awaitable[None]],
    store: Store,
    client: httpx.AsyncClient,
    sources: Sequence[PriceSource],
    clock: FeedClock,
) -> None:
    """Run ``main()`` with the price feeds beside it; the feeds end when it returns or is cancelled."""
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(run_price_feeds, store, client, sources, clock)
        await main()
        task_group.cancel_scope.cancel()
