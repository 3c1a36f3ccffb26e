"""An IAMMETER meter read on the local network (``source=device``): its ``/monitorjson``.

Meter options (the password only as a reference such as ``env:IAMMETER_DEVICE_PASSWORD``):

    source     ``device`` (``cloud``, the default, reads the IAMMETER cloud instead)
    base_url   the meter's address, such as http://192.168.1.50
    user       the local API's user name; default ``admin`` (``username`` is read too)
    password   a reference to its password; without one the factory password ``admin`` is used

The meter keeps no history, so ``history`` yields nothing; its answer carries no time, so
readings carry the time the answer arrived. The local API documents no rate limit:
:data:`DEVICE_MIN_INTERVAL_S` keeps polls at the pace the meter measures at.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from meterhub.config import is_secret_reference, resolve_secret
from meterhub.errors import ConfigError
from meterhub.ids import id_problem
from meterhub.model import Meter
from meterhub.vendors.base import ConnectorContext, Discovered, Fetched, meter_option
from meterhub.vendors.iammeter import mapping
from meterhub.vendors.iammeter.device import DEFAULT_DEVICE_PASSWORD, DEFAULT_DEVICE_USER, DeviceClient

__all__ = ["DEVICE_MIN_INTERVAL_S", "IammeterDevice", "device_login"]

DEVICE_MIN_INTERVAL_S = 2
"""Shortest polling interval of a meter on the local network. No limit is documented; one request
every 2 s gives near-live values while leaving the meter's small web server, which also uploads
to the cloud, room for other readers."""


class IammeterDevice:
    """One IAMMETER meter's local API: latest readings and discovery of the meter itself."""

    def __init__(self, meter: Meter, context: ConnectorContext) -> None:
        self.meter = meter
        self._context = context
        base_url = meter_option(meter, "base_url", "").strip()
        if not base_url:
            raise ConfigError(
                f"meter {meter.id!r}: source=device needs base_url, the meter's address (http://HOST)"
            )
        self._client = DeviceClient(context.client, base_url)

    def __repr__(self) -> str:
        return f"IammeterDevice(meter={self.meter.id!r})"

    async def latest(self) -> Fetched:
        """Return what the meter measures now, stamped with the time of its answer."""
        payload = await self._monitorjson()
        return Fetched(readings=mapping.map_monitorjson(payload, self.meter.id, self._context.now()))

    async def history(self, start: datetime, end: datetime) -> AsyncIterator[Fetched]:
        """Yield nothing: the meter keeps no history on the device."""
        return
        yield  # pragma: no cover - makes this an async generator

    async def discover(self) -> list[Discovered]:
        """Return the meter itself (named by the SN its answer carries), with the options to add it."""
        payload = await self._monitorjson()
        sn = mapping.monitorjson_sn(payload)
        mapping.map_monitorjson(payload, self.meter.id, self._context.now())  # refuse what cannot be read
        label = sn or self._client.host
        suggested = f"iammeter-{label.lower()}"
        if id_problem(suggested) is not None:
            suggested = "iammeter-device"
        return [
            Discovered(
                suggested_id=suggested,
                vendor="iammeter",
                phases=mapping.monitorjson_phases(payload),
                name=f"IAMMETER {label}",
                options=dict(self.meter.options),
                tz=self.meter.tz,
            )
        ]

    async def _monitorjson(self) -> object:
        return await self._client.monitorjson(*device_login(self.meter))


def device_login(meter: Meter) -> tuple[str, str]:
    """Return the user and password of a meter's local API (the factory admin/admin by default)."""
    user = meter.options.get("user") or meter.options.get("username") or DEFAULT_DEVICE_USER
    if is_secret_reference(user):
        user = resolve_secret(user)
    password = meter.options.get("password")
    return user, resolve_secret(password) if password else DEFAULT_DEVICE_PASSWORD

