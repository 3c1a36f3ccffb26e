"""Raw calls to the UMeter API on an injected ``httpx.AsyncClient``.

The vendor spreads its API over three hosts (the seed's): tokens at auth.umeter.nl, the customer
at app.umeter.nl, measurements at meas.meterdata.io. One ``base_url`` replaces all three (the
simulator serves them as one app). Every failure becomes a typed meterhub error raised ``from``
its cause: timeouts, refused or dropped connections, HTTP 5xx and empty, truncated or non-JSON
bodies are :class:`VendorUnavailable`; HTTP 401 and an OAuth ``invalid_grant`` are
:class:`VendorAuthError`; HTTP 429 is :class:`QuotaExceeded`; other refusals are
:class:`PayloadError` carrying the vendor's message. Tokens travel in headers and form bodies only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from meterhub.errors import (
    PayloadError,
    QuotaExceeded,
    VendorAuthError,
    VendorUnavailable,
)
from meterhub.vendors.http import response_cause, retry_after_s, send
from meterhub.vendors.umeter import mapping

__all__ = ["DEFAULT_HOSTS", "Hosts", "UmeterClient"]


@dataclass(frozen=True, slots=True)
class Hosts:
    """Where each part of the API lives."""

    auth: str
    app: str
    measurements: str

    @classmethod
    def single(cls, base_url: str) -> Hosts:
        """Return one address for all three parts."""
        return cls(base_url, base_url, base_url)


DEFAULT_HOSTS = Hosts("https://auth.umeter.nl", "https://app.umeter.nl", "https://meas.meterdata.io")
"""The vendor's addresses, as the seed document gives them."""
_AUTH_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})




class UmeterClient:
    """The token, customer and measurements calls, returning decoded JSON."""

    def __init__(self, http: httpx.AsyncClient, hosts: Hosts = DEFAULT_HOSTS) -> None:
        self._http = http
        self._hosts = Hosts(*(url.rstrip("/") for url in (hosts.auth, hosts.app, hosts.measurements)))

    @property
    def host(self) -> str:
        """Return the host name of the token endpoint (it names the account's token cache)."""
        return urlsplit(self._hosts.auth).hostname or self._hosts.auth

    def __repr__(self) -> str:
        return f"UmeterClient(hosts={self._hosts!r})"

    async def password_grant(self, username: str, password: str) -> mapping.Token:
        """POST /token with the password grant."""
        form = {"grant_type": "password", "username": username, "password": password}
        return mapping.map_token(await self._call("POST", f"{self._hosts.auth}/token", "token", data=form))

    async def refresh_grant(self, refresh_token: str) -> mapping.Token:
        """POST /token with the refresh_token grant."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return mapping.map_token(await self._call("POST", f"{self._hosts.auth}/token", "token", data=form))

    async def customer(self, access_token: str) -> Any:
        """GET /api/customer: the user with addresses and metering points."""
        return await self._call("GET", f"{self._hosts.app}/api/customer", "customer",
                                headers=_bearer(access_token))

    async def measurements(self, access_token: str, ean: str, kind: str, period: str) -> Any:
        """GET /api/v2/measurements/{kind}/{period}: ``date``/YYYYMMDD, ``month``/YYYYMM or ``year``/YYYY."""
        url = f"{self._hosts.measurements}/api/v2/measurements/{kind}/{period}"
        params = [("meteringPointIds", ean), ("measKeys", "import"), ("measKeys", "export")]
        return await self._call("GET", url, f"measurements/{kind}/{period}",
                                headers=_bearer(access_token), params=params)

    async def _call(self, method: str, url: str, route: str, **kwargs: Any) -> Any:
        what = f"UMeter {route}"
        response = await self._send(method, url, what, **kwargs)
        status = response.status_code
        error: Exception | None = None
        if status == 401:
            error = VendorAuthError(f"{what}: the token was rejected (HTTP 401)")
        elif status == 429:
            error = QuotaExceeded(f"{what}: too many requests (HTTP 429)", retry_after_s(response))
        elif status >= 500:
            error = VendorUnavailable(f"{what}: the server failed (HTTP {status})")
        elif status >= 400:
            error = _refusal(what, response)
        elif not response.content.strip():
            error = VendorUnavailable(f"{what}: an empty answer")
        if error is not None:
            raise error from response_cause(response)
        try:
            return mapping.decode(response.content)
        except PayloadError as exc:
            raise VendorUnavailable(f"{what}: a truncated or non-JSON answer") from exc

    async def _send(self, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        address = url.split("?")[0]
        return await send(self._http, method, url, what=what, address=address, **kwargs)


def _bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def _refusal(what: str, response: httpx.Response) -> Exception:
    """Return the error a 4xx answer means: an OAuth error or an API message."""
    try:
        body = mapping.decode(response.content)
    except PayloadError:
        body = None
    body = body if isinstance(body, dict) else {}
    error, description = body.get("error"), body.get("error_description")
    message = description or body.get("MessageDetail") or body.get("Message") or error or "no reason given"
    text = f"{what}: {message} (HTTP {response.status_code})"
    return VendorAuthError(text) if error in _AUTH_ERRORS else PayloadError(text)




