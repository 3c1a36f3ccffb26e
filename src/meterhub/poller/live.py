"""Live reads and relay switches that share a meter's poll schedule and quota.

A person asking for a device's state now must never take the quota slot the poller needs. So a
live read asks the device only when the meter's last call is at least its minimum interval old;
otherwise it is answered from the last stored state with its age. Whatever a live read or a
switch fetches is stored through the same path as a poll and counts as the meter's poll.

ScheduledLive   in the hub's own process: the read or switch runs as the meter's next poll
LedgerLive      anywhere else (an API alone, the CLI): through the quota ledger in the store;
                a poller in another process sees the stored success and waits for the next slot
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

import anyio
import httpx

from meterhub.errors import InputError, QuotaExceeded, VendorError
from meterhub.ingest import Ingestor
from meterhub.model import Extra, Meter, utc_now
from meterhub.poller.clock import Clock
from meterhub.poller.connectors import (
    HTTP_LIMITS,
    HTTP_TIMEOUT,
    SLOT_MARGIN_S,
    ConnectorFactory,
    min_poll_interval_s,
)
from meterhub.poller.recovery import describe_error
from meterhub.poller.scheduler import Fetch, Poller
from meterhub.poller.sink import HealthNote, Sink
from meterhub.store.base import Store
from meterhub.threads import run_ingest
from meterhub.vendors.base import Connector, Fetched

__all__ = ["RELAY_EXTRA", "Contact", "LedgerLive", "LiveReads", "RelaySwitch", "ScheduledLive", "relay_fetch"]

RELAY_EXTRA = "relay_on"
"""The extra series a relay's state is recorded in (1.0 on, 0.0 off)."""


@dataclass(frozen=True, slots=True)
class Contact:
    """What a live read or switch got: the device's fresh answer, or None when it was not asked."""

    fetched: Fetched | None
    """Stored already; None means: answer the last stored state."""
    now: datetime
    """The time of the answer, on the clock the quota is kept by."""
    next_call_in_s: float = 0.0
    """Seconds until the device may be asked again."""


@runtime_checkable
class RelaySwitch(Protocol):
    """A connector that answers a relay switch with a whole reading (a smart-MAC)."""

    async def switch_relay(self, on: bool) -> Fetched:
        """Switch the relay and return what the device reports afterwards."""
        ...


class LiveReads(Protocol):
    """Where live reads and switches go: through the running poller, or the quota ledger."""

    def now(self) -> datetime:
        """Return the time on the clock the quota is kept by."""
        ...

    async def read(self, store: Store, meter: Meter) -> Contact:
        """Ask the device now if its quota allows it without starving the poller, else don't."""
        ...

    async def switch(self, store: Store, meter: Meter, on: bool, max_wait_s: float) -> Contact:
        """Switch the relay in the meter's next turn, waiting up to ``max_wait_s`` for it."""
        ...


def relay_fetch(on: bool) -> Fetch:
    """Return the vendor call that switches a relay and fetches the device's answer."""

    async def fetch(connector: Connector) -> Fetched:
        if isinstance(connector, RelaySwitch):
            return await connector.switch_relay(on)
        # a vendor without a whole answer to a switch (or without a relay: it says so itself)
        reported = await connector.set_relay(on)
        now = utc_now()
        at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the store keeps milliseconds
        return Fetched(extras=[Extra(connector.meter.id, at, RELAY_EXTRA, 1.0 if reported else 0.0)])

    return fetch


