"""Build a connector for a configured meter, with the vendor's persisted quota guard and tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, cast

import httpx

from meterhub.errors import InputError
from meterhub.model import Meter
from meterhub.poller.clock import Clock
from meterhub.poller.quota import DEFAULT_MARGIN_S, DEFAULT_MAX_WAIT_S, ReservingGuard
from meterhub.store.base import Store
from meterhub.vendors.base import Connector, ConnectorContext, QuotaRule, TokenCache
from meterhub.vendors.registry import CONNECTORS, load_connector

__all__ = [
    "SLOT_MARGIN_S",
    "ConnectorClass",
    "ConnectorFactory",
    "Resolver",
    "declares_history_quota",
    "history_chunk_s",
    "history_rule",
    "known_vendors",
    "min_poll_interval_s",
    "with_connector",
]

T = TypeVar("T")

HTTP_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
"""Per-request limits for vendor calls: a stuck vendor costs a poll, never the poller."""
HTTP_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=16, keepalive_expiry=4.0)
"""Connections the shared HTTP client keeps to vendors.

Idle connections are kept for 4 s, less than servers commonly keep them (5 s is the default of
uvicorn, Node and Apache): a connection the client still counts as open is then rarely one the
server is closing (:mod:`meterhub.vendors.http` retries a GET that meets one anyway). Few are
kept: httpcore checks the socket of every idle connection each time a request enters or leaves
the pool, so with hundreds of polls a burst's leftover idle connections cost each poll more than
opening a connection now and then; and it closes idle connections whenever more than this many
are open, busy ones counted.
"""

SLOT_MARGIN_S = 1.0
"""How much later than our quota ledger allows a freed slot is taken after waiting for it: a
device counts its rate window from when a request reached it, a little after the ledger stamped
it, so a call exactly one window later by the ledger can be too early for the device."""
DEFAULT_HISTORY_CHUNK_S = 86_400
"""The span of one history call when a connector does not declare ``history_chunk_s``."""


class ConnectorClass(Protocol):
    """A connector class: its documented limits as data, built as ``Class(meter, context)``."""

    vendor: str
    quotas: tuple[QuotaRule, ...]
    min_interval_s: int
    default_base_url: str

    def __call__(self, meter: Meter, context: ConnectorContext) -> Connector:
        """Build the connector of one meter."""
        ...

    def quota_scope_keys(self, meter: Meter) -> dict[str, str]:
        """Return the scope key of each quota rule ``meter`` takes (see Connector.quota_scope_keys)."""
        ...


Resolver = Callable[[str], Any]
"""Return the connector class of a vendor name, or raise InputError (default: the registry)."""


def history_chunk_s(connector_class: ConnectorClass) -> int:
    """Return the span one history call covers, as the connector declares it (default one day)."""
    chunk_s = getattr(connector_class, "history_chunk_s", None)
    return int(chunk_s) if isinstance(chunk_s, int | float) and chunk_s > 0 else DEFAULT_HISTORY_CHUNK_S


def history_rule(connector_class: ConnectorClass) -> QuotaRule | None:
    """Return the quota rule each history call takes, if the connector names one."""
    name = getattr(connector_class, "history_quota", None)
    return next((rule for rule in connector_class.quotas if rule.name == name), None)


def declares_history_quota(connector_class: ConnectorClass) -> bool:
    """Return whether the connector says which rule history takes (None: no rule at all)."""
    return hasattr(connector_class, "history_quota")


def min_poll_interval_s(connector_class: ConnectorClass, connector: Connector | None = None) -> int:
    """Return the shortest polling interval: the connector's own, else its vendor's."""
    own = getattr(connector, "min_poll_interval_s", None) if connector is not None else None
    if isinstance(own, int | float) and not isinstance(own, bool) and own > 0:
        return int(own)
    return int(connector_class.min_interval_s)


class ConnectorFactory:
    """Builds connectors sharing one HTTP client, one quota guard and one token cache per vendor.

    The guard books each call for the moment it goes out (:class:`ReservingGuard`), ``margin_s``
    apart from the window's edge, so workers sharing a database never overrun a vendor's limit;
    a call waits up to ``max_wait_s`` for its moment, else it is refused with QuotaHeld;
    ``on_wait`` hears of each wait of a second or more (a command tells its user).
    """

    def __init__(
        self,
        store: Store,
        client: httpx.AsyncClient,
        clock: Clock | None = None,
        resolve: Resolver = load_connector,
        *,
        margin_s: float = DEFAULT_MARGIN_S,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self._store = store
        self._margin_s = margin_s
        self._max_wait_s = max_wait_s
        self._on_wait = on_wait
        self._client = client
        self._clock = clock or Clock()
        self._resolve = resolve
        self._classes: dict[str, ConnectorClass | None] = {}
        self._contexts: dict[str, ConnectorContext] = {}

    def connector_class(self, vendor: str) -> ConnectorClass:
        """Return the connector class of ``vendor`` or raise InputError."""
        found = self._classes.get(vendor)
        if found is None:
            found = cast(ConnectorClass, self._resolve(vendor))
            self._classes[vendor] = found
        return found

    def has_connector(self, vendor: str) -> bool:
        """Return whether meterhub can poll meters of ``vendor``."""
        if vendor not in self._classes:
            try:
                self.connector_class(vendor)
            except InputError:
                self._classes[vendor] = None
        return self._classes[vendor] is not None

    def is_pollable(self, meter: Meter) -> bool:
        """Return whether the poller should poll ``meter``.

        A meter is polled when its vendor has a connector and it carries connection options;
        meters without options (imports, MQTT-fed readers) and ``poll = "no"`` are left alone.
        """
        if not meter.options or meter.options.get("poll", "yes").lower() in {"no", "false", "0"}:
            return False
        return self.has_connector(meter.vendor)

    def context(self, vendor: str) -> ConnectorContext:
        """Return the shared services for connectors of ``vendor``."""
        context = self._contexts.get(vendor)
        if context is None:
            rules = self.connector_class(vendor).quotas
            now = self._clock.now
            context = ConnectorContext(
                self._client,
                TokenCache(self._store, vendor, now=now),
                ReservingGuard(
                    self._store,
                    vendor,
                    rules,
                    now,
                    self._clock.sleep,
                    margin_s=self._margin_s,
                    max_wait_s=self._max_wait_s,
                    on_wait=self._on_wait,
                ),
                now,
                self._clock.sleep,
            )
            self._contexts[vendor] = context
        return context

    def build(self, meter: Meter) -> Connector:
        """Return a connector for ``meter``."""
        return self.connector_class(meter.vendor)(meter, self.context(meter.vendor))

    def poll_interval_s(self, meter: Meter, connector: Connector | None = None) -> int:
        """Return how often to poll ``meter``: its interval, never faster than it allows.

        The limit is the connector's own when it has one (a smart-MAC's rate class), else
        the vendor's ``min_interval_s``.
        """
        return max(meter.interval_s, min_poll_interval_s(self.connector_class(meter.vendor), connector))


def known_vendors() -> tuple[str, ...]:
    """Return the vendors with a connector in the registry."""
    return tuple(name for name, _ in CONNECTORS)


async def with_connector(
    store: Store, meter: Meter, action: Callable[[Connector], Awaitable[T]], clock: Clock | None = None
) -> T:
    """Build the connector of ``meter`` on a fresh HTTP client, run ``action`` on it, close."""
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=HTTP_LIMITS) as client:
        return await action(ConnectorFactory(store, client, clock).build(meter))
