"""Publish a simulated AMS reader's payloads to an MQTT broker every few seconds.

Use it as an async context manager (it runs in a background task and stops cleanly on exit),
or await :meth:`AmsPublisher.run` and call :meth:`AmsPublisher.stop` from elsewhere::

    async with AmsPublisher(device, PublisherConfig(topic="ams/1", interval_s=2)):
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import TracebackType

import aiomqtt

from meterhub.errors import VendorUnavailable

from .device import ReaderDevice
from .mqttpayloads import domoticz_messages, home_assistant_messages, json_classic, raw_messages

__all__ = ["AmsPublisher", "PayloadFormat", "PublisherConfig"]


class PayloadFormat(StrEnum):
    """The payload formats this simulator publishes."""

    JSON = "json"
    """JSON classic: one document on ``<topic>``."""
    RAW = "raw"
    """Raw: one value per topic under ``<topic>/``."""
    HOME_ASSISTANT = "homeassistant"
    """Home Assistant: state documents on ``<topic>/energy``, ``/power`` and ``/realtime``."""
    DOMOTICZ = "domoticz"
    """Domoticz: ``udevice`` commands on ``domoticz_topic`` for the idx numbers in ``domoticz``."""


@dataclass(frozen=True, slots=True)
class PublisherConfig:
    """Where and how often to publish."""

    host: str = "127.0.0.1"
    port: int = 1883
    topic: str = "amsreader"
    interval_s: float = 10.0
    formats: Sequence[PayloadFormat] = (PayloadFormat.JSON, PayloadFormat.RAW)
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    connect_timeout_s: float = 5.0
    domoticz_topic: str = "domoticz/in"
    domoticz: Mapping[str, int] = field(
        default_factory=lambda: {"elidx": 1, "vl1idx": 2, "vl2idx": 3, "vl3idx": 4, "cl1idx": 5}
    )


class AmsPublisher:
    """Push the reader's state to a broker on the device's simulated clock."""

    def __init__(self, device: ReaderDevice, config: PublisherConfig | None = None) -> None:
        self.device = device
        self.config = config or PublisherConfig(
            host=device.config.mqtt_host,
            port=device.config.mqtt_port,
            topic=device.config.mqtt_topic,
            interval_s=device.config.mqtt_interval_s,
        )
        self.published_count = 0
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def messages(self, now: datetime) -> list[tuple[str, str]]:
        """Return every (topic, payload) to publish at ``now``; none while offline."""
        if self.device.is_offline(now):
            return []
        snapshot = self.device.snapshot(now)
        topic = self.config.topic
        messages: list[tuple[str, str]] = []
        if PayloadFormat.JSON in self.config.formats:
            messages.append((topic, json.dumps(json_classic(self.device, snapshot))))
        if PayloadFormat.RAW in self.config.formats:
            messages.extend(raw_messages(self.device, snapshot, topic))
        if PayloadFormat.HOME_ASSISTANT in self.config.formats:
            messages.extend(home_assistant_messages(self.device, snapshot, topic))
        if PayloadFormat.DOMOTICZ in self.config.formats:
            config = self.config
            messages.extend(domoticz_messages(self.device, snapshot, config.domoticz_topic, config.domoticz))
        return messages

    async def publish_once(self, client: aiomqtt.Client) -> int:
        """Publish the payloads of the current simulated instant; return how many."""
        now = self.device.clock.now()
        messages = await asyncio.to_thread(self.messages, now)
        for topic, payload in messages:
            await client.publish(topic, payload=payload)
        self.published_count += len(messages)
        return len(messages)

    async def run(self) -> None:
        """Connect and publish every ``interval_s`` until :meth:`stop` is called."""
        config = self.config
        client = aiomqtt.Client(
            config.host,
            config.port,
            username=config.username,
            password=config.password,
            identifier=config.client_id,
            timeout=config.connect_timeout_s,
        )
        try:
            async with client:
                while not self._stopping.is_set():
                    await self.publish_once(client)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), config.interval_s)
                await self._drain(client)
        except aiomqtt.MqttError as exc:
            raise VendorUnavailable(
                f"cannot publish to MQTT broker {config.host}:{config.port}: {exc}"
            ) from exc

    async def _drain(self, client: aiomqtt.Client) -> None:
        """Return once the broker has handled every message published so far.

        A QoS 0 publish returns once it is written to the socket; the broker handles one
        client's packets in order, so its answer to an unsubscribe comes after all of them.
        """
        await client.unsubscribe(f"{self.config.topic}/#")

    def stop(self) -> None:
        """Ask :meth:`run` to finish after the current round."""
        self._stopping.set()

    async def __aenter__(self) -> AmsPublisher:
        self._stopping.clear()
        self._task = asyncio.create_task(self.run(), name="amsreader-publisher")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        if self._task is not None:
            task, self._task = self._task, None
            await task