class LedgerLive:
    """Live reads and switches through the store's quota ledger, for a process without a poller."""

    def __init__(self, clock: Clock | None = None, on_wait: Callable[[float], None] | None = None) -> None:
        self._clock = clock or Clock()
        self._on_wait = on_wait

    def now(self) -> datetime:
        """Return the time on this clock."""
        return self._clock.now()

    async def read(self, store: Store, meter: Meter) -> Contact:
        """Ask the device if the meter was last asked at least its minimum interval ago."""
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=HTTP_LIMITS) as client:
            # a read never waits for a slot: a slot not free now goes to whoever booked it
            factory = ConnectorFactory(store, client, self._clock, max_wait_s=0.0)
            connector = factory.build(meter)
            min_s = min_poll_interval_s(factory.connector_class(meter.vendor), connector)
            at = self._clock.now()
            wait_s = await self._turn_free_in_s(store, meter.id, at, min_s)
            if wait_s > 0:
                return Contact(None, at, wait_s)
            try:
                return await self._call(store, connector, _latest, min_s)
            except QuotaExceeded as exc:  # the slot is taken (its holder stores its data): say so
                return Contact(None, at, exc.retry_after_s or float(min_s))

    async def switch(self, store: Store, meter: Meter, on: bool, max_wait_s: float) -> Contact:
        """Switch the relay, waiting up to ``max_wait_s`` for the device's next quota slot."""
        deadline = self._clock.now() + timedelta(seconds=max_wait_s)
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=HTTP_LIMITS) as client:
            # The switch books the device's next free slot up to max_wait_s ahead and waits for it,
            # so a poller booking slots as they come can never keep taking it first.
            factory = ConnectorFactory(
                store, client, self._clock, max_wait_s=max(0.0, max_wait_s), on_wait=self._on_wait
            )
            connector = factory.build(meter)
            min_s = min_poll_interval_s(factory.connector_class(meter.vendor), connector)
            while True:
                try:
                    return await self._call(store, connector, relay_fetch(on), min_s)
                except QuotaExceeded as exc:
                    wait_s = exc.retry_after_s
                    if wait_s is None or self._clock.now() + timedelta(seconds=wait_s) > deadline:
                        raise
                    if self._on_wait is not None:
                        self._on_wait(wait_s)
                    await self._clock.sleep(wait_s + SLOT_MARGIN_S)

    async def _call(self, store: Store, connector: Connector, fetch: Fetch, min_s: float) -> Contact:
        """Make one device call and store its answer, or its failure, as the meter's poll."""
        meter_id = connector.meter.id
        at = self._clock.now()
        with anyio.CancelScope(shield=True):  # a caller who stops waiting never loses the reading
            try:
                fetched = await fetch(connector)
            except QuotaExceeded:
                raise  # not asked, or refused unasked: no news of the device
            except VendorError as exc:
                await _store(store, self._clock, None, HealthNote(meter_id, False, at, describe_error(exc)))
                raise
            await _store(store, self._clock, fetched, HealthNote(meter_id, True, at))
        return Contact(fetched, at, float(min_s))

    @staticmethod
    async def _turn_free_in_s(store: Store, meter_id: str, now: datetime, min_s: float) -> float:
        """Return the seconds until the meter's last call (as its health shows) is ``min_s`` old.

        Health is stamped when a call starts; the device counts from when the call reached it.
        """
        health = (await run_ingest(store.health, [meter_id])).get(meter_id)
        if health is None:
            return 0.0
        called = [at for at in (health.last_success, health.last_error_at) if at is not None]
        if not called:
            return 0.0
        return max(0.0, (max(called) + timedelta(seconds=min_s + SLOT_MARGIN_S) - now).total_seconds())


async def _latest(connector: Connector) -> Fetched:
    return await connector.latest()


async def _store(store: Store, clock: Clock, fetched: Fetched | None, health: HealthNote) -> None:
    """Store fetched data and the meter's health through the poller's own write path."""
    await Sink(store, Ingestor(store, now=clock.now)).write(fetched, health)


class ScheduledLive:
    """Live reads and switches as the meter's next poll, in the process that runs the poller."""

    def __init__(self, poller: Poller) -> None:
        self._poller = poller

    def now(self) -> datetime:
        """Return the time on the poller's clock."""
        return self._poller.now()

    def _elsewhere(self) -> LedgerLive:
        return LedgerLive(self._poller.clock)

    async def read(self, store: Store, meter: Meter) -> Contact:
        """Join a poll in flight, poll now if the meter's turn is free, else answer nothing new."""
        if not self._poller.polls(meter.id):  # a meter this poller leaves alone
            return await self._elsewhere().read(store, meter)
        outcome = await self._poller.poll_in_turn(meter.id)
        now = self._poller.now()
        if outcome is None or (outcome.fetched is None and isinstance(outcome.cause, QuotaExceeded)):
            return Contact(None, now, self._poller.turn_free_in_s(meter.id))
        if outcome.cause is not None:
            raise outcome.cause
        return Contact(outcome.fetched, now, self._poller.turn_free_in_s(meter.id))

    async def switch(self, store: Store, meter: Meter, on: bool, max_wait_s: float) -> Contact:
        """Switch the relay as the meter's next poll, waiting up to ``max_wait_s`` for its turn."""
        if not self._poller.polls(meter.id):
            return await self._elsewhere().switch(store, meter, on, max_wait_s)
        outcome = await self._poller.poll_in_turn(meter.id, relay_fetch(on), max_wait_s=max_wait_s)
        if outcome is None:
            raise InputError(f"meter {meter.id!r}: the switch was not made; try again")
        if outcome.cause is not None:
            raise outcome.cause
        return Contact(outcome.fetched, self._poller.now(), self._poller.turn_free_in_s(meter.id))
