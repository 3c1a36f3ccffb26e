"""Request rate limits per key or session, and the lock-outs after failed sign-ins.

Login lock-outs live in the database (the store's ``tokens`` table, scope ``login``), so every
API replica on one database sees the same failures: a lock-out earned on one replica holds on
all of them, and a success on any replica clears it. Replicas read one shared clock only through
the store; their own clocks may differ by a few seconds, which shifts a lock-out's end by as much.

Request rate limits are per process: each replica keeps its own token buckets in memory, which
bounds what one client can do to that replica without a database write per request. Behind a
load balancer spreading a client over N replicas, that client may reach N times the rate; a
limit that must hold for the whole deployment belongs in the balancer. Every answer that refuses
says how long to wait (Retry-After).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import orjson

from meterhub.claims import claim_token
from meterhub.store.base import Store

__all__ = ["LOGIN_SCOPE", "LoginThrottle", "RateLimiter"]

_MAX_ENTRIES = 10_000
_MAX_TRIES = 100
"""Conditional writes one failure may need when many replicas count the same key at once."""
LOGIN_SCOPE = "login"
"""The tokens scope holding failed sign-ins, keyed by a digest of the user name or address."""


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, ``rate_per_s`` on average (0: no limit).

    The buckets live in this process's memory: each API replica limits on its own.
    """

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s = rate_per_s
        self.burst = max(1, burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one request of ``key``; return 0 when allowed, else the seconds to wait."""
        if self.rate_per_s <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= _MAX_ENTRIES:
                    self._prune(now)
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate_per_s)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate_per_s

    def _prune(self, now: float) -> None:
        full_after_s = self.burst / self.rate_per_s
        for key in [k for k, b in self._buckets.items() if now - b.at > full_after_s]:
            del self._buckets[key]


class _Table(Protocol):
    """Where failure records live: the store's tokens table, or this process's memory."""

    def get(self, key: str, now: datetime) -> str | None:
        """Return the live record of ``key``, or None."""
        ...

    def claim(self, key: str, value: str, expires: datetime, now: datetime) -> str:
        """Create the record unless a live one exists; return the record that holds."""
        ...

    def swap(self, key: str, expected: str, value: str, expires: datetime) -> bool:
        """Replace the record only if it still is ``expected``; return whether it was."""
        ...

    def delete(self, key: str) -> None:
        """Forget the record of ``key``."""
        ...


class _StoreTable:
    """Failure records in the store's tokens table: shared by every process on the database."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, key: str, now: datetime) -> str | None:
        found = self._store.token_get(LOGIN_SCOPE, key)
        if found is None or (found[1] is not None and found[1] <= now):
            return None
        return found[0]

    def claim(self, key: str, value: str, expires: datetime, now: datetime) -> str:
        return claim_token(self._store, LOGIN_SCOPE, key, value, expires, now)

    def swap(self, key: str, expected: str, value: str, expires: datetime) -> bool:
        return self._store.token_swap(LOGIN_SCOPE, key, expected, value, expires)

    def delete(self, key: str) -> None:
        self._store.token_delete(LOGIN_SCOPE, key)


class _MemoryTable:
    """Failure records in this process's memory (a throttle without a store)."""

    def __init__(self) -> None:
        self._records: dict[str, tuple[str, datetime]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, now: datetime) -> str | None:
        with self._lock:
            found = self._records.get(key)
        return None if found is None or found[1] <= now else found[0]

    def claim(self, key: str, value: str, expires: datetime, now: datetime) -> str:
        with self._lock:
            found = self._records.get(key)
            if found is not None and found[1] > now:
                return found[0]
            if len(self._records) >= _MAX_ENTRIES:
                for stale in [k for k, (_, until) in self._records.items() if until <= now]:
                    del self._records[stale]
            self._records[key] = (value, expires)
            return value

    def swap(self, key: str, expected: str, value: str, expires: datetime) -> bool:
        with self._lock:
            found = self._records.get(key)
            if found is None or found[0] != expected:
                return False
            self._records[key] = (value, expires)
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)


class LoginThrottle:
    """Slow down password guessing per user name and per client address.

    The first ``free_attempts`` failures cost nothing; each further one locks that name or address
    out for ``base_s`` doubling with every failure, at most ``max_s``. A success clears the name.
    Failures are forgotten after a quiet spell of ``2 * max_s``. With a ``store`` the records are
    shared by every process on its database; without one they live in this process.
    """

    def __init__(
        self,
        free_attempts: int,
        base_s: float,
        max_s: float,
        clock: Callable[[], float] = time.time,
        store: Store | None = None,
    ) -> None:
        self.free_attempts = free_attempts
        self.base_s = base_s
        self.max_s = max_s
        self._clock = clock
        self._table: _Table = _MemoryTable() if store is None else _StoreTable(store)

    @staticmethod
    def _key(key: str) -> str:
        # A digest keeps user names (any text a client sends) out of the table's keys.
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

    def _at(self, now_s: float) -> datetime:
        return datetime.fromtimestamp(now_s, UTC)

    def wait_s(self, keys: Iterable[str]) -> float:
        """Return how many seconds the longest lock on any of ``keys`` still lasts (0: none)."""
        now_s = self._clock()
        now = self._at(now_s)
        ends = []
        for key in keys:
            text = self._table.get(self._key(key), now)
            if text is not None:
                ends.append(float(orjson.loads(text)["until"]))
        return max([end - now_s for end in ends if end > now_s], default=0.0)

    def failed(self, keys: Iterable[str]) -> None:
        """Count one failed sign-in against each of ``keys``."""
        for key in keys:
            self._count_failure(self._key(key))

    def _count_failure(self, key: str) -> None:
        for _ in range(_MAX_TRIES):
            now_s = self._clock()
            now = self._at(now_s)
            # A record lives until a quiet spell of 2 * max_s forgives its failures.
            expires = self._at(now_s + 2 * self.max_s)
            current = self._table.get(key, now)
            if current is None:
                fresh = self._record(1, now_s, 0.0)
                if self._table.claim(key, fresh, expires, now) == fresh:
                    return
                continue  # another process counted a first failure meanwhile: add to it
            record = orjson.loads(current)
            bumped = self._record(int(record["n"]) + 1, now_s, float(record["until"]))
            if self._table.swap(key, current, bumped, expires):
                return

    def _record(self, count: int, now_s: float, until_s: float) -> str:
        beyond = count - self.free_attempts
        if beyond > 0:
            until_s = now_s + min(self.max_s, self.base_s * 2 ** min(beyond - 1, 30))
        # The nonce tells two records apart that agree on everything else.
        record = {"n": count, "last": now_s, "until": until_s, "nonce": secrets.token_hex(4)}
        return orjson.dumps(record).decode()

    def succeeded(self, key: str) -> None:
        """Forget the failures of ``key``."""
        self._table.delete(self._key(key))
