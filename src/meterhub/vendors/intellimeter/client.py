"""Raw calls to the Intellimeter cloud API on an injected ``httpx.AsyncClient``.

The client holds no credentials: a login hands back the session cookie, and every later call
is given it. Transport failures, 5xx, 401, 429 and unreadable bodies become typed meterhub
errors raised ``from`` their cause; no message ever carries a secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import httpx

from meterhub.errors import (
    ConfigError,
    PayloadError,
    QuotaExceeded,
    VendorAuthError,
    VendorUnavailable,
)

from . import mapping

__all__ = ["DEFAULT_TIMEOUT_S", "IntellimeterClient", "is_not_found"]

DEFAULT_TIMEOUT_S = 20.0
_JSON_ACCEPT = {"Accept": "application/json"}
_ERROR_TEXT_MAX = 200
_SERVER_ERROR = 500


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _vendor_error(response: httpx.Response, secrets: Sequence[str]) -> str:
    """Return the vendor's own error message, shortened and with our secrets blanked out."""
    try:
        body = mapping.decode_document(response.content)
        text = str(body.get("error", "")) if isinstance(body, dict) else ""
    except PayloadError:
        text = ""
    text = _redact(" ".join(text.split()), secrets)[:_ERROR_TEXT_MAX]
    return f": {text}" if text else ""


def is_not_found(error: BaseException) -> bool:
    """Tell whether ``error`` is the vendor's 404: it knows no such metering point."""
    cause = error.__cause__
    return (
        isinstance(error, PayloadError)
        and isinstance(cause, httpx.HTTPStatusError)
        and cause.response.status_code == httpx.codes.NOT_FOUND
    )


def _retry_after_s(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


class IntellimeterClient:
    """The vendor's routes as methods; each returns the decoded JSON or XML document."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"IntellimeterClient(base_url={self.base_url!r})"

    async def _send(
        self,
        method: str,
        path: str,
        *,
        cookie: str | None = None,
        params: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        secrets: Sequence[str] = (),
    ) -> httpx.Response:
        headers = dict(_JSON_ACCEPT)
        if cookie is not None:
            headers["Cookie"] = cookie  # explicit, so a client shared by connectors never mixes sessions
        where = f"{method} {path}"
        try:
            response = await self._http.request(
                method,
                self.base_url + path,
                params=params,
                data=form,
                headers=headers,
                timeout=self._timeout_s,
            )
        except httpx.TimeoutException as exc:
            raise VendorUnavailable(
                f"Intellimeter did not answer {where} within {self._timeout_s:g} s"
            ) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise ConfigError(f"Intellimeter base_url {self.base_url!r} is not usable: {exc}") from exc
        except httpx.HTTPError as exc:
            raise VendorUnavailable(
                f"cannot reach Intellimeter at {self.base_url} for {where} ({type(exc).__name__})"
            ) from exc
        self._check_status(response, where, secrets)
        return response

    def _check_status(self, response: httpx.Response, where: str, secrets: Sequence[str]) -> None:
        status = response.status_code
        if status < httpx.codes.BAD_REQUEST:
            return
        said = _vendor_error(response, secrets)
        error: Exception
        if status in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
            error = VendorAuthError(f"Intellimeter refused {where} with HTTP {status}{said}")
        elif status == httpx.codes.TOO_MANY_REQUESTS:
            error = QuotaExceeded(
                f"Intellimeter says too many requests for {where}{said}", _retry_after_s(response)
            )
        elif status >= _SERVER_ERROR:
            error = VendorUnavailable(f"Intellimeter failed {where} with HTTP {status}{said}")
        else:
            error = PayloadError(f"Intellimeter rejected {where} with HTTP {status}{said}")
        raise error from httpx.HTTPStatusError(f"HTTP {status}", request=response.request, response=response)

    @staticmethod
    def _document(response: httpx.Response, where: str) -> mapping.Document:
        try:
            return mapping.decode_document(response.content)
        except PayloadError as exc:
            raise VendorUnavailable(f"Intellimeter answered {where} with {exc}") from exc

    async def _get(self, path: str, cookie: str, params: Mapping[str, str] | None = None) -> mapping.Document:
        response = await self._send("GET", path, cookie=cookie, params=params)
        return self._document(response, f"GET {path}")

    # --- session and key ------------------------------------------------------------------
    async def open_session(self, form: Mapping[str, str]) -> str:
        """Log in (``key``, or ``username`` and ``password``); return the session's Cookie header."""
        response = await self._send("PUT", "/session", form=form, secrets=tuple(form.values()))
        document = self._document(response, "PUT /session")
        if not isinstance(document, dict) or "uuid" not in document:
            raise PayloadError("Intellimeter login answered no account uuid")
        cookies = [f"{name}={value}" for name, value in response.cookies.items()]
        if not cookies:
            raise PayloadError("Intellimeter login answered no session cookie")
        return "; ".join(cookies)

    async def close_session(self, cookie: str) -> None:
        """Log out of the session."""
        await self._send("DELETE", "/session", cookie=cookie)

    async def rotate_key(self, cookie: str) -> str:
        """Generate a new API key for the logged-in account and return it (the old one stops)."""
        response = await self._send("POST", "/key", cookie=cookie)
        document = self._document(response, "POST /key")
        key = document.get("key") if isinstance(document, dict) else None
        if not isinstance(key, str) or not key:
            raise PayloadError("Intellimeter POST /key answered no key")
        return key

    # --- readings and points --------------------------------------------------------------
    async def data(self, cookie: str) -> mapping.Document:
        """Return the latest register reading of every metering point."""
        return await self._get("/data", cookie)

    async def interval(self, cookie: str) -> mapping.Document:
        """Return the latest 5-minute interval energy of every metering point."""
        return await self._get("/interval", cookie)

    async def point(self, cookie: str, name: str) -> mapping.Document:
        """Return the description of the metering point ``name``."""
        return await self._get("/point", cookie, {"name": name})

    async def point_by(
        self, cookie: str, *, point_id: int | None = None, name: str | None = None
    ) -> mapping.Document | None:
        """Return the description of a metering point by id (preferred) or name; None if it has none."""
        params = {"id": str(point_id)} if point_id is not None else {"name": name or ""}
        try:
            return await self._get("/point", cookie, params)
        except PayloadError as exc:
            if is_not_found(exc):
                return None
            raise

    async def file(self, cookie: str, first: date, last: date, point: str) -> mapping.Document:
        """Return the JSON export of ``point``'s readings on the local days ``first``..``last``."""
        params = {
            "start": first.isoformat(),
            "end": last.isoformat(),
            "type": "json",
            "meter": point,
        }
        return await self._get("/file", cookie, params)
