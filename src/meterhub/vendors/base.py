"""What every vendor connector offers, and the quota guard they all go through.

A connector turns one configured meter into readings. It knows nothing of the store beyond the
two small services handed to it in :class:`ConnectorContext`: a token cache and a quota guard,
both persisted, so restarts never burn a vendor's login quota or exceed a documented limit.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

import anyio
import httpx

from meterhub import metrics
from meterhub.errors import ConfigError, QuotaHeld
from meterhub.model import Extra, IntervalEnergy, Meter, PricePoint, Reading, utc_now
from meterhub.store.base import Store
from meterhub.threads import run_ingest

__all__ = [
    "Connector",
    "ConnectorContext",
    "Discovered",
    "DiscoveredPlace",
    "Fetched",
    "QuotaGuard",
    "QuotaRule",
    "TokenCache",
    "meter_option",
    "missing_options_text",
    "quota_ledger_key",
    "rule_scope_key",
    "window_text",
]


@dataclass(frozen=True, slots=True)
class QuotaRule:
    """A documented vendor limit: at most ``limit`` calls per ``window_s`` per ``scope`` key."""

    name: str
    limit: int
    window_s: int
    scope: str = "meter"
    """What the limit counts by: ``meter`` (an SN or device), ``account`` or ``ip``."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """What one call to a vendor yielded, already mapped to the canonical model."""

    readings: Sequence[Reading] = field(default_factory=list)
    """Readings, or a vendor's :class:`~meterhub.readingblocks.ReadingBlock` that ingest takes as columns."""
    intervals: list[IntervalEnergy] = field(default_factory=list)
    extras: list[Extra] = field(default_factory=list)
    prices: list[PricePoint] = field(default_factory=list)
    """Price points the device or service publishes (an AMS reader's day-ahead prices)."""


@dataclass(frozen=True, slots=True)
class DiscoveredPlace:
    """The place a vendor groups a discovered meter in: ``--add`` creates it and gives the role.

    ``tariff`` holds :mod:`meterhub.placebook` tariff settings the vendor keeps for the place
    (UMeter's customer prices, an AMS reader's capacity thresholds); it is set only on a place
    without a tariff, so one the user chose is never overwritten.
    """

    place_id: str
    role: str
    name: str = ""
    tz: str | None = None
    """The place's zone; None takes the meter's."""
    tariff: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Discovered:
    """A meter an account holds, with the options ``meterhub meters add`` needs for it."""

    suggested_id: str
    vendor: str
    phases: int
    name: str
    options: Mapping[str, str]
    tz: str = "UTC"
    """The vendor's zone where it says; else the zone discovery was asked with (or the hub's)."""
    place: DiscoveredPlace | None = None


def quota_ledger_key(vendor: str, rule: QuotaRule, scope_key: str) -> str:
    """Return the key under which the quota ledger counts calls of ``rule`` for ``scope_key``."""
    return f"{vendor}:{rule.name}:{rule.scope}:{scope_key}"


def rule_scope_key(keys: Mapping[str, str], meter: Meter, rule_name: str) -> str:
    """Return the scope key of ``rule_name`` among a connector's ``quota_scope_keys(meter)``.

    Raise ConfigError when the meter's options give none (the rule needs an option it lacks).
    """
    try:
        return keys[rule_name]
    except KeyError:
        raise ConfigError(
            f"meter {meter.id!r} ({meter.vendor}) lacks the options the {rule_name!r} calls need"
        ) from None


class QuotaGuard:
    """Takes a slot in the persisted quota ledger before each vendor call, or refuses."""

    def __init__(
        self, store: Store, vendor: str, rules: tuple[QuotaRule, ...], now: Callable[[], datetime] = utc_now
    ) -> None:
        self._store = store
        self._vendor = vendor
        self._rules = {rule.name: rule for rule in rules}
        self._now = now

    def _key(self, rule: QuotaRule, scope_key: str) -> str:
        return quota_ledger_key(self._vendor, rule, scope_key)

    async def acquire(self, rule_name: str, scope_key: str) -> None:
        """Record one call under the rule, or raise QuotaHeld with the wait until a slot frees."""
        rule = self._rules[rule_name]
        key = self._key(rule, scope_key)
        now = self._now()
        used = await run_ingest(self._take, key, rule, now)
        if used is not None:
            metrics.record_quota(self._vendor, rule.name, used, rule.limit)
            return
        metrics.record_quota(self._vendor, rule.name, rule.limit, rule.limit)
        free_at = await run_ingest(self._store.quota_next_free, key, rule.limit, rule.window_s, now)
        wait_s = max(0.0, (free_at - now).total_seconds())
        raise QuotaHeld(
            f"{self._vendor} allows {rule.limit} {rule.name} calls per {window_text(rule.window_s)}"
            f" per {rule.scope}; the next is possible in {math.ceil(wait_s)} s",
            retry_after_s=wait_s,
        )

    def _take(self, key: str, rule: QuotaRule, now: datetime) -> int | None:
        """Take a slot and return the slots now used, or None when full (one worker-thread hop)."""
        if not self._store.quota_acquire(key, rule.limit, rule.window_s, now):
            return None
        return self._store.quota_used(key, rule.window_s, now)

    async def used(self, rule_name: str, scope_key: str) -> int:
        """Return the calls recorded under the rule within its window."""
        rule = self._rules[rule_name]
        return await run_ingest(
            self._store.quota_used, self._key(rule, scope_key), rule.window_s, self._now()
        )


