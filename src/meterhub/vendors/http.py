"""HTTP plumbing every vendor client shares: deadlines, transport errors, status causes.

A vendor client calls :func:`send` and gets an ``httpx.Response`` or a typed meterhub error:
timeouts and refused or dropped connections are :class:`VendorUnavailable`, an unusable address
is :class:`ConfigError`. Error messages name the call (``what``), never the URL, which may carry
credentials in its query string.

Servers close kept-alive connections they find idle, and one may do so just as a request goes
out on it: the request then fails with a read or write error, or "server disconnected", before
any answer. A GET that fails so on a reused connection is sent once more at once (the pool has
dropped the dead connection); one on a fresh connection, or after an answer began, is not. The
retry is inside one :func:`send`, so it takes no second quota slot.

On a pooled client, requests enter httpcore's connection pool one at a time, each until the pool
has handed it a connection of its own: requests entering together would otherwise all be handed
the same idle connection, all but one be refused it and go round the pool again, scanning every
connection each time (a large share of a poll's CPU time with hundreds of polls in flight).
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Callable, Mapping
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

log = logging.getLogger(__name__)

_NEW_CONNECTION = frozenset({"connection.connect_tcp.started", "connection.connect_unix_socket.started"})
"""httpcore's trace events of a connection being opened for the request."""
_CONNECTION_TAKEN = _NEW_CONNECTION | {
    "http11.send_request_headers.started",
    "http2.send_request_headers.started",
}
"""Events after which the request has a connection no other request is handed."""
_ANSWER_BEGUN = frozenset(
    {
        "http11.receive_response_headers.complete",
        "http2.receive_response_headers.complete",
    }
)
_STALE_CONNECTION_ERRORS = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)
"""How a request fails on a connection the server closed as the request went out."""
_RETRIED_METHODS = frozenset({"GET", "HEAD"})
"""Requests safe to send twice (idempotent and without a body)."""
_SEND_OPTIONS = ("auth", "follow_redirects")
"""Keyword arguments of ``httpx.AsyncClient.request`` that go to ``send``, not ``build_request``."""
_POOL_ENTRIES: weakref.WeakKeyDictionary[httpx.AsyncClient, anyio.Lock | None] = weakref.WeakKeyDictionary()


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
            return await _send_retrying_stale(http, method, url, what, **kwargs)
    except TimeoutError as exc:
        raise VendorUnavailable(f"{what}: no answer within {deadline_s:g} s") from exc
    except httpx.TimeoutException as exc:
        raise VendorUnavailable(f"{what}: timed out ({type(exc).__name__})") from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise ConfigError(f"{address!r} is not a usable address: {exc}") from exc
    except httpx.TransportError as exc:
        raise VendorUnavailable(f"{what}: no usable answer ({type(exc).__name__})") from exc


async def _send_retrying_stale(
    http: httpx.AsyncClient, method: str, url: str, what: str, **kwargs: Any
) -> httpx.Response:
    """Send the request; a GET that a reused connection failed before any answer goes once more."""
    options = {name: kwargs.pop(name) for name in _SEND_OPTIONS if name in kwargs}
    request = http.build_request(method, url, **kwargs)
    retries_left = 1 if request.method in _RETRIED_METHODS else 0
    while True:
        attempt = _Attempt(await _enter_pool(http))
        request.extensions = {**request.extensions, "trace": attempt.trace}
        try:
            return await http.send(request, **options)
        except _STALE_CONNECTION_ERRORS as exc:
            if retries_left == 0 or not attempt.reused or attempt.answered:
                raise
            retries_left -= 1
            log.debug(
                "%s: a kept-alive connection was closed under the request (%s); sending it again",
                what,
                type(exc).__name__,
            )
        finally:
            attempt.leave_pool_entry()


async def _enter_pool(http: httpx.AsyncClient) -> anyio.Lock | None:
    """Take the client's pool entry (None: the client has no connection pool); return it."""
    try:
        entry = _POOL_ENTRIES[http]
    except KeyError:
        # httpx keeps the default transport private; only its pool hands connections out
        pooled = isinstance(getattr(http, "_transport", None), httpx.AsyncHTTPTransport)
        entry = _POOL_ENTRIES[http] = anyio.Lock(fast_acquire=True) if pooled else None
    if entry is not None:
        await entry.acquire()
    return entry


class _Attempt:
    """One request's way through the connection pool, as httpcore's trace events tell it."""

    __slots__ = ("_entry", "answered", "opened", "sent")

    def __init__(self, entry: anyio.Lock | None) -> None:
        self._entry = entry
        self.opened = False
        """A connection was opened for the request."""
        self.sent = False
        """The request began to go out on a connection."""
        self.answered = False
        """The server began to answer (its status line and headers arrived)."""

    @property
    def reused(self) -> bool:
        """Return whether the request went out on a connection an earlier request had used."""
        return self.sent and not self.opened

    async def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """Follow one trace event (httpcore's ``trace`` request extension)."""
        if event in _CONNECTION_TAKEN:
            if event in _NEW_CONNECTION:
                self.opened = True
            else:
                self.sent = True
            self.leave_pool_entry()
        elif event in _ANSWER_BEGUN:
            self.answered = True

    def leave_pool_entry(self) -> None:
        """Let the next request into the pool (once; the holder is this request's task)."""
        if self._entry is not None:
            self._entry.release()
            self._entry = None


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
