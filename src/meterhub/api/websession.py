"""Browser sessions: a sign-in kept in an HttpOnly cookie, with a CSRF token for every change.

Signing in on the dashboard opens a *web session*: a random cookie value whose SHA-256 keys a
record in the store's tokens table (scope ``web``), so every replica on the same database knows
it. The record holds the user, a fingerprint of their password hash (changing the password ends
the session), a CSRF token and when it was opened. A session ends when it is idle for
``web_session_idle_s``, when it is older than ``refresh_token_ttl_s``, when the user signs out,
changes password or is removed: at once on the replica that saw it, within :data:`CACHE_S`
seconds on every other replica on the database.

The cookie is ``HttpOnly`` and ``SameSite=Strict`` (``Secure`` over TLS). On top of that, every
request that changes something (any method but GET, HEAD and OPTIONS) must carry the session's
CSRF token, in the ``X-CSRF-Token`` header (scripts) or a ``csrf_token`` form field (forms).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from meterhub.api import security
from meterhub.api.auth import Authenticator
from meterhub.api.deps import COOKIE, CSRF_FIELD, CSRF_HEADER, SAFE_METHODS, Principal
from meterhub.api.problems import ApiProblem

__all__ = [
    "COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SAFE_METHODS",
    "WEB_SCOPE",
    "WebSession",
    "WebSessions",
    "same_token",
]

WEB_SCOPE = "web"
CACHE_S = 5.0
"""How long a checked session is reused before the store is asked again: the longest a sign-out
or password change made on another replica takes to end the session on this one."""
TOUCH_EVERY_S = 60.0
"""How often, at most, a session's idle deadline is pushed back."""


@dataclass(frozen=True)
class WebSession:
    """A live browser session: who it is, its CSRF token and its rate bucket."""

    principal: Principal
    csrf: str
    bucket: str


def same_token(given: str | None, expected: str) -> bool:
    """Compare a presented token with the expected one in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class WebSessions:
    """Opens, checks and ends browser sessions, on the store of an :class:`Authenticator`."""

    def __init__(self, auth: Authenticator, clock: Callable[[], float] = time.time) -> None:
        self._auth = auth
        self._clock = clock
        self._monotonic = auth.monotonic
        self._cache: dict[str, tuple[float, WebSession]] = {}
        self._lock = threading.Lock()
        auth.forget_hooks.append(self.forget)

    @property
    def idle_s(self) -> int:
        """Return how long a session may be idle before it ends."""
        return self._auth.settings.web_session_idle_s

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def forget(self) -> None:
        """Drop checked sessions, so the next request reads the store again."""
        with self._lock:
            self._cache.clear()

    def open(self, username: str, password: str, address: str) -> tuple[str, str]:
        """Check a sign-in and open a session; return the cookie value and the CSRF token.

        Raises the API's problems: 400 for a wrong user name or password, 429 while locked out.
        """
        stored = self._auth.check_password(username, password, address)
        value, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = self._now()
        record = {
            "user": username,
            "pw": security.password_fingerprint(stored),
            "csrf": csrf,
            "opened": now.isoformat(),
        }
        store = self._auth.store
        store.token_purge(WEB_SCOPE, now)
        store.token_set(
            WEB_SCOPE,
            security.digest(value),
            orjson.dumps(record).decode(),
            now + timedelta(seconds=self.idle_s),
        )
        return value, csrf

    def close(self, value: str) -> None:
        """End the session of a cookie value (unknown values are ignored)."""
        self._auth.store.token_delete(WEB_SCOPE, security.digest(value))
        self.forget()

    def cached(self, value: str) -> WebSession | None:
        """Return a recently checked session of a cookie value, or None."""
        with self._lock:
            entry = self._cache.get(security.digest(value))
        if entry is None or entry[0] <= self._monotonic():
            return None
        return entry[1]

    def check(self, value: str) -> WebSession | None:
        """Return the live session of a cookie value, pushing its idle deadline back; None if ended."""
        key = security.digest(value)
        store = self._auth.store
        found = store.token_get(WEB_SCOPE, key)
        now = self._now()
        if found is None or (found[1] is not None and found[1] <= now):
            return None
        record: dict[str, Any] = orjson.loads(found[0])
        opened = datetime.fromisoformat(record["opened"])
        lifetime = timedelta(seconds=self._auth.settings.refresh_token_ttl_s)
        stored_hash = store.user_password_hash(record["user"])
        if now - opened > lifetime or security.password_fingerprint(stored_hash or "") != record["pw"]:
            store.token_delete(WEB_SCOPE, key)
            return None
        idle = timedelta(seconds=self.idle_s)
        touch_every = timedelta(seconds=min(TOUCH_EVERY_S, self.idle_s / 2))
        if found[1] is None or found[1] - now < idle - touch_every:
            store.token_set(WEB_SCOPE, key, found[0], now + idle)
        try:
            principal = self._auth.principal_of(record["user"])
        except ApiProblem:  # the user was removed
            store.token_delete(WEB_SCOPE, key)
            return None
        session = WebSession(principal, record["csrf"], f"web:{key[:16]}")
        keep_s = min(CACHE_S, float(self.idle_s))
        with self._lock:
            self._cache[key] = (self._monotonic() + keep_s, session)
        return session
