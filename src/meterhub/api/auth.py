"""Sign-in and authentication: the OAuth2 grants, sessions, and turning a credential into a Principal.

A password grant opens a *session* (tokens scope ``session``, keyed by a random id) and answers
a short-lived access token bound to it plus an opaque refresh token (scope ``refresh``, stored
as its SHA-256). Each refresh rotates the refresh token. Using one is a single conditional
update in the store, so of two requests presenting the same token exactly one can use it; any
other use of it, at the same time or later, ends the session, as a stolen token would. A used
token is kept until it expires, to notice its reuse. Revoking a token, changing the password or
removing the user ends the session and with it every access and refresh token bound to it.

Authenticated principals are cached for :data:`CACHE_S` seconds per credential, so a busy client
costs no database reads. The cache holds at most :data:`CACHE_MAX_ENTRIES` principals, each under
a keyed hash of its credential (a key of this process's own), never the credential itself.
Every API replica on one database shares the sessions, refresh tokens, key revocations and login
lock-outs, all kept in the store. A change (revoking a key or token, ending a session, changing a
password, role or share, removing a user) takes effect at once on the replica that made it, which
clears its cache, and on every other replica within :data:`CACHE_S` seconds, when the
credential's cached principal is checked against the store again.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import Depends

from meterhub.api import security
from meterhub.api.deps import CHALLENGE, Principal, Role, get_authenticator
from meterhub.api.limits import LOGIN_SCOPE, LoginThrottle, RateLimiter
from meterhub.api.problems import ApiProblem
from meterhub.config import Settings
from meterhub.errors import InputError, NotFoundError, UnknownPlaceError
from meterhub.store.base import Store

__all__ = ["CACHE_MAX_ENTRIES", "AuthDep", "Authenticator", "TokenPair"]

CACHE_S = 5.0
"""How long an authenticated principal is reused before the store is asked again: the longest
a change made on another replica (a revoked key, an ended session) takes to reach this one."""
CACHE_MAX_ENTRIES = 4096
"""Credentials whose principals are cached at once; when full, the expired ones go, or all."""
TOUCH_EVERY_S = 60.0
"""How often, at most, a key's last use is written."""
KEY_RELOAD_S = 10.0
"""How often, at most, a token that fails its signature makes the signing key be read again."""
PURGE_EVERY_S = 3600.0
"""How often, at most, expired sessions and refresh tokens are deleted."""
SESSION_SCOPE, REFRESH_SCOPE = "session", "refresh"


@dataclass(frozen=True)
class TokenPair:
    """What the token endpoint answers."""

    access_token: str
    refresh_token: str
    expires_in: int


def _invalid_grant(detail: str) -> ApiProblem:
    return ApiProblem(400, "Bad Request", detail, error="invalid_grant", error_description=detail)


def _unauthorized(detail: str) -> ApiProblem:
    challenge = CHALLENGE["WWW-Authenticate"] + ', error="invalid_token"'
    return ApiProblem(401, "Unauthorized", detail, headers={"WWW-Authenticate": challenge})


def _too_many(detail: str, wait_s: float) -> ApiProblem:
    return ApiProblem(
        429, "Too Many Requests", detail, headers={"Retry-After": str(max(1, int(wait_s + 0.999)))}
    )


