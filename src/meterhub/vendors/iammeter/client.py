"""Raw calls to the IAMMETER cloud API (``/api/v1``) on an injected ``httpx.AsyncClient``.

Every failure becomes a typed meterhub error raised ``from`` its cause: timeouts, refused or
dropped connections, HTTP 5xx and truncated or non-JSON bodies are :class:`VendorUnavailable`;
HTTP 401/403 and a failure envelope about the token or login are :class:`VendorAuthError`
(other failure envelopes are :class:`PayloadError` with the vendor's message);
HTTP 429 and the empty body the vendor sends over its quotas ("the API will return nothing") are
:class:`QuotaExceeded` and never count as data.

The token travels as ``?token=``, as the vendor's document shows. Error messages name the route,
never the URL, and httpx's request log lines (which print whole URLs) have the token's value
replaced by :data:`REDACTED` (:class:`RedactTokenFilter` on the ``httpx`` logger), so no log
line or error carries it.
"""

from __future__ import annotations

import logging
import re
from datetime import date
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
from meterhub.vendors.iammeter import mapping

__all__ = ["DEFAULT_BASE_URL", "EMPTY_BODY_RETRY_S", "REDACTED", "IammeterClient", "RedactTokenFilter"]

DEFAULT_BASE_URL = "https://www.iammeter.com"
"""The vendor's address, as the seed document gives it."""
EMPTY_BODY_RETRY_S = 300.0
"""Back-off after an empty answer: the documented spacing of meterdata polls (5 minutes)."""
_API = "/api/v1"
REDACTED = "REDACTED"
"""What a token's value reads as in a log line."""
_TOKEN_IN_QUERY = re.compile(r"(?i)([?&]token=)[^&#\s\"']*")


