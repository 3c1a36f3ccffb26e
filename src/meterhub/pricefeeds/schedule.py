"""The hub's price feeds: keep today's and tomorrow's day-ahead prices in the store.

Each ``[[prices]]`` source wakes when a delivery day becomes due (``fetch_after`` in CET/CEST
on the day before, about 15 minutes after the platform publishes), asks for every due day not
fully stored in one request, and while a due day is not out yet (ENTSO-E's reason 999) tries
again every ``retry_s``. A failure (token refused, platform down, a garbled answer) is logged
in one line and retried with a doubling wait up to an hour; the loop never ends on one. Each
request takes a slot of the platform's 400-per-minute quota in the store's ledger, shared with
``meterhub prices fetch``. A restart finds what is stored and asks only for what is missing.

Several hubs on one database fetch each feed through one of them at a time: the feed runs under
a work lease (:class:`~meterhub.pricefeeds.lease.HeldLease`, kind ``prices``, item
``direction:series``), and the others stand by and take over when its worker stops or dies.
The fetching worker keeps the feed's state in the store (:mod:`meterhub.pricefeeds.state`)
after every look, for ``meterhub status``, the API, ``/metrics`` and the dashboard.
"""

from __future__ import annotations

import dataclasses
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
from .lease import HeldLease
from .metrics import watching
from .sources import PriceSource
from .state import FeedState, StoredSpan, feed_key, forget_other_feeds, load_state, one_line, save_state
from .storing import StoredPrices, store_prices
from .zones import day_bounds

__all__ = [
    "DEFAULT_LEASE_S",
    "LEASE_KIND",
    "MAX_WAIT_S",
    "PUBLISH_TZ",
    "PriceFeed",
    "alongside_price_feeds",
    "run_price_feeds",
]

log = logging.getLogger(__name__)

PUBLISH_TZ = "Europe/Brussels"
"""The zone ``fetch_after`` is read in: the market's CET/CEST."""
MAX_WAIT_S = 3600.0
"""The longest a feed sleeps before looking again (and the cap of its back-off)."""
LEASE_KIND = "prices"
"""The work lease a feed is fetched under, one per feed (item ``direction:series``)."""
DEFAULT_LEASE_S = 30.0
"""How long a worker's hold on a feed lasts unrenewed: a dead worker's feeds wait this long at most."""
_SAVE_TIMEOUT_S = 10.0


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
        self,
        store: Store,
        client: httpx.AsyncClient,
        source: PriceSource,
        clock: FeedClock,
        worker: str | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.source = source
        self.clock = clock
        self.worker = worker
        self.quotas = QuotaGuard(store, VENDOR, QUOTA_RULES, now=clock.now)
        self.failures = 0
        self.fetches = 0
        """Requests made (successful or not), for people and tests."""
        self.state = FeedState(
            source.series, source.direction.value, source.source, source.zone.name, source.zone.tz
        )
        """What the feed last did, as kept in the store after every look."""

    @property
    def key(self) -> str:
        """Return the feed's key: ``direction:series``."""
        return feed_key(self.source.series, self.source.direction.value)

    async def run(self) -> None:
        """Fetch due days and sleep until the next is due, until cancelled."""
        await self._carry_on()
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
                self._failed(str(exc))
                log.warning("price feed %s: %s; next look in %d s", self.source.series, exc, wait_s)
            except Exception as exc:  # a fault of ours must not end the feed or the hub; logged in full
                self.failures += 1
                wait_s = MAX_WAIT_S
                self._failed(f"unexpected failure ({type(exc).__name__}); see the hub's log")
                log.exception("price feed %s: unexpected failure; next look in an hour", self.source.series)
            await self._save(next_try_at=self.clock.now() + timedelta(seconds=wait_s))
            await self.clock.sleep(wait_s)

    async def step_down(self) -> None:
        """Say in the store that no worker fetches the feed now (this one stops cleanly)."""
        await self._save(holder=None)

    async def _carry_on(self) -> None:
        """Take up the state another worker (or an earlier run) left, as this feed's fetcher."""
        try:
            with anyio.fail_after(_SAVE_TIMEOUT_S):
                stored = await run_ingest(
                    load_state, self.store, self.source.series, self.source.direction.value
                )
        except Exception as exc:  # the state is for people; fetching goes on without it
            log.warning("price feed %s: cannot read its state (%s)", self.source.series, exc)
            stored = None
        newer = stored is not None and stored.updated_at is not None and (
            self.state.updated_at is None or stored.updated_at > self.state.updated_at
        )
        if stored is not None and newer:
            self.state = dataclasses.replace(
                stored, source=self.state.source, zone=self.state.zone, tz=self.state.tz
            )
            self.failures = stored.failures

    def _failed(self, error: str, token: str | None = None) -> None:
        self.state = dataclasses.replace(
            self.state, last_error=one_line(error, [token]), last_error_at=self.clock.now(), note=None
        )

    async def _save(self, *, next_try_at: datetime | None = None, holder: str | None = "") -> None:
        """Write the feed's state to the store; a failure is logged, never raised."""
        now = self.clock.now()
        self.state = dataclasses.replace(
            self.state,
            holder=self.worker if holder == "" else holder,
            failures=self.failures,
            next_try_at=next_try_at or self.state.next_try_at,
            updated_at=now,
        )
        try:
            with anyio.fail_after(_SAVE_TIMEOUT_S):
                await run_ingest(save_state, self.store, self.state)
        except Exception as exc:  # the state is for people; fetching goes on without it
            log.warning("price feed %s: cannot store its state (%s)", self.source.series, exc)

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
        self.state = dataclasses.replace(
            self.state, fetches=self.state.fetches + 1, last_attempt_at=self.clock.now()
        )
        token: str | None = None
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
            self.state = dataclasses.replace(self.state, note=f"{span} not published yet")
            log.info(
                "price feed %s: %s not published yet; next try in %d s",
                self.source.series,
                span,
                self.source.retry_s,
            )
            return float(self.source.retry_s)
        except QuotaExceeded as exc:
            note = one_line(f"waiting for the quota: {exc}", [token])
            self.state = dataclasses.replace(self.state, note=note)
            log.warning("price feed %s: %s", self.source.series, exc)
            return max(1.0, exc.retry_after_s or 60.0)
        except MeterhubError as exc:
            self.failures += 1
            wait_s = self._backoff_s()
            self._failed(str(exc), token)
            log.warning("price feed %s: %s; next try in %d s", self.source.series, exc, wait_s)
            return wait_s
        self.failures = 0
        self._succeeded(span, result)
        log.info(
            "price feed %s: %s: %d slots, %d stored, %d unchanged",
            self.source.series,
            span,
            result.read,
            result.stored,
            result.unchanged,
        )
        return None

    def _succeeded(self, span: str, result: StoredPrices) -> None:
        stored = StoredSpan(
            span, result.read, result.stored, result.unchanged, result.first_start, result.last_end
        )
        self.state = dataclasses.replace(
            self.state, last_success_at=self.clock.now(), last_stored=stored, note=None
        )

    def _complete(self, day: date) -> bool:
        """Tell whether every minute of ``day`` (local in the zone) has a stored price."""
        start, end = day_bounds(day, self.source.zone.tz)
        covered = timedelta(0)
        for point in self.store.prices(start, end, self.source.direction.value, self.source.series):
            covered += min(point.end, end) - max(point.start, start)
        return covered >= end - start


