"""Prometheus metrics of the hub: request latency, polls, errors, quota use and ingest rate.

One registry per process, served by the API at ``/metrics``. The poller and the ingest pipeline
call the ``record_*`` functions; this module knows nothing of them. Label values name routes,
vendors and quotas, never meter ids or anything secret, so the label sets stay small.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CONTENT_TYPE",
    "REGISTRY",
    "RequestMetricsMiddleware",
    "exposition",
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


def exposition() -> bytes:
    """Return every metric in the Prometheus text format."""
    return generate_latest(REGISTRY)


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
