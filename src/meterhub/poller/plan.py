"""How long a backfill takes under the vendor's quotas, and the windows it is fetched in.

A backfill is fetched in windows of the connector's history chunk (``history_chunk_s``, one day
unless it declares another), aligned to the meter's local midnights for whole days. What a window
costs in quota is measured, not guessed: the backfill's connector gets a :class:`CountingGuard`,
which grants slots exactly like the poller's :class:`~meterhub.poller.quota.ReservingGuard` and
counts them per rule, so after the first window the plan knows which limits history calls take
and how long the rest must wait for them. A connector may also declare ``history_quota`` (the
rule one history call takes, or None for none), which lets the plan say so before the first call.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import anyio

from meterhub.model import utc_now
from meterhub.poller.connectors import ConnectorClass, declares_history_quota, history_chunk_s, history_rule
from meterhub.poller.quota import ReservingGuard
from meterhub.store.base import Store
from meterhub.timeutil import get_zone
from meterhub.vendors.base import QuotaRule

__all__ = [
    "CountingGuard",
    "HistoryPlan",
    "QuotaUse",
    "count_windows",
    "declared_plan",
    "measured_plan",
    "quota_wait_s",
    "span_text",
    "window_end",
]


def window_end(start: datetime, chunk_s: int, tz: str = "UTC") -> datetime:
    """Return where the history window from ``start`` ends.

    Whole-day chunks end at a local midnight of ``tz`` (vendors keep history by local day, so a
    window never splits one of their days); other chunks end on a UTC multiple of ``chunk_s``.
    """
    if chunk_s % 86_400 == 0:
        zone = get_zone(tz)
        day = start.astimezone(zone).date() + timedelta(days=chunk_s // 86_400)
        return datetime.combine(day, time(), zone).astimezone(UTC)
    edge_s = (math.floor(start.timestamp() / chunk_s) + 1) * chunk_s
    return datetime.fromtimestamp(edge_s, UTC)


def count_windows(start: datetime, end: datetime, chunk_s: int, tz: str = "UTC") -> int:
    """Return how many windows [start, end) is fetched in."""
    count = 0
    while start < end:
        start = window_end(start, chunk_s, tz)
        count += 1
    return count


def quota_wait_s(rule: QuotaRule, calls: float, used: int) -> float:
    """Return how long ``calls`` more calls must wait under ``rule`` with ``used`` taken already."""
    available = max(0, rule.limit - used)
    if calls <= available:
        return 0.0
    return math.ceil((calls - available) / rule.limit) * float(rule.window_s)


def span_text(seconds: float) -> str:
    """Return a duration for people: 3 days, 2 h 5 min, 40 s."""
    whole_s = max(0, math.ceil(seconds))
    days, rest_s = divmod(whole_s, 86_400)
    hours, rest_s = divmod(rest_s, 3600)
    minutes, secs = divmod(rest_s, 60)
    parts = [
        f"{days} day{'s' if days != 1 else ''}" if days else "",
        f"{hours} h" if hours else "",
        f"{minutes} min" if minutes else "",
        f"{secs} s" if secs and not days else "",
    ]
    return " ".join(part for part in parts if part) or "0 s"


class CountingGuard(ReservingGuard):
    """A quota guard that also counts the slots it grants, per rule and scope key."""

    def __init__(
        self,
        store: Store,
        vendor: str,
        rules: tuple[QuotaRule, ...],
        now: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        super().__init__(store, vendor, rules, now, sleep)
        self.rules = {rule.name: rule for rule in rules}
        self.taken: Counter[tuple[str, str]] = Counter()
        """Slots granted, by (rule name, scope key)."""

    async def acquire(self, rule_name: str, scope_key: str) -> None:
        """Take a slot as :class:`ReservingGuard` does, and count it."""
        await super().acquire(rule_name, scope_key)
        self.taken[(rule_name, scope_key)] += 1


@dataclass(frozen=True, slots=True)
class QuotaUse:
    """One limit that history calls take: calls per window, and slots already used now."""

    rule: QuotaRule
    calls_per_window: float
    used: int


@dataclass(frozen=True, slots=True)
class HistoryPlan:
    """The windows a backfill still needs and the quota limits they take."""

    vendor: str
    windows: int
    chunk_s: int
    uses: tuple[QuotaUse, ...]
    measured: bool

    @property
    def wait_s(self) -> float:
        """Return the least time the quotas make the remaining windows take."""
        return max(
            (quota_wait_s(u.rule, u.calls_per_window * self.windows, u.used) for u in self.uses),
            default=0.0,
        )

    def describe(self) -> str:
        """Return one sentence for people."""
        plural = "s" if self.windows != 1 else ""
        head = f"{self.vendor}: {self.windows} history window{plural} of {span_text(self.chunk_s)}"
        if not self.uses:
            if self.measured:
                return f"{head}; no documented quota limits them, so no waits"
            return f"{head}; the quota wait is measured after the first window"
        limits = ", ".join(
            f"{u.calls_per_window:g} {u.rule.name} call(s) each, at most {u.rule.limit} per "
            f"{span_text(u.rule.window_s)} per {u.rule.scope}"
            for u in self.uses
        )
        if self.wait_s <= 0:
            return f"{head} ({limits}); the quota allows them without waiting"
        return f"{head} ({limits}); the quota makes this take at least {span_text(self.wait_s)}"


def declared_plan(connector_class: ConnectorClass, windows: int) -> HistoryPlan:
    """Return the plan from what the connector declares (before any call)."""
    rule = history_rule(connector_class)
    uses = (QuotaUse(rule, 1.0, 0),) if rule is not None else ()
    known = rule is not None or declares_history_quota(connector_class)
    return HistoryPlan(str(connector_class.vendor), windows, history_chunk_s(connector_class), uses, known)


async def measured_plan(
    guard: CountingGuard, vendor: str, chunk_s: int, windows_done: int, windows_left: int
) -> HistoryPlan:
    """Return the plan from the slots the first ``windows_done`` windows took."""
    uses = []
    for (name, scope_key), count in sorted(guard.taken.items()):
        rule = guard.rules[name]
        used = await guard.used(name, scope_key)
        uses.append(QuotaUse(rule, count / max(1, windows_done), used))
    return HistoryPlan(vendor, windows_left, chunk_s, tuple(uses), True)
