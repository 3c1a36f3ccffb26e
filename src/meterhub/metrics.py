"""Prometheus metrics of the hub: request latency, polls, errors, quota use, ingest rate, and meters.

One registry per process, served by the API at ``/metrics``. The poller and the ingest pipeline
call the ``record_*`` functions; this module knows nothing of them. Their label values name
routes, vendors and quotas, never meter ids or anything secret, so the label sets stay small.

The meters' own values (power, voltage and current per phase, registers, reading age, online)
come from :class:`MeterCollector`, which reads the store when scraped (through
:class:`meterhub.meternow.MeterNowCache`: three queries, and none while the store is unchanged),
so every replica of the API answers the same. Their labels are ``meter``, ``vendor`` and, for
per-phase values, ``phase`` (``total``, ``L1``..``L3``); the places a meter belongs to are told
once by ``meterhub_meter_place_info``, to join on ``meter``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meterhub.meternow import MeterNow, MeterNowCache, phase_label
from meterhub.model import utc_now

__all__ = [
    "CONTENT_TYPE",
    "METER_METRICS",
    "REGISTRY",
    "MeterCollector",
    "RequestMetricsMiddleware",
    "exposition",
    "meter_registry",
    "record_error",
    "record_ingest",
    "record_poll",
    "record_quota",
    "record_request",
]

REGISTRY = CollectorRegistry(auto_describe=True)
CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_SECONDS = Histogram(
    "meterhub_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status.",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS_S,
    registry=REGISTRY,
)
POLLS = Counter(
    "meterhub_polls",
    "Meter polls by vendor and outcome (ok or failed).",
    ["vendor", "outcome"],
    registry=REGISTRY,
)
POLL_SECONDS = Histogram(
    "meterhub_poll_duration_seconds",
    "Time one poll of a meter took, by vendor.",
    ["vendor"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
ERRORS = Counter(
    "meterhub_errors",
    "Errors by where they happened (api, poll, ingest, mqtt) and their kind.",
    ["source", "kind"],
    registry=REGISTRY,
)
QUOTA_USED = Gauge(
    "meterhub_quota_used",
    "Calls counted against a vendor quota in its current window.",
    ["vendor", "quota"],
    registry=REGISTRY,
)
QUOTA_LIMIT = Gauge(
    "meterhub_quota_limit",
    "The calls a vendor quota allows in its window.",
    ["vendor", "quota"],
    registry=REGISTRY,
)
INGESTED = Counter(
    "meterhub_ingested_rows",
    "Rows newly stored by ingest, by source (poll, mqtt, import).",
    ["source"],
    registry=REGISTRY,
)
DUPLICATES = Counter(
    "meterhub_ingest_duplicate_rows",
    "Rows ingest received that were stored already, by source.",
    ["source"],
    registry=REGISTRY,
)


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered HTTP request."""
    REQUEST_SECONDS.labels(method, route, str(status)).observe(seconds)
    if status >= 500:
        ERRORS.labels("api", str(status)).inc()


def record_poll(vendor: str, ok: bool, seconds: float) -> None:
    """Count one poll of a meter and how long it took."""
    POLLS.labels(vendor, "ok" if ok else "failed").inc()
    POLL_SECONDS.labels(vendor).observe(seconds)


def record_error(source: str, kind: str) -> None:
    """Count one error, such as ``record_error("poll", "VendorUnavailable")``."""
    ERRORS.labels(source, kind).inc()


def record_quota(vendor: str, quota: str, used: int, limit: int) -> None:
    """Publish how much of a vendor quota is used."""
    QUOTA_USED.labels(vendor, quota).set(used)
    QUOTA_LIMIT.labels(vendor, quota).set(limit)


def record_ingest(source: str, stored: int, duplicates: int = 0) -> None:
    """Count rows ingest stored (and those it already had); Prometheus derives the rate."""
    INGESTED.labels(source).inc(stored)
    DUPLICATES.labels(source).inc(duplicates)


_PHASE_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("power_w", "meterhub_meter_power_watts", "Newest active power (W; > 0 import, < 0 export)."),
    ("voltage_v", "meterhub_meter_voltage_volts", "Newest voltage (V)."),
    ("current_a", "meterhub_meter_current_amperes", "Newest current (A)."),
    ("frequency_hz", "meterhub_meter_frequency_hertz", "Newest grid frequency (Hz)."),
    ("power_factor", "meterhub_meter_power_factor", "Newest power factor (-1..1)."),
)
"""Reading field, metric name and help of the per-phase gauges."""

_REGISTER_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("energy_import_kwh", "meterhub_meter_energy_import_kwh", "Imported active energy register (kWh)."),
    ("energy_export_kwh", "meterhub_meter_energy_export_kwh", "Exported active energy register (kWh)."),
    (
        "reactive_import_kvarh",
        "meterhub_meter_reactive_import_kvarh",
        "Imported reactive energy register (kvarh).",
    ),
    (
        "reactive_export_kvarh",
        "meterhub_meter_reactive_export_kvarh",
        "Exported reactive energy register (kvarh).",
    ),
)
"""Reading field, metric name (exposed with ``_total``) and help of the register counters."""

