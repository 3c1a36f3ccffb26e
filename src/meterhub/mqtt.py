"""MQTT ingest: subscribe to brokers, map AMS reader payloads, store readings and extras.

::

    sources = [MqttSource("127.0.0.1", 1883, "ams/house", "house-grid", PayloadFormat.JSON)]
    async with MqttSubscriber(store, sources) as subscriber:
        await subscriber.wait_subscribed()
        ...  # readings arrive in the store; subscriber.counters counts what happened

Every reading goes through :class:`meterhub.ingest.Ingestor` (in a worker thread, in small
batches); extras go to ``store.write_extras``. Raw values one device sends in one round become
one reading: a round starts at ``meter/dlms/timestamp``, which the reader sends first, and ends at
the device's next start, or once the device has been quiet for ``raw_window_s``; a topic may come
twice in one round (list-3 and list-4 meters repeat ``meter/id`` and ``meter/type``). A device
that never sends that start has its rounds ended by a topic coming again. A Home Assistant
``energy`` document and the ``power`` one after it (the same meter frame, the same time) become
one reading. Domoticz commands (on a topic other devices share) are collected like raw values: the
reader's electricity command starts a round, a value coming again also does. A malformed
message is counted per topic and logged once per topic; it never stops the subscriber. Readings
go through ingest's validation, and a batch the store refuses anyway is written again message by
message, so one bad message costs only its own readings. A lost broker is reconnected with
exponential backoff; :meth:`MqttSubscriber.stop` ends cleanly, storing what was already received.

Several workers: a single-document source (json, flat) is consumed with an MQTT v5 shared
subscription, ``$share/<group>/<topic>/#``, so the broker hands each message to one worker of the
group. A source whose readings are assembled from several messages (raw, Domoticz, Home
Assistant) keeps a plain subscription: every worker assembles every round, and the round is
stored once (same time, same key). Subscriptions are QoS 1, so the broker re-delivers what a
lost connection left unacknowledged.

A message (or round) that carries the device's time is stored under that time, so any copy of it
is the same row. One without a device time gets a stable identity, a digest of its broker, topic
and payload, claimed in the store's ``tokens`` table (scope ``mqtt-arrival``) with the time of its
first arrival: a copy arriving within the source's ``dedupe_window_s`` (a QoS 1 re-delivery, a
DUP retransmission, a re-delivery after a group member died, the same round assembled by another
worker) takes that same time, and is counted in ``redeliveries`` instead of becoming a second
row. An identical payload after the window is a new message.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import aiomqtt
import anyio
import orjson
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from meterhub.claims import claim_token
from meterhub.config import resolve_secret
from meterhub.errors import ConfigError, PayloadError, UnknownMeterError
from meterhub.ingest import Ingestor, IngestReport
from meterhub.model import Extra, utc_now
from meterhub.mqtt_mapping import (
    HA_STATE_SUFFIXES,
    RAW_ROUND_START,
    RAW_TEXTS,
    MqttSource,
    PayloadFormat,
    arrival_identity,
    decode_json,
    domoticz_values,
    home_assistant_device_time,
    json_device_keys,
    json_device_time,
    json_topic_wanted,
    map_home_assistant,
    map_json,
    map_raw,
    merge_instants,
    parse_raw_number,
    raw_device_time,
    raw_suffix,
)
from meterhub.store.base import Store
from meterhub.threads import run_ingest
from meterhub.vendors.base import Fetched

__all__ = ["MqttCounters", "MqttSource", "MqttSubscriber", "PayloadFormat"]

log = logging.getLogger(__name__)

_QUEUE_SIZE = 1000
ARRIVAL_SCOPE = "mqtt-arrival"
"""The tokens scope holding the first arrival time of each message without a device time."""
_PURGE_EVERY_S = 60.0


@dataclass(slots=True)
class MqttCounters:
    """What the subscriber did since it started (for metrics)."""

    messages: int = 0
    ignored: int = 0
    unmapped: int = 0
    readings_stored: int = 0
    readings_duplicate: int = 0
    readings_rejected: int = 0
    redeliveries: int = 0
    """Messages or rounds without a device time seen before: stored once, at the first time."""
    extras_stored: int = 0
    write_errors: int = 0
    connects: int = 0
    connection_failures: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    """Malformed messages per topic."""

    def snapshot(self) -> dict[str, Any]:
        """Return the counters as plain data."""
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        return {**values, "malformed": dict(self.malformed)}


@dataclass(slots=True)
class _Broker:
    host: str
    port: int
    username_ref: str | None
    password_ref: str | None
    sources: list[tuple[int, MqttSource]]
    up: bool = False

    @property
    def where(self) -> str:
        """Return host:port, part of every message identity."""
        return f"{self.host}:{self.port}"

    @property
    def protocol(self) -> aiomqtt.ProtocolVersion:
        """Return MQTT v5 when a source shares its subscription, else v3.1.1."""
        shared = any(source.group for _, source in self.sources)
        return aiomqtt.ProtocolVersion.V5 if shared else aiomqtt.ProtocolVersion.V311

    def credentials(self) -> tuple[str | None, str | None]:
        """Resolve the references now; raise ConfigError when one is unset."""
        username = resolve_secret(self.username_ref) if self.username_ref else None
        password = resolve_secret(self.password_ref) if self.password_ref else None
        return username, password


@dataclass(slots=True)
class _RawRound:
    """Raw values of one device collected until the round is complete."""

    broker: _Broker
    source: MqttSource
    prefix: str
    last_s: float
    """When the device last sent a value of this round (anyio clock)."""
    received_at: datetime
    started: bool
    """Whether the round began with the reader's round start."""
    numbers: dict[str, float] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        """Say whether this round already holds a value of ``name``."""
        return name in self.numbers or name in self.texts