def window_text(window_s: int) -> str:
    """Return a quota window for people: minute, hour, 5 minutes, 2 days, 90 s."""
    for unit_s, name in ((86_400, "day"), (3600, "hour"), (60, "minute")):
        if window_s % unit_s == 0:
            count = window_s // unit_s
            return name if count == 1 else f"{count} {name}s"
    return f"{window_s} s"


class TokenCache:
    """Vendor tokens kept in the store, so a restart reuses them instead of logging in again."""

    def __init__(self, store: Store, vendor: str, now: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._scope = f"token:{vendor}"
        self._now = now

    async def get(self, key: str, margin_s: float = 60.0) -> str | None:
        """Return a stored token that stays valid for ``margin_s`` more seconds, else None."""
        found = await run_ingest(self._store.token_get, self._scope, key)
        if found is None:
            return None
        value, expires = found
        if expires is not None and expires <= self._now() + timedelta(seconds=margin_s):
            return None
        return value

    async def put(self, key: str, value: str, expires: datetime | None) -> None:
        """Store a token with its expiry."""
        await run_ingest(self._store.token_set, self._scope, key, value, expires)

    async def forget(self, key: str) -> None:
        """Drop a token the vendor rejected."""
        await run_ingest(self._store.token_delete, self._scope, key)


@dataclass(slots=True)
class ConnectorContext:
    """The services a connector may use: HTTP, the token cache, the quota guard, the clock."""

    client: httpx.AsyncClient
    tokens: TokenCache
    quotas: QuotaGuard
    now: Callable[[], datetime] = utc_now
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    """Wait that many seconds of the same clock as ``now`` (a quota slot frees on that clock)."""


class Connector(Protocol):
    """One configured meter of one vendor.

    Optional class attributes a backfill reads: ``history_chunk_s`` (the span one history
    window covers; one day if absent) and ``history_quota`` (the name of the rule each window
    takes, or None when history calls take none). Optional instance attribute the poller
    reads: ``min_poll_interval_s``, when this meter's limit differs from the vendor's
    ``min_interval_s`` (a smart-MAC device of the extended rate class).
    """

    vendor: ClassVar[str]
    quotas: ClassVar[tuple[QuotaRule, ...]]
    """The vendor's documented limits, as data."""
    min_interval_s: ClassVar[int]
    """The shortest polling interval the vendor allows for ``latest``."""
    default_base_url: ClassVar[str]

    meter: Meter

    async def latest(self) -> Fetched:
        """Return the newest readings (and extras) the vendor has for the meter."""
        ...

    def history(self, start: datetime, end: datetime) -> AsyncIterator[Fetched]:
        """Yield history in [start, end) chunk by chunk within the vendor's limits."""
        ...

    async def discover(self) -> list[Discovered]:
        """Return what the account behind this meter's credentials holds."""
        ...

    @classmethod
    def quota_scope_keys(cls, meter: Meter) -> dict[str, str]:
        """Return, per quota rule a meter of these options takes, the scope key it is counted by.

        Computed from ``meter.options`` alone (no network call); the connector passes exactly
        these keys to ``context.quotas.acquire``, so a status reads the same ledger entries. A
        rule whose key needs an option the meter lacks is left out (the meter cannot make that
        call); a required option missing, or a secret reference not set, raises ConfigError.
        Keys may hold account names: show their counts, never the keys.
        """
        ...

    async def set_relay(self, on: bool) -> bool:
        """Switch the meter's relay and return the state the device reports afterwards."""
        ...


def missing_options_text(
    vendor: str, needed: Sequence[Sequence[str]], options: Mapping[str, str]
) -> str | None:
    """Return what a meter of ``vendor`` lacks, or None when ``options`` hold one set of ``needed``.

    ``needed`` lists alternatives: every option of one of them must be there (a key, or a user
    name and a password). The text names what is missing of the alternative closest to complete.
    """
    gaps = [[name for name in names if not options.get(name, "").strip()] for names in needed]
    if not gaps or any(not gap for gap in gaps):
        return None
    closest = min(gaps, key=len)
    wanted = " or ".join(", ".join(names) for names in needed)
    return f"{vendor} meters need the options {wanted}; missing: {', '.join(closest)}"


def meter_option(meter: Meter, name: str, default: str | None = None) -> str:
    """Return a connection option of a meter, or raise ConfigError naming what is missing."""
    value = meter.options.get(name, default)
    if value is None:
        raise ConfigError(f"meter {meter.id!r} ({meter.vendor}) needs the option {name!r}")
    return value
