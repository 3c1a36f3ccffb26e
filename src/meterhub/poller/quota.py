"""The quota guard the poller's connectors use: a slot booked for the moment the request goes out.

:class:`ReservingGuard` books each vendor call in the persisted quota ledger, atomically, at the
instant it will be sent (:func:`meterhub.store.leases.reserve_quota`): now when the limit allows,
else the moment the oldest call of the window leaves it, plus ``margin_s``. It then waits until
that instant and returns, and the connector sends. Bookings of one limit are never closer than
the window plus the margin, whichever worker books them, so no
vendor window is overrun as long as the workers' clocks (and the time from booking to the
request reaching the vendor) agree within the margin. A booking further off than
``max_wait_s`` is refused with :class:`~meterhub.errors.QuotaHeld`, which tells the caller when
to come back.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import datetime

import anyio

from meterhub import metrics
from meterhub.errors import QuotaHeld
from meterhub.model import utc_now
from meterhub.store.base import Store
from meterhub.store.leases import Reservation, reserve_quota
from meterhub.threads import run_ingest
from meterhub.vendors.base import QuotaGuard, QuotaRule, window_text

__all__ = ["DEFAULT_MARGIN_S", "DEFAULT_MAX_WAIT_S", "ReservingGuard"]

DEFAULT_MARGIN_S = 0.5
"""How far apart clocks and send times of two workers may be without a window being overrun."""
DEFAULT_MAX_WAIT_S = 5.0
"""The longest a call waits for its booked moment; a later one is refused with QuotaHeld."""


class ReservingGuard(QuotaGuard):
    """Books each call for the moment it goes out, waits for it, or refuses with QuotaHeld."""

    def __init__(
        self,
        store: Store,
        vendor: str,
        rules: tuple[QuotaRule, ...],
        now: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        *,
        margin_s: float = DEFAULT_MARGIN_S,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(store, vendor, rules, now)
        self._sleep = sleep
        self.margin_s = margin_s
        self.max_wait_s = max_wait_s
        self._on_wait = on_wait

    async def acquire(self, rule_name: str, scope_key: str) -> None:
        """Book one call under the rule and wait for its moment, or raise QuotaHeld."""
        rule = self._rules[rule_name]
        key = self._key(rule, scope_key)
        now = self._now()
        booking, used = await run_ingest(
            self._book, key, rule.limit, rule.window_s, now, self.margin_s, self.max_wait_s
        )
        wait_s = (booking.at - now).total_seconds()
        if not booking.booked:
            metrics.record_quota(self._vendor, rule.name, rule.limit, rule.limit)
            raise QuotaHeld(
                f"{self._vendor} allows {rule.limit} {rule.name} calls per {window_text(rule.window_s)}"
                f" per {rule.scope}; the next is possible in {math.ceil(wait_s)} s",
                retry_after_s=wait_s,
            )
        metrics.record_quota(self._vendor, rule.name, used, rule.limit)
        left_s = (booking.at - self._now()).total_seconds()
        if left_s >= 1.0 and self._on_wait is not None:
            self._on_wait(left_s)
        if left_s > 0:
            await self._sleep(left_s)

    def _book(
        self, key: str, limit: int, window_s: int, now: datetime, margin_s: float, max_wait_s: float
    ) -> tuple[Reservation, int]:
        """Book a call and count the window's calls at its moment (one worker-thread hop)."""
        booking = reserve_quota(self._store, key, limit, window_s, now, margin_s, max_wait_s)
        used = self._store.quota_used(key, window_s, booking.at) if booking.booked else limit
        return booking, used