class RedactTokenFilter(logging.Filter):
    """Replace the value of a ``token`` query parameter in log records (httpx logs whole URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any("token=" in str(arg).lower() for arg in record.args):
            record.args = tuple(_redacted(arg) for arg in record.args)
        if isinstance(record.msg, str) and "token=" in record.msg.lower():
            record.msg = _TOKEN_IN_QUERY.sub(rf"\1{REDACTED}", record.msg)
        return True


def _redacted(arg: object) -> object:
    text = str(arg)
    return _TOKEN_IN_QUERY.sub(rf"\1{REDACTED}", text) if "token=" in text.lower() else arg


def _install_redaction() -> None:
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(f, RedactTokenFilter) for f in httpx_log.filters):
        httpx_log.addFilter(RedactTokenFilter())


_install_redaction()


class IammeterClient:
    """The vendor's routes as methods returning decoded JSON whose envelope says success."""

    def __init__(self, http: httpx.AsyncClient, base_url: str = DEFAULT_BASE_URL) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._host = urlsplit(self._base_url).hostname or self._base_url

    @property
    def host(self) -> str:
        """Return the host name of the API (the scope of the per-IP login quota)."""
        return self._host

    def __repr__(self) -> str:
        return f"IammeterClient(base_url={self._base_url!r})"

    async def login(self, user_name: str, password: str) -> str:
        """Log in and return the account's token."""
        body = {"userName": user_name, "password": password}
        data = mapping.unwrap(await self._call("POST", "/user/login", json=body))
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise PayloadError("IAMMETER login answered without a token")
        return token

    async def meterdata(self, token: str, sn: str, *, advanced: bool = True) -> Any:
        """GET meterdata2/{sn} (with the power factor) or meterdata/{sn}: the latest upload."""
        route = "meterdata2" if advanced else "meterdata"
        return await self._call("GET", f"/site/{route}/{sn}", token=token)

    async def meterdatalist(self, token: str, sn: str, first_day: date, last_day: date,
                            interval_s: int, *, advanced: bool = True) -> Any:
        """GET meterdatalist2/{sn} or meterdatalist/{sn}: history rows of whole days (inclusive)."""
        route = "meterdatalist2" if advanced else "meterdatalist"
        params = {"startTime": first_day.isoformat(), "endTime": last_day.isoformat(),
                  "interval": str(interval_s)}
        return await self._call("GET", f"/site/{route}/{sn}", token=token, params=params)

    async def metersdata(self, token: str) -> Any:
        """GET metersdata: the latest upload of every meter of the account."""
        return await self._call("GET", "/site/metersdata", token=token)

    async def energyhistory(self, token: str, place_id: str, first_day: date, end_day: date,
                            group_by: str) -> Any:
        """GET energyhistory/{place_id}: kWh by ``hour`` or ``day``; ``end_day`` is exclusive."""
        params = {"startTime": first_day.isoformat(), "endTime": end_day.isoformat(),
                  "groupby": group_by}
        return await self._call("GET", f"/site/energyhistory/{place_id}", token=token, params=params)

    async def power_analysis(self, token: str, sn: str, first_day: date, last_day: date) -> Any:
        """GET powerAnalysis: average, daytime average, minimum and maximum power."""
        params = {"sn": sn, "startTime": first_day.isoformat(), "endTime": last_day.isoformat()}
        return await self._call("GET", "/site/powerAnalysis", token=token, params=params)

    async def offline_analysis(self, token: str, sn: str, first_day: date, last_day: date) -> Any:
        """GET offlineAnalysis: the gaps in a meter's uploads."""
        params = {"sn": sn, "startTime": first_day.isoformat(), "endTime": last_day.isoformat()}
        return await self._call("GET", "/site/offlineAnalysis", token=token, params=params)

    async def _call(self, method: str, route: str, *, token: str | None = None,
                    params: dict[str, str] | None = None, json: object = None) -> Any:
        what = f"IAMMETER {route}"
        if token is not None:
            params = {**(params or {}), "token": token}
        response = await self._send(method, route, what, params=params, json=json)
        status = response.status_code
        error: Exception | None = None
        if status in (401, 403):
            error = VendorAuthError(f"{what}: the token or login was rejected (HTTP {status})")
        elif status == 429:
            error = QuotaExceeded(f"{what}: too many requests (HTTP 429)", retry_after_s(response))
        elif status >= 500:
            error = VendorUnavailable(f"{what}: the server failed (HTTP {status})")
        elif status >= 400:
            error = _refusal(what, response)
        elif not response.content.strip():
            error = QuotaExceeded(f"{what}: the vendor answered nothing, as it does over its quotas",
                                  retry_after_s=EMPTY_BODY_RETRY_S)
        if error is not None:
            raise error from response_cause(response)
        try:
            payload = mapping.decode(response.content)
        except PayloadError as exc:
            raise VendorUnavailable(f"{what}: a truncated or non-JSON answer") from exc
        _check_envelope(what, payload)
        return payload

    async def _send(self, method: str, route: str, what: str, **kwargs: Any) -> httpx.Response:
        url = f"{self._base_url}{_API}{route}"
        return await send(self._http, method, url, what=what, address=self._base_url, **kwargs)


def _check_envelope(what: str, payload: object) -> None:
    """Raise the error a failure envelope means: a rejected token or login, or a refusal."""
    message = mapping.failure_message(payload)
    if message is None:
        mapping.unwrap(payload)  # not an object: PayloadError
        return
    lowered = message.lower()
    if "token" in lowered:
        raise VendorAuthError(f"{what}: the token was rejected: {message}")
    if "password" in lowered or "user name" in lowered:
        raise VendorAuthError(f"{what}: the login was refused: {message}")
    raise PayloadError(f"{what}: refused: {message}")


def _refusal(what: str, response: httpx.Response) -> Exception:
    """Return the error a 4xx answer means, with the vendor's own message when it gives one."""
    try:
        payload = mapping.decode(response.content)
        if mapping.failure_message(payload) is not None:
            _check_envelope(what, payload)
    except (PayloadError, VendorAuthError) as exc:
        return exc
    return PayloadError(f"{what}: the request was refused (HTTP {response.status_code})")
