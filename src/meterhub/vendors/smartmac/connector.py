"""The smart-MAC connector: one device's readings, extras and external-load relay.

Meter options (the PIN only as a reference such as ``env:SMARTMAC_PIN``, resolved at use):

    base_url    the device's address; default http://192.168.4.1 (the seed's sample request)
    devid       the device ID, plain or a reference
    devpass     a reference to the device's PIN
    rate_class  ``standard`` (one request a minute, the default) or ``extended`` (every 6 s)

Every request, relay switching included, first takes its slot in the persisted quota ledger
under the device's rate class, so meterhub never asks sooner than the device answers. The
device keeps no history. Readings carry the device's own time unless its clock is more than
:data:`MAX_CLOCK_SKEW_S` away from ours, in which case they carry the time of the answer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import ClassVar

from meterhub.config import is_secret_reference, resolve_secret
from meterhub.errors import ConfigError, PayloadError
from meterhub.model import Meter
from meterhub.vendors.base import (
    ConnectorContext,
    Discovered,
    Fetched,
    QuotaRule,
    meter_option,
    missing_options_text,
    rule_scope_key,
)
from meterhub.vendors.smartmac import mapping
from meterhub.vendors.smartmac.client import DEFAULT_BASE_URL, SmartmacClient

__all__ = ["MAX_CLOCK_SKEW_S", "QUOTAS", "RATE_INTERVALS_S", "RATE_RULES", "SmartmacConnector"]

log = logging.getLogger(__name__)

QUOTAS: tuple[QuotaRule, ...] = (
    QuotaRule("getdata_standard", 1, 60, "meter"),
    QuotaRule("getdata_extended", 1, 6, "meter"),
)
"""The seed's rate classes: standard devices once per minute, extended ones every 6 s."""
RATE_RULES: dict[str, str] = {"standard": "getdata_standard", "extended": "getdata_extended"}
"""The quota rule of each ``rate_class`` option value."""
RATE_INTERVALS_S: dict[str, int] = {"standard": 60, "extended": 6}
"""The shortest polling interval of each ``rate_class`` option value."""
MAX_CLOCK_SKEW_S = 3600.0
"""A device clock further off than this is not trusted for the readings' time."""


class SmartmacConnector:
    """One smart-MAC device on the local network."""

    vendor: ClassVar[str] = "smartmac"
    quotas: ClassVar[tuple[QuotaRule, ...]] = QUOTAS
    min_interval_s: ClassVar[int] = 60
    """For the standard rate class; an extended device's own ``min_poll_interval_s`` is 6 s."""
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    history_chunk_s: ClassVar[int] = 86_400
    history_quota: ClassVar[str | None] = None
    """The device keeps no history, so a backfill asks it nothing."""
    keeps_history: ClassVar[bool] = False
    """A backfill of this device is refused at once, saying why (``meterhub.backfills``)."""

    def __init__(self, meter: Meter, context: ConnectorContext) -> None:
        self.meter = meter
        self._context = context
        self._client = SmartmacClient(context.client, meter_option(meter, "base_url", DEFAULT_BASE_URL))
        rate_class = _rate_class(meter)
        self._rule = RATE_RULES[rate_class]
        self.min_poll_interval_s = RATE_INTERVALS_S[rate_class]
        """The shortest polling interval of this device's rate class."""

    def __repr__(self) -> str:
        return f"SmartmacConnector(meter={self.meter.id!r})"

    @classmethod
    def missing_options(cls, options: Mapping[str, str]) -> str | None:
        """Say what a meter lacks: the device id and its PIN."""
        return missing_options_text(cls.vendor, [("devid", "devpass")], options)

    @classmethod
    def quota_scope_keys(cls, meter: Meter) -> dict[str, str]:
        """Return the scope key of the device's rate-class rule: its device ID (the other is left out)."""
        return {RATE_RULES[_rate_class(meter)]: _devid_of(meter)}

    async def latest(self) -> Fetched:
        """Return the device's readings now, with temperature and relay state as extras."""
        snapshot = await self._getdata(None)
        return Fetched(readings=snapshot.readings, extras=snapshot.extras)

    async def history(self, start: datetime, end: datetime) -> AsyncIterator[Fetched]:
        """Yield nothing: smart-MAC devices keep no history."""
        return
        yield  # pragma: no cover - makes this an async generator

    async def discover(self) -> list[Discovered]:
        """Return the device itself, with its phase count and the options to add it."""
        snapshot = await self._getdata(None)
        devid = self._devid()
        return [
            Discovered(
                suggested_id=f"smartmac-{devid}",
                vendor=self.vendor,
                phases=snapshot.phases,
                name=f"smart-MAC {devid}",
                options=dict(self.meter.options),
                tz=self.meter.tz,
            )
        ]

    async def set_relay(self, on: bool) -> bool:
        """Switch the external-load relay and return the state the device reports afterwards."""
        snapshot = await self._switch(on)
        return bool(snapshot.relay_on)

    async def switch_relay(self, on: bool) -> Fetched:
        """Switch the external-load relay; return the whole answer, relay state included.

        The device answers a switch with a full reading, which is worth storing like a poll's.
        """
        snapshot = await self._switch(on)
        return Fetched(readings=snapshot.readings, extras=snapshot.extras)

    async def _switch(self, on: bool) -> mapping.DeviceSnapshot:
        snapshot = await self._getdata(on)
        if snapshot.relay_on is None:
            raise PayloadError(f"meter {self.meter.id!r}: the device did not report its relay state")
        if snapshot.relay_on != on:
            log.warning("smart-MAC meter %s reports its relay %s after switching it %s",
                        self.meter.id, _on_off(snapshot.relay_on), _on_off(on))
        return snapshot

    async def _getdata(self, relay_on: bool | None) -> mapping.DeviceSnapshot:
        """Take the rate slot, ask the device, and map its answer."""
        devid = self._devid()
        keys = self.quota_scope_keys(self.meter)
        await self._context.quotas.acquire(self._rule, rule_scope_key(keys, self.meter, self._rule))
        devpass = resolve_secret(meter_option(self.meter, "devpass"))
        answer = await self._client.getdata(devid, devpass, relay_on=relay_on)
        return mapping.map_getdata(answer, self.meter.id, self._reading_time(answer))

    def _reading_time(self, answer: object) -> datetime:
        """Return the device's time, or ours when the device has none or its clock is off."""
        received_at = self._context.now()
        device_ts = mapping.device_time(answer)
        if device_ts is None:
            return received_at
        skew_s = abs((device_ts - received_at).total_seconds())
        if skew_s > MAX_CLOCK_SKEW_S:
            log.warning("smart-MAC meter %s: device clock is %.0f s off; using the time of the answer",
                        self.meter.id, skew_s)
            return received_at
        return device_ts

    def _devid(self) -> str:
        return _devid_of(self.meter)


def _devid_of(meter: Meter) -> str:
    devid = meter_option(meter, "devid")
    return resolve_secret(devid) if is_secret_reference(devid) else devid


def _rate_class(meter: Meter) -> str:
    """Return the meter's ``rate_class`` option, or raise ConfigError when it is neither class."""
    rate_class = meter_option(meter, "rate_class", "standard")
    if rate_class not in RATE_RULES:
        raise ConfigError(f"meter {meter.id!r}: rate_class {rate_class!r} must be standard or extended")
    return rate_class


def _on_off(on: bool) -> str:
    return "on" if on else "off"
