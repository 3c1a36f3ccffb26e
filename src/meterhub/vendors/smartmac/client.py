"""Raw calls to a smart-MAC meter's local HTTP API (``GET /?page=getdata``).

Every failure becomes a typed meterhub error raised ``from`` its cause: timeouts, refused or
dropped connections, HTTP 5xx and empty, truncated or non-JSON bodies are
:class:`VendorUnavailable`; HTTP 401/403 (wrong ``devid``/``devpass``) is
:class:`VendorAuthError`; HTTP 429 (asked sooner than the device's rate class allows) is
:class:`QuotaExceeded` with the device's ``Retry-After``. The PIN travels in the query string,
as the device requires, so messages name the device's host only, never the URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from meterhub.errors import (
    PayloadError,
)
from meterhub.vendors.http import device_json, send
from meterhub.vendors.smartmac import mapping

__all__ = [
    "DEFAULT_BASE_URL",
    "REQUEST_RELAY_OFF",
    "REQUEST_RELAY_ON",
    "SmartmacClient",
]

DEFAULT_BASE_URL = "http://192.168.4.1"
"""The device's address in the seed's sample request (its own access point)."""

# The seed contradicts itself on the relay (see mapping.REPORTED_RELAY_ON): in a *request*,
# "pout" follows its request section, "0 - turn-on / 1 - turn-off".
REQUEST_RELAY_ON = "0"
"""``&pout=0`` in a request turns the external load on."""
REQUEST_RELAY_OFF = "1"
"""``&pout=1`` in a request turns the external load off."""




class SmartmacClient:
    """One device's ``getdata`` page, returning the decoded answer."""

    def __init__(self, http: httpx.AsyncClient, base_url: str = DEFAULT_BASE_URL) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._host = urlsplit(self._base_url).hostname or self._base_url

    def __repr__(self) -> str:
        return f"SmartmacClient(base_url={self._base_url!r})"

    async def getdata(self, devid: str, devpass: str, *, relay_on: bool | None = None) -> Any:
        """GET ``?page=getdata``; with ``relay_on`` also switch the external-load relay."""
        params = {"page": "getdata", "devid": devid, "devpass": devpass}
        if relay_on is not None:
            params["pout"] = REQUEST_RELAY_ON if relay_on else REQUEST_RELAY_OFF
        what = f"smart-MAC device {self._host}"
        response = await self._send(params, what)
        said = _said(response) if response.status_code >= 400 else ""
        return device_json(
            response, what, mapping.decode, refused_login="the devid/devpass", refused="", said=said
        )

    async def _send(self, params: dict[str, str], what: str) -> httpx.Response:
        url = f"{self._base_url}/"
        return await send(self._http, "GET", url, what=what, address=self._base_url, params=params)


def _said(response: httpx.Response) -> str:
    """Return ``: <the device's error text>`` when its answer carries one, else ""."""
    try:
        answer = mapping.decode(response.content)
    except PayloadError:
        return ""
    error = answer.get("error") if isinstance(answer, dict) else None
    return f": {error}" if isinstance(error, str) and error else ""




