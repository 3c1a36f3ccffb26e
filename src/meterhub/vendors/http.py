"""HTTP plumbing every vendor client shares: deadlines, transport errors, status causes.

A vendor client calls :func:`send` and gets an ``httpx.Response`` or a typed meterhub error:
timeouts and refused or dropped connections are :class:`VendorUnavailable`, an unusable address
is :class:`ConfigError`. Error messages name the call (``what``), never the URL, which may carry
credentials in its query string.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import anyio
import httpx

from meterhub.errors import (
    ConfigError,
    PayloadError,
    QuotaExceeded,
    VendorAuthError,
    VendorUnavailable,
)

__all__ = ["device_json", "request_deadline_s", "response_cause", "retry_after_s", "send"]


def request_deadline_s(http: httpx.AsyncClient) -> float | None:
    """Return the whole-request deadline the client's timeouts imply (None: no limit)."""
    timeout = http.timeout
    parts = [t for t in (timeout.connect, timeout.write, timeout.read) if t is not None]
    return sum(parts) if parts else None


async def send(
    http: httpx.AsyncClient, method: str, url: str, *, what: str, address: str, **kwargs: Any
) -> httpx.Response:
    """Send one request; turn every transport failure into a typed error naming ``what``.

    The deadline is enforced here too, so a transport that ignores httpx timeouts (an
    in-process ASGI app) cannot hang a poll either. ``address`` is the base URL shown when it
    is unusable; it must not carry secrets.
    """
    deadline_s = request_deadline_s(http)
    try:
        with anyio.fail_after(deadline_s):
            return await http.request(method, url, **kwargs)
    except TimeoutError as exc:
        raise VendorUnavailable(f"{what}: no answer within {deadline_s:g} s") from exc
    except httpx.TimeoutException as exc:
        raise VendorUnavailable(f"{what}: timed out ({type(exc).__name__})") from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise ConfigError(f"{address!r} is not a usable address: {exc}") from exc
    except httpx.TransportError as exc:
        raise VendorUnavailable(f"{what}: no usable answer ({type(exc).__name__})") from exc


def response_cause(response: httpx.Response, detail: str = "") -> httpx.HTTPStatusError:
    """Return the answer as an exception to chain from; its message carries no URL (no secrets)."""
    return httpx.HTTPStatusError(
        f"HTTP {response.status_code}{detail}", request=response.request, response=response
    )


def retry_after_s(response: httpx.Response) -> float | None:
    """Return the Retry-After header in seconds, or None when absent or unreadable."""
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def device_json(
    response: httpx.Response,
    what: str,
    decode: Callable[[bytes], Any],
    *,
    refused_login: str,
    refused: str,
    login_hint: str = "",
    said: str = "",
) -> Any:
    """Return a device's decoded JSON answer, or raise the typed error its status means.

    401/403 is :class:`VendorAuthError` (``refused_login`` says what was refused), 429
    :class:`QuotaExceeded` with its Retry-After, 5xx or an empty or undecodable body
    :class:`VendorUnavailable`, another 4xx :class:`PayloadError` (``refused`` says why it may
    be). ``said`` is the device's own error text, appended where it has one, else ``login_hint``
    to a refused login.
    """
    status = response.status_code
    error: Exception | None = None
    if status in (401, 403):
        error = VendorAuthError(f"{what} refused {refused_login} (HTTP {status}){said or login_hint}")
    elif status == 429:
        error = QuotaExceeded(f"{what}: asked too often (HTTP 429){said}", retry_after_s(response))
    elif status >= 500:
        error = VendorUnavailable(f"{what} failed (HTTP {status})")
    elif status >= 400:
        error = PayloadError(f"{what} refused the request (HTTP {status}){said or refused}")
    elif not response.content.strip():
        error = VendorUnavailable(f"{what} answered nothing")
    if error is not None:
        raise error from response_cause(response)
    try:
        return decode(response.content)
    except PayloadError as exc:
        raise VendorUnavailable(f"{what}: a truncated or non-JSON answer") from exc
