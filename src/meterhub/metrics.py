"""Prometheus metrics of the hub: request latency, polls, errors, quota use, ingest rate, and meters.

One registry per process, served by the API at ``/metrics``. The poller and the ingest pipeline
call the ``record_*`` functions; this module knows nothing of them. Their label values name
routes, vendors and quotas, never meter ids or anything secret, so the label sets stay small.

The meters' own values (power, voltage and current per phase, registers, reading age, online)
come from :func:`meter_exposition`, which reads the store when scraped (through
:class:`meterhub.meternow.MeterNowCache`: three queries, and none while the store is unchanged),
so every replica of the API answers the same. Their labels are ``meter``, ``vendor`` and, for
per-phase values, ``phase`` (``total``, ``L1``..``L3``); the places a meter belongs to are told
once by ``meterhub_meter_place_info``, to join on ``meter``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meterhub.meternow import MeterNow, MeterNowCache, phase_label
from meterhub.model import utc_now

__all__ = [
    "CONTENT_TYPE",
    "METER_METRICS",
    "REGISTRY",
    "RequestMetricsMiddleware",
    "exposition",
    "meter_exposition",
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
"""Every sample name :func:`meter_exposition` may expose."""


def _everything(_: str) -> bool:
    return True


def meter_exposition(
    cache: MeterNowCache,
    can_see_meter: Callable[[str], bool] = _everything,
    can_see_place: Callable[[str], bool] = _everything,
    now: datetime | None = None,
) -> bytes:
    """Return the meter metrics one caller may see, in the Prometheus text format.

    Read through ``cache`` (the store is queried only when it changed) and written line by line
    with each meter's labels escaped once: thousands of meters cost a few samples each, without
    a metric object per sample.
    """
    when = now or utc_now()
    meters = [item for item in cache.meters_now(when) if can_see_meter(item.meter.id)]
    return _render(meters, can_see_place).encode()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _render(meters: list[MeterNow], can_see_place: Callable[[str], bool]) -> str:
    lines: dict[str, list[str]] = {}
    families: list[tuple[str, str, str]] = [
        *((name, "gauge", text) for _, name, text in _PHASE_GAUGES),
        *((f"{name}_total", "counter", text) for _, name, text in _REGISTER_COUNTERS),
        *_METER_FAMILIES,
    ]
    for name, _, _ in families:
        lines[name] = []
    for item in meters:
        meter = f'meter="{_escape(item.meter.id)}",vendor="{_escape(item.meter.vendor)}"'
        for phase, reading in item.phases.items():
            labels = f'{meter},phase="{phase_label(phase)}"'
            for field, name, _ in _PHASE_GAUGES:
                value = getattr(reading, field)
                if value is not None:
                    lines[name].append(f"{name}{{{labels}}} {_number(value)}")
            for field, name, _ in _REGISTER_COUNTERS:
                value = getattr(reading, field)
                if value is not None:
                    lines[f"{name}_total"].append(f"{name}_total{{{labels}}} {_number(value)}")
        if item.newest_at is not None and item.age_s is not None:
            lines["meterhub_meter_reading_age_seconds"].append(
                f"meterhub_meter_reading_age_seconds{{{meter}}} {_number(item.age_s)}"
            )
            lines["meterhub_meter_reading_timestamp_seconds"].append(
                f"meterhub_meter_reading_timestamp_seconds{{{meter}}} {_number(item.newest_at.timestamp())}"
            )
        lines["meterhub_meter_online"].append(
            f"meterhub_meter_online{{{meter}}} {1.0 if item.online else 0.0}"
        )
        failures = float(item.health.consecutive_failures if item.health else 0)
        lines["meterhub_meter_consecutive_failures"].append(
            f"meterhub_meter_consecutive_failures{{{meter}}} {failures}"
        )
        for place_id, role in item.places:
            if can_see_place(place_id):
                place = f'place="{_escape(place_id)}",role="{_escape(role)}"'
                lines["meterhub_meter_place_info"].append(
                    f'meterhub_meter_place_info{{meter="{_escape(item.meter.id)}",{place}}} 1.0'
                )
    lines["meterhub_meters"].append(f"meterhub_meters {float(len(meters))}")
    out: list[str] = []
    for name, kind, text in families:
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(lines[name])
    out.append("")
    return "\n".join(out)


_METER_FAMILIES: tuple[tuple[str, str, str], ...] = (
    (
        "meterhub_meter_reading_age_seconds",
        "gauge",
        "Seconds since the meter's newest reading (absent until its first one).",
    ),
    ("meterhub_meter_reading_timestamp_seconds", "gauge", "Unix time of the meter's newest reading."),
    (
        "meterhub_meter_online",
        "gauge",
        "1 when the meter's last poll succeeded (or, unpolled, its data is fresh), else 0.",
    ),
    (
        "meterhub_meter_consecutive_failures",
        "gauge",
        "Polls of the meter that failed in a row (0 for meters that are not polled).",
    ),
    (
        "meterhub_meter_place_info",
        "gauge",
        "1 for every place a meter belongs to, with its role there; join on meter.",
    ),
    ("meterhub_meters", "gauge", "Meters the hub knows (that the caller may see)."),
)
"""Name, type and help of the meter families that are not per phase."""


def exposition(meters: bytes = b"") -> bytes:
    """Return every metric of the process in the Prometheus text format, then ``meters``."""
    return generate_latest(REGISTRY) + meters


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