async def run_price_feeds(
    store: Store,
    client: httpx.AsyncClient,
    sources: Sequence[PriceSource],
    clock: FeedClock,
    *,
    worker: str | None = None,
    lease_s: float = DEFAULT_LEASE_S,
) -> None:
    """Run one :class:`PriceFeed` per source, each under its lease, until cancelled.

    Return at once without sources. ``worker`` names this process in the leases and the feeds'
    states (default: ``hostname-pid``); of the workers on one database, one fetches each feed.
    """
    if not sources:
        return
    from meterhub.poller.work import default_worker_id

    worker = worker or default_worker_id()
    feeds = [PriceFeed(store, client, source, clock, worker) for source in sources]
    try:
        await run_ingest(forget_other_feeds, store, [feed.key for feed in feeds])
    except Exception as exc:  # only the states of feeds no longer declared stay shown
        log.warning("cannot tidy the stored price feed states (%s)", exc)
    leases = [HeldLease(store, LEASE_KIND, feed.key, worker, lease_s) for feed in feeds]
    with watching(store, feeds, leases):
        async with anyio.create_task_group() as task_group:
            for feed, lease in zip(feeds, leases, strict=True):
                task_group.start_soon(_fetch_while_held, feed, lease)


async def _fetch_while_held(feed: PriceFeed, lease: HeldLease) -> None:
    """Run ``feed`` whenever this worker holds its lease; say so in the store when it stops."""

    async def work() -> None:
        try:
            await feed.run()
        finally:
            if lease.held:  # stopping, not losing the lease to another worker
                with anyio.CancelScope(shield=True):
                    await feed.step_down()

    await lease.run_while_held(work)


async def alongside_price_feeds(
    main: Callable[[], Awaitable[None]],
    store: Store,
    client: httpx.AsyncClient,
    sources: Sequence[PriceSource],
    clock: FeedClock,
    *,
    worker: str | None = None,
    lease_s: float = DEFAULT_LEASE_S,
) -> None:
    """Run ``main()`` with the price feeds beside it; the feeds end when it returns or is cancelled."""
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(
            lambda: run_price_feeds(store, client, sources, clock, worker=worker, lease_s=lease_s)
        )
        await main()
        task_group.cancel_scope.cancel()
