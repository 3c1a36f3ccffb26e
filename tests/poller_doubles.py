"""A test double of a vendor for the poller tests: a scripted device behind a tiny connector.

Poller tests drive the real vendor simulators over loopback; this double is only for what no
simulator can produce: an unexpected exception raised inside a connector (a bug of ours), and
thousands of meters on one loop, where what is counted is the poller's own tasks, not HTTP.
meterhub's own code is never patched. The device answers each ``latest`` with one reading at the
current clock time, or raises the error its script says; ``history`` yields one reading per
``history_step_s``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from meterhub.errors import InputError
from meterhub.model import Meter, Reading
from meterhub.vendors.base import ConnectorContext, Discovered, Fetched, QuotaRule

VENDOR = "double"


@dataclass
class Device:
    """What one simulated meter does: its script of failures and the calls it received."""

    errors: list[Exception | None] = field(default_factory=list)
    """Consumed one per ``latest`` call; ``None`` (or an empty script) answers normally."""
    calls: list[datetime] = field(default_factory=list)
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
            ts = now.replace(microsecond=0)
            return Fetched(readings=[reading_at(self.meter.id, ts)])

        async def history(self, start: datetime, end: datetime) -> AsyncIterator[Fetched]:
            device = self._device
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
