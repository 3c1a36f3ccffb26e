"""Request rate limits per key or session, and the slowing of failed sign-ins.

Both live in the memory of one process: each API replica limits on its own, which bounds what
one client can do to it. Every answer that refuses says how long to wait (Retry-After).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["LoginThrottle", "RateLimiter"]

_MAX_ENTRIES = 10_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, ``rate_per_s`` on average (0: no limit)."""

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


@dataclass
class _Failures:
    count: int
    locked_until: float
    last: float


class LoginThrottle:
    """Slow down password guessing per user name and per client address.

    The first ``free_attempts`` failures cost nothing; each further one locks that name or address
    out for ``base_s`` doubling with every failure, at most ``max_s``. A success clears the name.
    """

    def __init__(
        self, free_attempts: int, base_s: float, max_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.free_attempts = free_attempts
        self.base_s = base_s
        self.max_s = max_s
        self._clock = clock
        self._failures: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def wait_s(self, keys: Iterable[str]) -> float:
        """Return how many seconds the longest lock on any of ``keys`` still lasts (0: none)."""
        now = self._clock()
        with self._lock:
            ends = [f.locked_until for k in keys if (f := self._failures.get(k)) is not None]
        return max([end - now for end in ends if end > now], default=0.0)

    def failed(self, keys: Iterable[str]) -> None:
        """Count one failed sign-in against each of ``keys``."""
        now = self._clock()
        with self._lock:
            if len(self._failures) >= _MAX_ENTRIES:
                self._prune(now)
            for key in keys:
                entry = self._failures.setdefault(key, _Failures(0, 0.0, now))
                if now - entry.last > 2 * self.max_s:  # a long quiet spell forgives old failures
                    entry.count = 0
                entry.count += 1
                entry.last = now
                beyond = entry.count - self.free_attempts
                if beyond > 0:
                    entry.locked_until = now + min(self.max_s, self.base_s * 2 ** min(beyond - 1, 30))

    def succeeded(self, key: str) -> None:
        """Forget the failures of ``key``."""
        with self._lock:
            self._failures.pop(key, None)

    def _prune(self, now: float) -> None:
        for key in [k for k, f in self._failures.items() if now - f.last > 2 * self.max_s]:
            del self._failures[key]
