"""Raw calls to an AMS reader's local HTTP API on an injected ``httpx.AsyncClient``.

Every route is a GET of a fixed JSON file. Transport failures, 5xx, 401 and empty or truncated
bodies become typed meterhub errors raised ``from`` their cause; no message carries a secret.
"""

from __future__ import annotations

import json

import httpx

from meterhub.errors import (
    ConfigError,
    PayloadError,
    QuotaExceeded,
    VendorAuthError,
    VendorUnavailable,
)

__all__ = ["DEFAULT_TIMEOUT_S", "ROUTES", "AmsReaderClient"]

DEFAULT_TIMEOUT_S = 10.0
ROUTES = ("data.json", "dayplot.json", "monthplot.json", "sysinfo.json", "configuration.json")
"""The routes this client reads; the reader serves them under ``/``."""
_SERVER_ERROR = 500


class AmsReaderClient:
    """One AMS reader on the local network; optional HTTP Basic auth per call."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"AmsReaderClient(base_url={self.base_url!r})"

    async def get(self, route: str, auth: tuple[str, str] | None = None) -> object:
        """Return the decoded JSON document the reader serves at ``/<route>``."""
        where = f"GET /{route}"
        try:
            response = await self._http.get(
                f"{self.base_url}/{route}",
                auth=httpx.BasicAuth(*auth) if auth is not None else None,
                headers={"Accept": "application/json"},
                timeout=self._timeout_s,
            )
        except httpx.TimeoutException as exc:
            raise VendorUnavailable(
                f"the AMS reader at {self.base_url} did not answer {where} within {self._timeout_s:g} s"
            ) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise ConfigError(f"AMS reader address {self.base_url!r} is not usable: {exc}") from exc
        except httpx.HTTPError as exc:
            raise VendorUnavailable(
                f"cannot reach the AMS reader at {self.base_url} ({type(exc).__name__})"
            ) from exc
        self._check_status(response, where, with_auth=auth is not None)
        return self._decode(response, where)

    def _check_status(self, response: httpx.Response, where: str, *, with_auth: bool) -> None:
        status = response.status_code
        if status < httpx.codes.BAD_REQUEST:
            return
        error: Exception
        if status in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
            hint = "rejected the username and password" if with_auth else "wants a username and password"
            error = VendorAuthError(f"the AMS reader at {self.base_url} {hint} (HTTP {status})")
        elif status == httpx.codes.TOO_MANY_REQUESTS:
            error = QuotaExceeded(f"the AMS reader at {self.base_url} is busy (HTTP 429)", 2.0)
        elif status >= _SERVER_ERROR:
            error = VendorUnavailable(f"the AMS reader at {self.base_url} failed {where} (HTTP {status})")
        else:
            error = PayloadError(f"the AMS reader at {self.base_url} refused {where} (HTTP {status})")
        raise error from httpx.HTTPStatusError(f"HTTP {status}", request=response.request, response=response)

    def _decode(self, response: httpx.Response, where: str) -> object:
        body = response.content
        if not body.strip():
            raise VendorUnavailable(f"the AMS reader at {self.base_url} answered {where} with nothing")
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise VendorUnavailable(
                f"the AMS reader at {self.base_url} answered {where} with a truncated or "
                f"non-JSON body ({len(body)} bytes)"
            ) from exc