def _payload_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()


def _whole_messages(batch: list[Fetched], max_readings: int) -> list[list[Fetched]]:
    """Split messages into groups of about ``max_readings`` readings, never splitting one."""
    groups: list[list[Fetched]] = []
    count = max_readings
    for fetched in batch:
        if not fetched.readings:
            continue
        if count + len(fetched.readings) > max_readings:
            groups.append([])
            count = 0
        groups[-1].append(fetched)
        count += len(fetched.readings)
    return groups


def _group(sources: Sequence[MqttSource]) -> list[_Broker]:
    brokers: dict[tuple[str, int, str | None, str | None], _Broker] = {}
    for index, source in enumerate(sources):
        key = (source.host, source.port, source.username_ref, source.password_ref)
        broker = brokers.setdefault(key, _Broker(*key, sources=[]))
        broker.sources.append((index, source))
    return list(brokers.values())


class MqttSubscriber:
    """Subscribes to every configured source and ingests what the AMS readers publish."""

    def __init__(
        self,
        store: Store,
        sources: Sequence[MqttSource],
        *,
        ingestor: Ingestor | None = None,
        raw_window_s: float = 1.0,
        batch_size: int = 500,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 60.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        if not sources:
            raise ConfigError("the MQTT subscriber needs at least one source")
        self.store = store
        self.counters = MqttCounters()
        self._ingestor = ingestor or Ingestor(store)
        self._brokers = _group(sources)
        self._raw_window_s = raw_window_s
        self._batch_size = batch_size
        self._reconnect_min_s = reconnect_min_s
        self._reconnect_max_s = reconnect_max_s
        self._connect_timeout_s = connect_timeout_s
        self._rounds: dict[tuple[int, str], _RawRound] = {}
        self._energy: dict[tuple[int, str], tuple[Fetched, float]] = {}
        """Home Assistant ``energy`` documents waiting for the ``power`` one of the same frame."""
        self._warned: set[str] = set()
        self._stop = anyio.Event()
        self._subscribed = anyio.Event()
        self._send: MemoryObjectSendStream[Fetched] | None = None
        self._task_group: TaskGroup | None = None

    def __repr__(self) -> str:
        where = ", ".join(f"{broker.host}:{broker.port}" for broker in self._brokers)
        return f"MqttSubscriber(brokers=[{where}])"

    # --- lifecycle ------------------------------------------------------------------------
    async def run(self) -> None:
        """Ingest until :meth:`stop`; reconnect with backoff whenever a broker goes away."""
        for broker in self._brokers:
            broker.credentials()  # a missing secret is a configuration error: fail now
        send, receive = anyio.create_memory_object_stream[Fetched](max_buffer_size=_QUEUE_SIZE)
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._write_loop, receive)
            async with send:
                self._send = send
                async with anyio.create_task_group() as producers:
                    for broker in self._brokers:
                        producers.start_soon(self._broker_loop, broker)
                    producers.start_soon(self._raw_tick_loop)
                    await self._stop.wait()
                    producers.cancel_scope.cancel()
                await self._flush_rounds(older_than_s=None)
                self._send = None

    def stop(self) -> None:
        """Ask :meth:`run` to finish: disconnect, store what was received, return."""
        self._stop.set()

    async def wait_subscribed(self) -> None:
        """Wait until every broker has been connected and subscribed to at least once."""
        await self._subscribed.wait()

    async def __aenter__(self) -> MqttSubscriber:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self.run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        self.stop()
        task_group, self._task_group = self._task_group, None
        if task_group is None:
            return None
        return await task_group.__aexit__(exc_type, exc, traceback)

    # --- brokers --------------------------------------------------------------------------
    async def _broker_loop(self, broker: _Broker) -> None:
        delay_s = self._reconnect_min_s
        while True:
            username, password = broker.credentials()
            client = aiomqtt.Client(
                broker.host,
                broker.port,
                username=username,
                password=password,
                timeout=self._connect_timeout_s,
                protocol=broker.protocol,
            )
            try:
                async with client:
                    for topic_filter in sorted({source.subscription for _, source in broker.sources}):
                        await client.subscribe(topic_filter, qos=1)
                    self._connected(broker)
                    delay_s = self._reconnect_min_s
                    async for message in client.messages:
                        await self._on_message(broker, message)
            except aiomqtt.MqttError as exc:
                self.counters.connection_failures += 1
                level = logging.WARNING if broker.up else logging.DEBUG
                log.log(level, "MQTT broker %s:%s: %s; retrying", broker.host, broker.port, exc)
                broker.up = False
                if broker.protocol is aiomqtt.ProtocolVersion.V5 and "protocol" in str(exc).lower():
                    self._warn_once(
                        f"v5:{broker.where}",
                        "MQTT broker %s refuses MQTT v5 (%s), which shared subscriptions need; "
                        'set group = "" on its sources for a plain subscription',
                        broker.where,
                        exc,
                    )
            jitter = random.uniform(0.8, 1.2)  # noqa: S311 - spreads reconnects, not security
            await anyio.sleep(delay_s * jitter)
            delay_s = min(delay_s * 2, self._reconnect_max_s)

    def _connected(self, broker: _Broker) -> None:
        self.counters.connects += 1
        broker.up = True
        topics = ", ".join(sorted({source.subscription for _, source in broker.sources}))
        log.info("subscribed to %s on MQTT broker %s:%s", topics, broker.host, broker.port)
        if all(each.up for each in self._brokers):
            self._subscribed.set()

    # --- messages -------------------------------------------------------------------------
    async def _on_message(self, broker: _Broker, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        self.counters.messages += 1
        used = False
        for index, source in broker.sources:
            split = source.split(topic)
            if split is None:
                continue
            try:
                used |= await self._handle(
                    broker, index, source, split, _payload_bytes(message.payload), message.retain
                )
            except PayloadError as exc:
                used = True
                self._malformed(topic, exc)
            except Exception as exc:  # a message must never stop the subscriber
                used = True
                self._malformed(topic, exc, unexpected=True)
        if not used:
            self.counters.ignored += 1

    def _malformed(self, topic: str, error: Exception, *, unexpected: bool = False) -> None:
        self.counters.malformed[topic] += 1
        if topic in self._warned:
            return
        self._warned.add(topic)
        log.warning(
            "malformed MQTT message on %s: %s (later ones on this topic are only counted)",
            topic,
            error,
            exc_info=error if unexpected else None,
        )

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    async def _handle(
        self,
        broker: _Broker,
        index: int,
        source: MqttSource,
        split: tuple[str, str],
        payload: bytes,
        retained: bool,
    ) -> bool:
        """Map one message for one source; return False when the source has no use for it."""
        prefix, suffix = split
        if source.format is PayloadFormat.RAW:
            return await self._collect_raw(broker, index, source, split, payload, retained)
        if source.format is PayloadFormat.HOME_ASSISTANT:
            return await self._home_assistant(broker, index, source, split, payload)
        if source.format is PayloadFormat.DOMOTICZ:
            return await self._collect_domoticz(broker, index, source, prefix, payload, retained)
        if not json_topic_wanted(suffix):
            return False
        document = decode_json(payload)
        meter_id = source.meter_for(prefix, json_device_keys(document, source.format))
        if meter_id is None:
            self._unmapped(prefix)
            return True
        received_at = utc_now()
        fetched = map_json(document, source.format, meter_id, received_at)
        if (fetched.readings or fetched.extras) and json_device_time(document, source.format) is None:
            topic = f"{prefix}/{suffix}" if suffix else prefix
            stamp = await self._arrival(broker, source, topic, payload, received_at)
            if stamp != received_at:
                fetched = map_json(document, source.format, meter_id, stamp)
        await self._emit(fetched)
        return True

    async def _arrival(
        self, broker: _Broker, source: MqttSource, topic: str, content: bytes, received_at: datetime
    ) -> datetime:
        """Return the time to store a message without a device time under: its first arrival's.

        The first process to claim the message's identity sets the time; a re-delivery within
        the source's window reads it back, so its readings land on the same rows.
        """
        identity = arrival_identity(broker.where, topic, content)
        mine = received_at.isoformat(timespec="microseconds")
        expires = received_at + timedelta(seconds=source.window_s)
        try:
            held = await anyio.to_thread.run_sync(
                claim_token, self.store, ARRIVAL_SCOPE, identity, mine, expires, received_at
            )
        except Exception as exc:  # the write that follows reports a store that is down
            self._warn_once("arrival", "cannot record MQTT message identities: %s", exc)
            return received_at
        if held == mine:
            return received_at
        self.counters.redeliveries += 1
        return datetime.fromisoformat(held)

    async def _home_assistant(
        self, broker: _Broker, index: int, source: MqttSource, split: tuple[str, str], payload: bytes
    ) -> bool:
        """Map a state document; an ``energy`` one waits for the ``power`` one of its frame."""
        prefix, suffix = split
        if suffix not in HA_STATE_SUFFIXES:
            return False
        document = decode_json(payload)
        meter_id = source.meter_for(prefix, json_device_keys(document, source.format))
        if meter_id is None:
            self._unmapped(prefix)
            return True
        received_at = utc_now()
        fetched = map_home_assistant(suffix, document, meter_id, received_at)
        if (fetched.readings or fetched.extras) and home_assistant_device_time(suffix, document) is None:
            stamp = await self._arrival(broker, source, f"{prefix}/{suffix}", payload, received_at)
            if stamp != received_at:
                fetched = map_home_assistant(suffix, document, meter_id, stamp)
        key = (index, prefix)
        waiting = self._energy.pop(key, None)
        if suffix == "energy":
            if waiting is not None:
                await self._emit(waiting[0])
            self._energy[key] = (fetched, anyio.current_time())
        elif waiting is not None:
            await self._emit(merge_instants(waiting[0], fetched))
        else:
            await self._emit(fetched)
        return True

    def _unmapped(self, device: str) -> None:
        self.counters.unmapped += 1
        self._warn_once(f"unmapped:{device}", "no meter is configured for MQTT device %s", device)

    async def _collect_raw(
        self,
        broker: _Broker,
        index: int,
        source: MqttSource,
        split: tuple[str, str],
        payload: bytes,
        retained: bool,
    ) -> bool:
        prefix, suffix = split
        name = raw_suffix(suffix)
        if name is None or retained:  # a retained value is stale: its time is unknown
            return False
        text = payload.decode("utf-8", "replace").strip() if name in RAW_TEXTS else None
        number = parse_raw_number(name, payload) if text is None else None
        key = (index, prefix)
        current = self._rounds.get(key)
        starts = name == RAW_ROUND_START
        if current is not None and (starts or (not current.started and current.has(name))):
            await self._flush_round(key)
            current = None
        if current is None:
            current = _RawRound(broker, source, prefix, anyio.current_time(), utc_now(), started=starts)
            self._rounds[key] = current
        current.last_s = anyio.current_time()
        if text is not None:
            current.texts[name] = text
        elif number is not None:
            current.numbers[name] = number
        return True

    async def _collect_domoticz(
        self, broker: _Broker, index: int, source: MqttSource, prefix: str, payload: bytes, retained: bool
    ) -> bool:
        """Collect the reader's Domoticz values; its electricity command starts a round."""
        if retained:
            return False
        values = domoticz_values(decode_json(payload), source.domoticz)
        if values is None:
            return False  # another device's command on the shared topic
        key = (index, prefix)
        current = self._rounds.get(key)
        starts = "meter/import/accumulated" in values
        if current is not None and (starts or any(current.has(name) for name in values)):
            await self._flush_round(key)
            current = None
        if current is None:
            current = _RawRound(broker, source, prefix, anyio.current_time(), utc_now(), started=starts)
            self._rounds[key] = current
        current.last_s = anyio.current_time()
        current.numbers.update(values)
        return True

    async def _raw_tick_loop(self) -> None:
        purged_s = anyio.current_time()
        while True:
            await anyio.sleep(self._raw_window_s / 4)
            await self._flush_rounds(older_than_s=self._raw_window_s)
            if anyio.current_time() - purged_s >= _PURGE_EVERY_S:
                purged_s = anyio.current_time()
                await self._purge_arrivals()

    async def _purge_arrivals(self) -> None:
        """Forget message identities whose window has passed."""
        try:
            await anyio.to_thread.run_sync(self.store.token_purge, ARRIVAL_SCOPE, utc_now())
        except Exception as exc:  # only housekeeping: the next round tries again
            log.debug("purging MQTT message identities failed: %s", exc)

    async def _flush_rounds(self, older_than_s: float | None) -> None:
        now_s = anyio.current_time()
        for key, round_ in list(self._rounds.items()):
            if older_than_s is None or now_s - round_.last_s >= older_than_s:
                await self._flush_round(key)
        for key, (fetched, since_s) in list(self._energy.items()):
            if older_than_s is None or now_s - since_s >= older_than_s:
                del self._energy[key]
                await self._emit(fetched)

    async def _flush_round(self, key: tuple[int, str]) -> None:
        round_ = self._rounds.pop(key)
        keys = [round_.texts[name] for name in ("meter/id", "id") if round_.texts.get(name)]
        meter_id = round_.source.meter_for(round_.prefix, keys)
        if meter_id is None:
            self._unmapped(round_.prefix)
            return
        try:
            received_at = round_.received_at
            if raw_device_time(round_.numbers) is None:
                content = orjson.dumps(
                    {"numbers": round_.numbers, "texts": round_.texts}, option=orjson.OPT_SORT_KEYS
                )
                received_at = await self._arrival(
                    round_.broker, round_.source, round_.prefix, content, received_at
                )
            fetched = map_raw(round_.numbers, meter_id, received_at)
        except PayloadError as exc:
            self._malformed(f"{round_.prefix}/meter/clock", exc)
            return
        await self._emit(fetched)

    async def _emit(self, fetched: Fetched) -> None:
        if (fetched.readings or fetched.extras) and self._send is not None:
            await self._send.send(fetched)

    # --- writes ---------------------------------------------------------------------------
    async def _write_loop(self, receive: MemoryObjectReceiveStream[Fetched]) -> None:
        async with receive:
            while True:
                try:
                    batch = [await receive.receive()]
                except anyio.EndOfStream:
                    return
                while len(batch) < self._batch_size:
                    try:
                        batch.append(receive.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                await self._write(batch)

    async def _write(self, batch: list[Fetched]) -> None:
        for messages in _whole_messages(batch, self._batch_size):
            await self._write_readings(messages)
        by_meter: dict[str, list[Extra]] = {}
        for fetched in batch:
            for extra in fetched.extras:
                by_meter.setdefault(extra.meter, []).append(extra)
        for meter_id, extras in by_meter.items():
            await self._write_extras(meter_id, extras)

    async def _write_readings(self, messages: list[Fetched]) -> None:
        """Store the readings of several messages; when that fails, each message on its own."""
        readings = [reading for fetched in messages for reading in fetched.readings]
        if not readings:
            return
        try:
            report = await run_ingest(self._ingestor.ingest, readings)
        except Exception:  # the store failing must not stop ingest of later messages
            if len(messages) > 1:
                # One message the store cannot take must not cost the others their readings;
                # writes are idempotent and the failed transaction stored nothing.
                for fetched in messages:
                    await self._write_readings([fetched])
                return
            self.counters.write_errors += 1
            log.exception("storing the %d readings of one MQTT message failed", len(readings))
            return
        self._count(report)

    def _count(self, report: IngestReport) -> None:
        self.counters.readings_stored += report.stored
        self.counters.readings_duplicate += report.duplicates
        self.counters.readings_rejected += report.rejected_count
        for rejection in report.rejections:
            reason = rejection.reason.split(":", 1)[0]
            self._warn_once(f"rejected:{reason}", "MQTT reading rejected: %s", rejection.reason)

    async def _write_extras(self, meter_id: str, extras: list[Extra]) -> None:
        try:
            result = await run_ingest(self.store.write_extras, extras)
        except UnknownMeterError:
            self._warn_once(f"extras:{meter_id}", "MQTT extras for unknown meter %r dropped", meter_id)
            return
        except Exception:
            self.counters.write_errors += 1
            log.exception("storing %d MQTT extras of meter %s failed", len(extras), meter_id)
            return
        self.counters.extras_stored += result.stored
