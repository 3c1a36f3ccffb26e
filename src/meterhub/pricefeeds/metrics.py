"""Prometheus metrics of the price feeds, on the hub's registry (:data:`meterhub.metrics.REGISTRY`).

``meterhub_price_feed_last_success_timestamp_seconds{series,direction,zone}``  the last fetch that stored
``meterhub_price_feed_newest_slot_end_timestamp_seconds{series,direction}``     the newest stored slot's end
``meterhub_price_feed_tomorrow_stored{series,direction}``   1 when the stored slots reach the end of tomorrow
``meterhub_price_feed_failures{series,direction}``          failed fetches in a row
``meterhub_price_feed_next_try_timestamp_seconds{series,direction}``  when the feed looks again
``meterhub_price_feed_fetches{series,direction}``           requests made, by whichever worker held it
``meterhub_price_feed_held{series,direction,worker}``       1 when this process fetches it, else 0

Every process that runs the feeds (``meterhub serve`` with the ``all`` or ``poller`` role) answers
them, read from the store at each scrape: the feeds' states are the ones the fetching worker keeps
there (:mod:`meterhub.pricefeeds.state`), so a worker standing by answers the same values as the
one fetching; only ``held`` tells them apart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from meterhub.metrics import REGISTRY
from meterhub.store.base import Store

if TYPE_CHECKING:
    from .lease import HeldLease
    from .schedule import PriceFeed

__all__ = ["PriceFeedCollector", "install", "watching"]

log = logging.getLogger(__name__)

_FEED = ["series", "direction"]


@dataclass(frozen=True, slots=True)
class _Watched:
    store: Store
    feeds: Sequence[PriceFeed]
    leases: Sequence[HeldLease]


_WATCHED: list[_Watched] = []


@contextmanager
def watching(store: Store, feeds: Sequence[PriceFeed], leases: Sequence[HeldLease]) -> Iterator[None]:
    """Expose the feeds run on ``store`` in the metrics while the block runs."""
    install()
    watched = _Watched(store, feeds, leases)
    _WATCHED.append(watched)
    try:
        yield
    finally:
        _WATCHED.remove(watched)


def _families() -> dict[str, GaugeMetricFamily]:
    return {
        "success": GaugeMetricFamily(
            "meterhub_price_feed_last_success_timestamp_seconds",
            "Unix time of the feed's last fetch that stored prices",
            labels=[*_FEED, "zone"],
        ),
        "newest": GaugeMetricFamily(
            "meterhub_price_feed_newest_slot_end_timestamp_seconds",
            "Unix time the newest stored slot of the feed's series ends",
            labels=_FEED,
        ),
        "tomorrow": GaugeMetricFamily(
            "meterhub_price_feed_tomorrow_stored",
            "1 when the stored slots reach the end of tomorrow in the feed's zone, else 0",
            labels=_FEED,
        ),
        "failures": GaugeMetricFamily(
            "meterhub_price_feed_failures", "Failed fetches of the feed in a row", labels=_FEED
        ),
        "next": GaugeMetricFamily(
            "meterhub_price_feed_next_try_timestamp_seconds",
            "Unix time the feed looks again",
            labels=_FEED,
        ),
        "fetches": GaugeMetricFamily(
            "meterhub_price_feed_fetches", "Requests the feed made, by whichever worker held it", labels=_FEED
        ),
        "held": GaugeMetricFamily(
            "meterhub_price_feed_held",
            "1 when this worker fetches the feed, 0 while it stands by",
            labels=[*_FEED, "worker"],
        ),
    }


class PriceFeedCollector(Collector):
    """Collects the metrics of the price feeds this process runs, from their store."""

    def describe(self) -> Iterator[Metric]:
        """Yield the metric families without samples (so registering reads no store)."""
        yield from _families().values()

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families, read from the store of each running set of feeds."""
        from meterhub.status import price_feed_status

        families = _families()
        seen: set[tuple[str, str]] = set()
        held: set[tuple[str, str, str]] = set()
        for watched in list(_WATCHED):
            try:
                found = price_feed_status(watched.store)
            except Exception as exc:  # a scrape must answer even with the database away
                log.warning("cannot read the price feeds' state for the metrics (%s)", exc)
                found = []
            for item in found:
                feed = (item.series, item.direction)
                if feed in seen:
                    continue
                seen.add(feed)
                if item.last_success_at is not None:
                    families["success"].add_metric([*feed, item.zone], item.last_success_at.timestamp())
                if item.newest_slot_end is not None:
                    families["newest"].add_metric(list(feed), item.newest_slot_end.timestamp())
                families["tomorrow"].add_metric(list(feed), 1.0 if item.tomorrow_stored else 0.0)
                families["failures"].add_metric(list(feed), item.consecutive_failures)
                if item.next_try_at is not None:
                    families["next"].add_metric(list(feed), item.next_try_at.timestamp())
                families["fetches"].add_metric(list(feed), item.fetches)
            for feed_run, lease in zip(watched.feeds, watched.leases, strict=True):
                labels = (feed_run.source.series, feed_run.source.direction.value, lease.worker)
                if labels not in held:
                    held.add(labels)
                    families["held"].add_metric(list(labels), 1.0 if lease.held else 0.0)
        yield from families.values()


_INSTALLED: list[PriceFeedCollector] = []


def install() -> None:
    """Register the collector on the hub's registry (once per process)."""
    if not _INSTALLED:
        collector = PriceFeedCollector()
        REGISTRY.register(collector)
        _INSTALLED.append(collector)