class Authenticator:
    """Grants tokens, checks credentials and applies the rate limits of one app."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock
        self._monotonic = monotonic
        self._key: bytes | None = None
        self._key_read_at = 0.0
        self._purged_at: float | None = None
        self._cache: dict[bytes, tuple[float, Principal, str]] = {}
        self._cache_key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self.logins = LoginThrottle(
            settings.login_free_attempts,
            settings.login_lock_base_s,
            settings.login_lock_max_s,
            clock=clock,
            store=store,
        )
        """Lock-outs after failed sign-ins, shared through the store by every replica."""
        self.limiter = RateLimiter(settings.api_rate_per_s, settings.api_rate_burst, clock=monotonic)
        """Request rate limits, kept per process (see :mod:`meterhub.api.limits`)."""
        self.forget_hooks: list[Callable[[], None]] = []
        """Called by :meth:`forget`: other caches of principals (the browser sessions') clear too."""

    # --- helpers ------------------------------------------------------------------------
    @property
    def monotonic(self) -> Callable[[], float]:
        """Return the clock that times the caches (seconds, monotonic)."""
        return self._monotonic

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _signing_key(self, reload: bool = False) -> bytes:
        stale = reload and self._monotonic() - self._key_read_at >= KEY_RELOAD_S
        if self._key is None or stale:
            self._key = security.signing_key(self.store)
            self._key_read_at = self._monotonic()
        return self._key

    def _claims(self, token: str, *, check_expiry: bool = True) -> dict[str, Any] | None:
        now = self._clock()
        claims = security.read_access_token(self._signing_key(), token, now, check_expiry=check_expiry)
        if claims is None:  # another replica may have made the key first: look once more
            claims = security.read_access_token(
                self._signing_key(True), token, now, check_expiry=check_expiry
            )
        return claims

    def _live_session(self, sid: str) -> tuple[str, dict[str, Any]] | None:
        """Return a session's stored text and record while it lives and its password is unchanged."""
        found = self.store.token_get(SESSION_SCOPE, sid)
        if found is None or (found[1] is not None and found[1] <= self._now()):
            return None
        session: dict[str, Any] = orjson.loads(found[0])
        if (
            security.password_fingerprint(self.store.user_password_hash(session["user"]) or "")
            != session["pw"]
        ):
            return None
        return found[0], session

    def _session(self, sid: str) -> dict[str, Any] | None:
        live = self._live_session(sid)
        return None if live is None else live[1]

    def _end_session(self, sid: str) -> None:
        """End a session: every access and refresh token bound to it stops working."""
        self.store.token_delete(SESSION_SCOPE, sid)
        self.forget()

    def _purge_expired(self) -> None:
        now = self._monotonic()
        if self._purged_at is not None and now - self._purged_at < PURGE_EVERY_S:
            return
        self._purged_at = now
        for scope in (REFRESH_SCOPE, SESSION_SCOPE, LOGIN_SCOPE):
            self.store.token_purge(scope, self._now())

    def forget(self) -> None:
        """Drop cached principals (after a change to users, keys, shares or sessions)."""
        with self._lock:
            self._cache.clear()
        for hook in self.forget_hooks:
            hook()

    # --- grants -------------------------------------------------------------------------
    def _issue(self, user: str, sid: str, fingerprint: str, session_text: str | None = None) -> TokenPair:
        """Answer a new token pair; open the session, or extend ``session_text`` while it lives."""
        now = self._clock()
        ttl_s = self.settings.access_token_ttl_s
        claims = {"sub": user, "sid": sid, "typ": "access", "iat": int(now), "exp": int(now) + ttl_s}
        access = security.sign_access_token(self._signing_key(), claims)
        refresh = security.new_refresh_token()
        until = self._now() + timedelta(seconds=self.settings.refresh_token_ttl_s)
        text = orjson.dumps({"user": user, "pw": fingerprint}).decode()
        if session_text is None:
            self.store.token_set(SESSION_SCOPE, sid, text, until)
        elif not self.store.token_swap(SESSION_SCOPE, sid, session_text, text, until):
            # Ended meanwhile (a reuse of a refresh token, a revocation): it must stay ended.
            raise _invalid_grant("the session has ended; sign in again")
        record = {"user": user, "sid": sid, "used": False}
        self.store.token_set(REFRESH_SCOPE, security.digest(refresh), orjson.dumps(record).decode(), until)
        return TokenPair(access, refresh, ttl_s)

    def password_grant(self, username: str, password: str, address: str) -> TokenPair:
        """Check a user's password (slowed after failures) and open a session."""
        stored = self.check_password(username, password, address)
        sid = secrets.token_urlsafe(16)
        return self._issue(username, sid, security.password_fingerprint(stored))

    def check_password(self, username: str, password: str, address: str) -> str:
        """Check a sign-in (slowed after failures); return the user's stored password hash."""
        keys = (f"user:{username[:64]}", f"addr:{address}")
        wait_s = self.logins.wait_s(keys)
        if wait_s > 0:
            raise _too_many("too many failed sign-ins; wait before trying again", wait_s)
        try:
            stored = self.store.user_password_hash(username)
        except InputError:  # a name no user can have (a NUL in it): simply a wrong sign-in
            stored = None
        if not security.verify_password(stored, password):
            self.logins.failed(keys)
            raise _invalid_grant("the user name or password is incorrect")
        assert stored is not None
        self.logins.succeeded(keys[0])
        if security.password_needs_rehash(stored):
            stored = security.hash_password(password)
            self.store.set_user_password(username, stored)
        self._purge_expired()
        return stored

    def refresh_grant(self, refresh_token: str) -> TokenPair:
        """Rotate a refresh token: answer a new pair and retire the old refresh token."""
        self._purge_expired()
        key = security.digest(refresh_token)
        found = self.store.token_get(REFRESH_SCOPE, key)
        if found is None or (found[1] is not None and found[1] <= self._now()):
            raise _invalid_grant("the refresh token is unknown or expired; sign in again")
        record: dict[str, Any] = orjson.loads(found[0])
        used = orjson.dumps({**record, "used": True}).decode()
        # Retiring the token is the one conditional write that decides who used it: a request
        # that loses it, now or later, presented a used token.
        if record["used"] or not self.store.token_swap(REFRESH_SCOPE, key, found[0], used, found[1]):
            self._end_session(record["sid"])
            raise _invalid_grant("the refresh token was used before, so its session has ended; sign in again")
        live = self._live_session(record["sid"])
        if live is None or live[1]["user"] != record["user"]:
            raise _invalid_grant("the session has ended; sign in again")
        return self._issue(record["user"], record["sid"], live[1]["pw"], session_text=live[0])

    def revoke(self, token: str) -> None:
        """End the session of an access or refresh token, or revoke an API key; unknown ones are ignored."""
        sid: str | None = None
        if (parts := security.split_api_key(token)) is not None:
            found = self.store.api_key_by_id(parts[0])
            if found is not None and security.verify_api_key(parts[1], found[1]) and not found[0].revoked:
                self.store.revoke_api_key(parts[0])
        elif (claims := self._claims(token, check_expiry=False)) is not None:
            sid = claims["sid"]
        elif (record := self.store.token_get(REFRESH_SCOPE, security.digest(token))) is not None:
            sid = orjson.loads(record[0])["sid"]
            self.store.token_delete(REFRESH_SCOPE, security.digest(token))
        if sid is not None:
            self._end_session(sid)
        self.forget()

    # --- requests -----------------------------------------------------------------------
    def _cache_id(self, credential: str) -> bytes:
        """Return the keyed hash a credential's principal is cached under."""
        return hashlib.blake2b(credential.encode(), digest_size=32, key=self._cache_key).digest()

    def cached(self, credential: str) -> tuple[Principal, str] | None:
        """Return the principal and rate bucket of a recently checked credential, or None."""
        key = self._cache_id(credential)
        with self._lock:
            entry = self._cache.get(key)
        if entry is None or entry[0] <= self._monotonic():
            return None
        return entry[1], entry[2]

    def authenticate(self, credential: str) -> tuple[Principal, str]:
        """Check a credential against the store; return the principal and its rate bucket."""
        ttl_s = CACHE_S
        if (parts := security.split_api_key(credential)) is not None:
            user, key_id, bucket = self._key_user(*parts), parts[0], f"key:{parts[0]}"
        else:
            claims = self._claims(credential)
            session = None if claims is None else self._session(claims["sid"])
            if claims is None or session is None or session["user"] != claims["sub"]:
                raise _unauthorized("the access token is invalid, expired or revoked; sign in again")
            user, key_id, bucket = claims["sub"], None, f"session:{claims['sid']}"
            ttl_s = min(ttl_s, claims["exp"] - self._clock())
        principal = self.principal_of(user, key_id)
        with self._lock:
            if len(self._cache) >= CACHE_MAX_ENTRIES:
                now = self._monotonic()
                self._cache = {k: entry for k, entry in self._cache.items() if entry[0] > now}
                if len(self._cache) >= CACHE_MAX_ENTRIES:
                    self._cache = {}
            self._cache[self._cache_id(credential)] = (self._monotonic() + ttl_s, principal, bucket)
        return principal, bucket

    def _key_user(self, key_id: str, secret: str) -> str:
        found = self.store.api_key_by_id(key_id)
        if found is None or found[0].revoked or not security.verify_api_key(secret, found[1]):
            raise _unauthorized("the API key is unknown or revoked")
        record = found[0]
        now = self._now()
        if record.last_used_at is None or (now - record.last_used_at).total_seconds() >= TOUCH_EVERY_S:
            self.store.touch_api_key(key_id, now)
        return record.user

    def principal_of(self, name: str, key_id: str | None = None) -> Principal:
        """Return a user's principal: role, and the meters and places shared with them."""
        try:
            user = self.store.get_user(name)
        except NotFoundError:
            raise _unauthorized(f"user {name!r} no longer exists") from None
        if user.role is Role.ADMIN:
            return Principal(user.name, user.role, key_id, frozenset(), frozenset())
        shares = self.store.shares_of(name)
        places = frozenset(object_id for kind, object_id in shares if kind == "place")
        meters = {object_id for kind, object_id in shares if kind == "meter"}
        for place_id in places:
            try:
                meters.update(meter_id for meter_id, _ in self.store.get_place(place_id).meters)
            except UnknownPlaceError:  # removed since the shares were read
                continue
        return Principal(user.name, user.role, key_id, frozenset(meters), places)

    def spend(self, bucket: str) -> None:
        """Spend one request of a rate bucket; raise the 429 problem when it is empty."""
        wait_s = self.limiter.take(bucket)
        if wait_s > 0:
            raise _too_many(
                f"rate limit of {self.limiter.rate_per_s:g} requests per second exceeded; slow down", wait_s
            )


AuthDep = Annotated[Authenticator, Depends(get_authenticator)]
