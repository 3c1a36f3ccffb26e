"""A test double of a vendor for the poller tests: a scripted device behind a tiny connector.

This stands in for a vendor's servers (which cannot be here); meterhub's own code is never
patched. The device answers each ``latest`` with one reading at the current clock time, or
raises the error its script says; ``history`` yields one reading per ``step_s``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from meterhub.errors import InputError, MeterhubError, VendorUnavailable
from meterhub.model import Meter, Reading
from meterhub.vendors.base import ConnectorContext, Discovered, Fetched, QuotaRule

VENDOR = "double"


@dataclass
class Device:
    """What one simulated meter does: its script of failures and the calls it received."""

    errors: list[Exception | None] = field(default_factory=list)
    """Consumed one per ``latest`` call; ``None`` (or an empty script) answers normally."""
    offline_from: datetime | None = None
    offline_until: datetime | None = None
    history_errors: list[Exception | None] = field(default_factory=list)
    """Consumed one per ``history`` call, like ``errors``."""
    calls: list[datetime] = field(default_factory=list)
    history_calls: list[tuple[datetime, datetime]] = field(default_factory=list)
    history_step_s: int = 60


def reading_at(meter_id: str, ts: datetime) -> Reading:
    """Return the deterministic reading the device reports at ``ts``."""
    seconds = ts.timestamp()
    return Reading(meter_id, ts, power_w=1000.0 + seconds % 97, energy_import_kwh=seconds / 3600.0)


def connector_class(devices: dict[str, Device], min_interval: int = 1) -> type[Any]:
    """Return a connector class whose meters are the given devices."""

    class DoubleConnector:
        vendor: ClassVar[str] = VENDOR
        min_interval_s: ClassVar[int] = min_interval
        quotas: ClassVar[tuple[QuotaRule, ...]] = (QuotaRule("latest", 100_000, 3600, "meter"),)
        default_base_url: ClassVar[str] = "http://double.invalid"
        history_chunk_s: ClassVar[int] = 3600

        def __init__(self, meter: Meter, context: ConnectorContext) -> None:
            self.meter = meter
            self._context = context
            self._device = devices[meter.id]

        async def latest(self) -> Fetched:
            now = self._context.now()
            device = self._device
            device.calls.append(now)
            await self._context.quotas.acquire("latest", self.meter.id)
            error = device.errors.pop(0) if device.errors else None
            if error is not None:
                raise error
            if (
                device.offline_from is not None
                and device.offline_until is not None
                and (device.offline_from <= now < device.offline_until)
            ):
                raise VendorUnavailable("the double is offline")
            ts = now.replace(microsecond=0)
            return Fetched(readings=[reading_at(self.meter.id, ts)])

        async def history(self, start: datetime, end: datetime) -> AsyncIterator[Fetched]:
            device = self._device
            device.history_calls.append((start, end))
            error = device.history_errors.pop(0) if device.history_errors else None
            if error is not None:
                raise error
            step = timedelta(seconds=device.history_step_s)
            first_s = -(-int(start.timestamp()) // device.history_step_s) * device.history_step_s
            ts = datetime.fromtimestamp(first_s, start.tzinfo)
            readings = []
            while ts < end:  # the vendor kept everything, also while its API was unreachable
                readings.append(reading_at(self.meter.id, ts))
                ts += step
            yield Fetched(readings=readings)

        async def discover(self) -> list[Discovered]:
            return []

        async def set_relay(self, on: bool) -> bool:
            raise InputError("no relay")

    return DoubleConnector


def resolver(devices: dict[str, Device], min_interval: int = 1) -> Callable[[str], Any]:
    """Return a ``resolve`` function for the Poller that knows only the double vendor."""
    cls = connector_class(devices, min_interval)

    def resolve(vendor: str) -> Any:
        if vendor != VENDOR:
            raise InputError(f"no connector for vendor {vendor!r}")
        return cls

    return resolve


def errors_of(kind: type[MeterhubError], count: int, **kwargs: Any) -> list[Exception | None]:
    """Return a script of ``count`` errors of one kind."""
    return [kind(f"scripted {kind.__name__} {n}", **kwargs) for n in range(count)]
