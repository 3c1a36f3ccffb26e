"""Raw calls to an IAMMETER meter's local API: ``GET /monitorjson`` with HTTP Basic auth.

The meter answers its latest measurement as JSON in one of several layouts (see
:func:`meterhub.vendors.iammeter.mapping.map_monitorjson`). Every failure becomes a typed
meterhub error raised ``from`` its cause: timeouts, refused or dropped connections, HTTP 5xx and
empty, truncated or non-JSON bodies are :class:`VendorUnavailable`; HTTP 401/403 (a wrong user or
password) is :class:`VendorAuthError`; HTTP 429 is :class:`QuotaExceeded`. Messages name the
device's host, never the password.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from meterhub.vendors.http import device_json, send
from meterhub.vendors.iammeter import mapping

__all__ = ["DEFAULT_DEVICE_PASSWORD", "DEFAULT_DEVICE_USER", "MONITORJSON_PATH", "DeviceClient"]

DEFAULT_DEVICE_USER = "admin"
"""The meters' factory user name for the local API."""
DEFAULT_DEVICE_PASSWORD = "admin"  # noqa: S105 - the documented factory default, not a secret
"""The meters' factory password for the local API (used when a meter names no password)."""
MONITORJSON_PATH = "/monitorjson"


class DeviceClient:
    """One meter's local ``/monitorjson``, returning the decoded answer."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._host = urlsplit(self._base_url).hostname or self._base_url

    def __repr__(self) -> str:
        return f"DeviceClient(base_url={self._base_url!r})"

    @property
    def host(self) -> str:
        """Return the device's host name."""
        return self._host

    async def monitorjson(self, user: str, password: str) -> Any:
        """GET ``/monitorjson`` as ``user``; return the decoded JSON answer."""
        what = f"IAMMETER device {self._host}"
        response = await send(
            self._http,
            "GET",
            f"{self._base_url}{MONITORJSON_PATH}",
            what=what,
            address=self._base_url,
            auth=httpx.BasicAuth(user, password),
        )
        return device_json(
            response,
            what,
            mapping.decode,
            refused_login=f"the user {user!r} or its password",
            login_hint="; the factory login is admin/admin",
            refused="; is it an IAMMETER meter?",
        )