METER_METRICS: tuple[str, ...] = (
    *(name for _, name, _ in _PHASE_GAUGES),
    *(f"{name}_total" for _, name, _ in _REGISTER_COUNTERS),
    "meterhub_meter_reading_age_seconds",
    "meterhub_meter_reading_timestamp_seconds",
    "meterhub_meter_online",
    "meterhub_meter_consecutive_failures",
    "meterhub_meter_place_info",
    "meterhub_meters",
)
"""Every sample name :class:`MeterCollector` may expose."""


def _everything(_: str) -> bool:
    return True


class MeterCollector(Collector):
    """Per-meter gauges and counters, read from the store at scrape time.

    A meter with thousands of siblings costs a few samples each: the store is queried only when
    its change count moved since the last scrape (``cache`` is shared by every scrape), and the
    samples are built in one pass. ``can_see_meter`` and ``can_see_place`` leave out what the
    caller may not see.
    """

    def __init__(
        self,
        cache: MeterNowCache,
        *,
        can_see_meter: Callable[[str], bool] = _everything,
        can_see_place: Callable[[str], bool] = _everything,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._cache = cache
        self._can_see_meter = can_see_meter
        self._can_see_place = can_see_place
        self._clock = clock

    def describe(self) -> list[Metric]:
        """Describe nothing ahead: registering never reads the store."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield every meter metric the caller may see, as the store holds it now."""
        now = self._clock()
        meters = [item for item in self._cache.meters_now(now) if self._can_see_meter(item.meter.id)]
        yield from _meter_families(meters, self._can_see_place)


def _meter_families(meters: list[MeterNow], can_see_place: Callable[[str], bool]) -> Iterator[Metric]:
    phase_labels = ["meter", "vendor", "phase"]
    meter_labels = ["meter", "vendor"]
    gauges = {
        field: GaugeMetricFamily(name, text, labels=phase_labels) for field, name, text in _PHASE_GAUGES
    }
    counters = {
        field: CounterMetricFamily(name, text, labels=phase_labels)
        for field, name, text in _REGISTER_COUNTERS
    }
    age = GaugeMetricFamily(
        "meterhub_meter_reading_age_seconds",
        "Seconds since the meter's newest reading (absent until its first one).",
        labels=meter_labels,
    )
    stamp = GaugeMetricFamily(
        "meterhub_meter_reading_timestamp_seconds",
        "Unix time of the meter's newest reading.",
        labels=meter_labels,
    )
    online = GaugeMetricFamily(
        "meterhub_meter_online",
        "1 when the meter's last poll succeeded (or, unpolled, its data is fresh), else 0.",
        labels=meter_labels,
    )
    failures = GaugeMetricFamily(
        "meterhub_meter_consecutive_failures",
        "Polls of the meter that failed in a row (0 for meters that are not polled).",
        labels=meter_labels,
    )
    places = GaugeMetricFamily(
        "meterhub_meter_place_info",
        "1 for every place a meter belongs to, with its role there; join on meter.",
        labels=["meter", "place", "role"],
    )
    for item in meters:
        meter_id, vendor = item.meter.id, item.meter.vendor
        for phase, reading in item.phases.items():
            labels = [meter_id, vendor, phase_label(phase)]
            for field, family in gauges.items():
                value = getattr(reading, field)
                if value is not None:
                    family.add_metric(labels, float(value))
            for field, counter in counters.items():
                value = getattr(reading, field)
                if value is not None:
                    counter.add_metric(labels, float(value))
        if item.newest_at is not None and item.age_s is not None:
            age.add_metric([meter_id, vendor], item.age_s)
            stamp.add_metric([meter_id, vendor], item.newest_at.timestamp())
        online.add_metric([meter_id, vendor], 1.0 if item.online else 0.0)
        failures.add_metric(
            [meter_id, vendor], float(item.health.consecutive_failures if item.health else 0)
        )
        for place_id, role in item.places:
            if can_see_place(place_id):
                    places.add_metric([meter_id, place_id, role], 1.0)
    count = GaugeMetricFamily("meterhub_meters", "Meters the hub knows (that the caller may see).")
    count.add_metric([], float(len(meters)))
    yield from gauges.values()
    yield from counters.values()
    yield from (age, stamp, online, failures, places, count)


def meter_registry(
    cache: MeterNowCache,
    can_see_meter: Callable[[str], bool] = _everything,
    can_see_place: Callable[[str], bool] = _everything,
) -> CollectorRegistry:
    """Return a registry of the meter metrics one caller may see, read through ``cache``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MeterCollector(cache, can_see_meter=can_see_meter, can_see_place=can_see_place))
    return registry


def exposition(meters: CollectorRegistry | None = None) -> bytes:
    """Return every metric in the Prometheus text format, with the meter metrics of ``meters``."""
    text = generate_latest(REGISTRY)
    if meters is None:
        return text
    return text + generate_latest(meters)


class RequestMetricsMiddleware:
    """Time every HTTP request and count it by its route template (not its raw path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on and record how it was answered."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            record_request(scope["method"], template, status, time.perf_counter() - started)
