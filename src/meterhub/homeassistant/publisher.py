"""Keep a broker's Home Assistant discovery configs and meter states in step with the store.

:meth:`HomeAssistantPublisher.run` is a task of ``meterhub serve``: every ``interval_s`` it asks
the store's change counter, reads the meters' newest values when it moved (three queries), and
publishes only the retained messages whose payload changed: a new reading changes the meter's
state document, a meter going offline its availability, a new meter or quantity its configs. A
meter removed from the store or no longer matched by ``meters`` has its configs removed (empty
retained payloads), as has any config a previous run left on the broker under this hub's node id.

When Home Assistant announces itself (``online`` on ``<discovery_prefix>/status``), everything is
published again. The hub's status topic says ``online`` while it publishes; its last will, and a
clean stop, say ``offline``, so Home Assistant shows the entities unavailable. A lost broker is
reconnected with exponential backoff; a store or broker failure never ends the task.
"""

from __future__ import annotations

import logging
import random
import ssl
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiomqtt
import anyio
import anyio.to_thread

from meterhub.config import resolve_secret
from meterhub.errors import ConfigError
from meterhub.homeassistant.discovery import (
    Message,
    config_messages,
    meter_messages,
    owned_filters,
    present_keys,
    removal_messages,
)
from meterhub.homeassistant.settings import HomeAssistantSettings
from meterhub.meternow import MeterNow, MeterNowCache
from meterhub.model import Meter, utc_now
from meterhub.store.base import Store
from meterhub.store.leases import work_leases

__all__ = [
    "LEASE_KIND",
    "HomeAssistantPublisher",
    "LeaseLost",
    "PublisherCounters",
    "desired_messages",
    "messages_of",
    "publisher_for",
]

log = logging.getLogger(__name__)

LEASE_KIND = "homeassistant"
"""The work lease that lets one worker of several publish to a broker under one node id."""
MIN_LEASE_S = 30.0
"""The shortest publishing lease; it is renewed every round and lasts six rounds at least."""

SYNC_TIMEOUT_S = 30.0
"""How long a one-off publish waits for the broker to hand back the retained topics it holds."""


@dataclass(slots=True)
class PublisherCounters:
    """What the publisher did since it started."""

    connects: int = 0
    connection_failures: int = 0
    published: int = 0
    removed: int = 0
    rounds: int = 0
    births: int = 0
    store_errors: int = 0
    standby: int = 0
    """Rounds waited while another worker held the publishing lease."""
    secret_waits: int = 0
    """Connects put off because a secret reference could not be resolved."""


def desired_messages(
    settings: HomeAssistantSettings,
    meters: Sequence[MeterNow],
    known_keys: dict[str, set[str]],
    configs: dict[tuple[Meter, frozenset[str]], list[Message]] | None = None,
) -> dict[str, str]:
    """Return topic -> payload of every retained message describing the published meters.

    ``known_keys`` holds each meter's entity keys so far; they grow as a meter reports new
    quantities and never shrink while it stays published (an entity does not vanish because
    one reading lacked its value). Meters not published are left out of it. ``configs`` keeps
    each meter's config messages between calls, so thousands of meters cost only their states.
    """
    configs = {} if configs is None else configs
    wanted: dict[str, str] = {}
    published = {item.meter.id for item in meters if settings.publishes(item.meter.id)}
    for meter_id in list(known_keys):
        if meter_id not in published:
            del known_keys[meter_id]
    current = {(item.meter, frozenset(known_keys.get(item.meter.id, ()))) for item in meters}
    for stale in [key for key in configs if key not in current]:
        del configs[stale]  # a meter changed, gained keys or went: its old configs are not needed
    for item in meters:
        if item.meter.id not in published:
            continue
        keys = known_keys.setdefault(item.meter.id, set())
        keys |= present_keys(item)
        key = (item.meter, frozenset(keys))
        if key not in configs:
            configs[key] = config_messages(settings, item.meter, keys)
        for message in meter_messages(settings, item, keys, configs[key]):
            wanted[message.topic] = message.payload
    return wanted


class HomeAssistantPublisher:
    """Publishes the store's meters to an MQTT broker with Home Assistant discovery."""

    def __init__(
        self,
        store: Store,
        settings: HomeAssistantSettings,
        *,
        clock: Callable[[], datetime] = utc_now,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 60.0,
        connect_timeout_s: float = 10.0,
        worker: str | None = None,
        lease_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.counters = PublisherCounters()
        self._cache = MeterNowCache(store)
        self._clock = clock
        self._reconnect_min_s = reconnect_min_s
        self._reconnect_max_s = reconnect_max_s
        self._connect_timeout_s = connect_timeout_s
        self._keys: dict[str, set[str]] = {}
        self._configs: dict[tuple[Meter, frozenset[str]], list[Message]] = {}
        self._wanted: dict[str, str] = {}
        self._sent: dict[str, str] = {}
        self._gone: dict[str, set[str]] = {}
        """Meters no longer published, with their entity keys, to remove at the next publish."""
        self._seen: set[str] = set()
        """Topics under this hub's filters the broker holds a payload on, as heard back."""
        self._worker = worker
        self._leases = work_leases(store) if worker is not None else None
        self._lease_item = f"{settings.node_id}@{settings.host}:{settings.port}"
        self._lease_s = lease_s or max(MIN_LEASE_S, 6 * settings.interval_s)
        self._stop = anyio.Event()
        self._birth = anyio.Event()
        self._connected = anyio.Event()

    def __repr__(self) -> str:
        return f"HomeAssistantPublisher(broker={self.settings.host}:{self.settings.port})"

    @property
    def published_meters(self) -> list[str]:
        """Return the ids of the meters published (as of the last look at the store)."""
        return sorted(self._keys)

    # --- lifecycle ------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`run` to finish: say ``offline`` on the hub's status topic, disconnect, return."""
        self._stop.set()

    async def wait_connected(self) -> None:
        """Wait until the publisher has connected and published once."""
        await self._connected.wait()

    async def run(self) -> None:
        """Publish until :meth:`stop`; reconnect with backoff whenever the broker goes away.

        A secret reference that cannot be resolved (an unset variable, an unreadable file) is
        logged in one line and tried again with the same backoff: the hub keeps polling and
        serving, and publishing starts once the secret is there. With a worker id, only the
        worker holding the publishing lease publishes; the others stand by and take over when
        it stops or dies.
        """
        async with anyio.create_task_group() as task_group:

            async def stopper() -> None:
                await self._stop.wait()
                task_group.cancel_scope.cancel()

            task_group.start_soon(stopper)
            try:
                await self._run_until_cancelled()
            finally:
                with anyio.CancelScope(shield=True):
                    await self._release_lease()

    async def _run_until_cancelled(self) -> None:
        delay_s = self._reconnect_min_s
        last_problem = ""
        while True:
            holder = await self._hold_lease()
            if holder is not None:
                self.counters.standby += 1
                if last_problem != f"standby:{holder}":
                    log.info("worker %s publishes to Home Assistant; this one stands by", holder)
                    last_problem = f"standby:{holder}"
                await anyio.sleep(self._lease_s / 3)
                continue
            problem = ""
            lost = False
            try:
                async with self._client(will=True) as client:
                    self.counters.connects += 1
                    delay_s = self._reconnect_min_s
                    last_problem = ""
                    await self._session(client)
            except* ConfigError as group:
                self.counters.secret_waits += 1
                problem = f"Home Assistant publishing waits: {_first(group)}"
            except* (aiomqtt.MqttError, OSError) as group:
                self.counters.connection_failures += 1
                where = f"{self.settings.host}:{self.settings.port}"
                problem = f"Home Assistant broker {where}: {_first(group)}; retrying"
            except* LeaseLost:
                lost = True
            if lost:
                log.info("another worker took over publishing to Home Assistant")
                continue
            if problem and problem != last_problem:  # said once, not at every retry
                log.error("%s", problem)
                last_problem = problem
            jitter = random.uniform(0.8, 1.2)  # noqa: S311 - spreads reconnects, not security
            await anyio.sleep(delay_s * jitter)
            delay_s = min(delay_s * 2, self._reconnect_max_s)

    async def _hold_lease(self) -> str | None:
        """Take or renew the publishing lease; return the worker holding it instead, or None."""
        if self._leases is None or self._worker is None:
            return None
        try:
            return await anyio.to_thread.run_sync(
                self._leases.take, self._worker, LEASE_KIND, self._lease_item, self._lease_s
            )
        except Exception:  # the database away: keep publishing; a lease lapsing lets another in
            self.counters.store_errors += 1
            log.warning("cannot renew the Home Assistant publishing lease; publishing on", exc_info=True)
            return None

    async def _release_lease(self) -> None:
        if self._leases is None or self._worker is None:
            return
        try:
            await anyio.to_thread.run_sync(self._leases.release, self._worker, LEASE_KIND, [self._lease_item])
        except Exception:  # it lapses by itself
            log.warning("cannot give back the Home Assistant publishing lease", exc_info=True)

    async def publish_once(self) -> int:
        """Connect, publish every meter, remove what this hub left that is no longer wanted.

        Return how many messages were published (removals included). The hub's status topic
        is left ``online``: the values stay as published until the next publish.
        """
        self._credentials()
        async with self._client(will=False) as client:
            await self._refresh()
            stale = await self._retained_topics(client)
            before = self.counters.published + self.counters.removed
            await self._publish(client, self.settings.status_topic, "online")
            await self._publish_changes(client)
            for topic in sorted(stale - set(self._wanted)):
                await self._remove(client, topic)
            return self.counters.published + self.counters.removed - before

    async def unpublish(self) -> int:
        """Remove every entity, state and status this hub's settings publish; return how many."""
        self._credentials()
        async with self._client(will=False) as client:
            topics = await self._retained_topics(client)
            for topic in sorted(topics):
                await self._remove(client, topic)
            await self._remove(client, self.settings.status_topic)
            return len(topics) + 1

    # --- one connection -------------------------------------------------------------------
    def _credentials(self) -> tuple[str | None, str | None]:
        username = resolve_secret(self.settings.username_ref) if self.settings.username_ref else None
        password = resolve_secret(self.settings.password_ref) if self.settings.password_ref else None
        return username, password

    def _client(self, *, will: bool) -> aiomqtt.Client:
        username, password = self._credentials()
        last_will = aiomqtt.Will(self.settings.status_topic, "offline", qos=1, retain=True) if will else None
        tls = ssl.create_default_context() if self.settings.tls else None
        return aiomqtt.Client(
            self.settings.host,
            self.settings.port,
            identifier=self.settings.client_id or None,
            username=username,
            password=password,
            will=last_will,
            tls_context=tls,
            timeout=self._connect_timeout_s,
        )

    async def _session(self, client: aiomqtt.Client) -> None:
        """Publish everything, then follow the store and Home Assistant until stopped or cut off."""
        self._sent.clear()  # a new connection: the broker may have lost or kept anything
        self._seen.clear()
        await client.subscribe(self.settings.birth_topic, qos=1)
        for topic_filter in owned_filters(self.settings):
            await client.subscribe(topic_filter, qos=1)
        try:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(self._listen, client)
                await self._publish(client, self.settings.status_topic, "online")
                log.info(
                    "publishing meters to Home Assistant on %s:%s", self.settings.host, self.settings.port
                )
                while True:
                    if await self._hold_lease() is not None:
                        raise LeaseLost  # another worker publishes now: leave without saying offline
                    await self._round(client)
                    self._connected.set()
                    with anyio.move_on_after(self.settings.interval_s):
                        await self._birth.wait()
                    if self._birth.is_set():
                        self._birth = anyio.Event()
                        self.counters.births += 1
                        self._sent.clear()  # Home Assistant restarted: tell it everything again
        finally:
            if self._stop.is_set():
                with anyio.CancelScope(shield=True), anyio.move_on_after(self._connect_timeout_s):
                    await client.publish(self.settings.status_topic, "offline", qos=1, retain=True)

    async def _round(self, client: aiomqtt.Client) -> None:
        self.counters.rounds += 1
        try:
            await self._refresh()
        except Exception:  # the store failing must not end publishing; the next round retries
            self.counters.store_errors += 1
            log.exception("reading the meters to publish to Home Assistant failed")
            return
        await self._publish_changes(client)

    async def _refresh(self) -> None:
        snapshot = await anyio.to_thread.run_sync(self._cache.snapshot)
        previous = dict(self._keys)
        self._wanted = desired_messages(self.settings, snapshot.at(self._clock()), self._keys, self._configs)
        self._gone = {meter_id: keys for meter_id, keys in previous.items() if meter_id not in self._keys}

    async def _publish_changes(self, client: aiomqtt.Client) -> None:
        for meter_id, keys in self._gone.items():
            for message in removal_messages(self.settings, meter_id, keys):
                await self._remove(client, message.topic)
        self._gone = {}
        for topic, payload in self._wanted.items():
            if self._sent.get(topic) != payload:
                await self._publish(client, topic, payload)
        for topic in sorted(self._seen - set(self._wanted)):  # left by an earlier run, or a meter gone
            await self._remove(client, topic)

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: str) -> None:
        await client.publish(topic, payload, qos=1, retain=True)
        self._sent[topic] = payload
        self.counters.published += 1

    async def _remove(self, client: aiomqtt.Client, topic: str) -> None:
        await client.publish(topic, b"", qos=1, retain=True)
        self._sent.pop(topic, None)
        self._seen.discard(topic)
        self.counters.removed += 1

    async def _listen(self, client: aiomqtt.Client) -> None:
        """Note Home Assistant's birth message, and which of this hub's topics the broker holds."""
        async for message in client.messages:
            topic = message.topic.value
            payload = _text(message.payload)
            if topic == self.settings.birth_topic:
                if payload.strip() == "online":
                    self._birth.set()
                continue
            if payload:
                self._seen.add(topic)
            else:
                self._seen.discard(topic)

    async def _retained_topics(self, client: aiomqtt.Client) -> set[str]:
        """Return the non-empty retained topics the broker holds under this hub's filters.

        A marker published after subscribing comes back after every retained message the
        subscription brought, so its arrival says they are all in.
        """
        marker = f"{self.settings.state_prefix}/sync/{uuid.uuid4().hex}"
        await client.subscribe(marker, qos=1)
        for topic_filter in owned_filters(self.settings):
            await client.subscribe(topic_filter, qos=1)
        await client.publish(marker, "sync", qos=1)
        found: set[str] = set()
        with anyio.fail_after(SYNC_TIMEOUT_S):
            async for message in client.messages:
                topic = message.topic.value
                if topic == marker:
                    break
                if message.retain and _text(message.payload):
                    found.add(topic)
        for topic_filter in (marker, *owned_filters(self.settings)):
            await client.unsubscribe(topic_filter)
        return found


class LeaseLost(Exception):
    """Another worker holds the publishing lease now."""


def _first(group: BaseExceptionGroup[Any]) -> BaseException:
    """Return the first exception of a group, however deeply nested."""
    found: BaseException = group
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0]
    return found


def _text(payload: object) -> str:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload).decode("utf-8", "replace")
    return "" if payload is None else str(payload)


def messages_of(settings: HomeAssistantSettings, meters: Sequence[MeterNow]) -> list[Message]:
    """Return the messages publishing ``meters`` would send, in order (what ``show`` prints)."""
    wanted = desired_messages(settings, meters, {})
    return [Message(settings.status_topic, "online"), *(Message(t, p) for t, p in wanted.items())]


def publisher_for(
    store: Store, settings: HomeAssistantSettings | None, worker: str | None = None
) -> HomeAssistantPublisher | None:
    """Return the publisher ``meterhub serve`` runs, or None when no ``[homeassistant]`` is set.

    With ``worker`` (the hub's worker id), several hubs on one database publish through one of
    them at a time.
    """
    return None if settings is None else HomeAssistantPublisher(store, settings, worker=worker)
