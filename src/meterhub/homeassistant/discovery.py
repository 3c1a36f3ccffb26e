"""Home Assistant MQTT discovery: the retained configs and JSON states that describe each meter.

Every published meter is one Home Assistant device (identifiers, name, manufacturer = vendor,
model) with these entities, each created once the meter has reported its value:

- ``power`` (and ``power_l1``..``power_l3``): sensor, device_class ``power``, ``W``, ``measurement``;
- ``energy_import``, ``energy_export``: sensor, device_class ``energy``, ``kWh``, ``total_increasing``:
  what Home Assistant's energy dashboard takes as grid consumption and return;
- ``voltage``/``current`` of the whole meter and of each phase (``voltage_l1``..): ``V``/``A``;
- ``frequency`` (``Hz``);
- ``online``: binary_sensor, device_class ``connectivity`` (``ON``/``OFF``);
- ``last_reading``: sensor, device_class ``timestamp``: when the newest reading was taken.

A meter's values travel together as one retained JSON document on ``<state_prefix>/<meter>/state``;
each entity picks its value with a ``value_template``. Sensors are available while the hub is
(``<state_prefix>/status``, the hub's last will says ``offline``) and the meter is online
(``<state_prefix>/<meter>/availability``); the connectivity sensor only needs the hub.
See https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meterhub import __version__
from meterhub.homeassistant.settings import HomeAssistantSettings
from meterhub.meternow import MeterNow
from meterhub.model import PHASE_TOTAL, Meter

__all__ = [
    "ENTITIES",
    "VENDOR_LABELS",
    "Entity",
    "Message",
    "availability_topic",
    "config_messages",
    "discovery_topic",
    "entity_config",
    "meter_messages",
    "meter_slug",
    "owned_filters",
    "present_keys",
    "removal_messages",
    "state_document",
    "state_topic",
]

VENDOR_LABELS: Mapping[str, str] = {
    "iammeter": "IAMMETER",
    "smartmac": "smart-MAC",
    "intellimeter": "Intellimeter",
    "amsreader": "AMS reader",
    "umeter": "UMeter",
    "file": "Imported data",
}
"""The manufacturer Home Assistant shows for a vendor."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True)
class Entity:
    """One Home Assistant entity of a meter: where its value comes from and how HA shows it."""

    key: str
    """The object id's suffix and the state document's key (with the unit: ``power_w``)."""
    component: str
    name: str
    field: str
    """The reading field the value comes from (``online`` and ``last_reading`` are the meter's)."""
    phase: int
    device_class: str
    state_key: str
    unit: str | None = None
    state_class: str | None = None
    precision: int | None = None
    diagnostic: bool = False


def _phase_entities(
    field: str, key: str, name: str, device_class: str, unit: str, precision: int
) -> list[Entity]:
    suffix = unit.lower()
    found = [
        Entity(
            key,
            "sensor",
            name,
            field,
            PHASE_TOTAL,
            device_class,
            f"{key}_{suffix}",
            unit,
            "measurement",
            precision,
        )
    ]
    for phase in (1, 2, 3):
        found.append(
            Entity(
                f"{key}_l{phase}",
                "sensor",
                f"{name} L{phase}",
                field,
                phase,
                device_class,
                f"{key}_l{phase}_{suffix}",
                unit,
                "measurement",
                precision,
            )
        )
    return found


ENTITIES: tuple[Entity, ...] = (
    *_phase_entities("power_w", "power", "Power", "power", "W", 0),
    Entity(
        "energy_import", "sensor", "Energy import", "energy_import_kwh", PHASE_TOTAL, "energy",
        "energy_import_kwh", "kWh", "total_increasing", 2,
    ),
    Entity(
        "energy_export", "sensor", "Energy export", "energy_export_kwh", PHASE_TOTAL, "energy",
        "energy_export_kwh", "kWh", "total_increasing", 2,
    ),
    *_phase_entities("voltage_v", "voltage", "Voltage", "voltage", "V", 1),
    *_phase_entities("current_a", "current", "Current", "current", "A", 2),
    Entity(
        "frequency", "sensor", "Frequency", "frequency_hz", PHASE_TOTAL, "frequency",
        "frequency_hz", "Hz", "measurement", 2,
    ),
    Entity(
        "online", "binary_sensor", "Online", "online", PHASE_TOTAL, "connectivity", "online",
        diagnostic=True,
    ),
    Entity(
        "last_reading", "sensor", "Last reading", "ts", PHASE_TOTAL, "timestamp", "ts", diagnostic=True
    ),
)  # fmt: skip
"""Every entity a meter may have, in the order they are published."""

_ROUNDING = {"power_w": 1, "voltage_v": 1, "current_a": 3, "frequency_hz": 3}
"""Decimals a value keeps in the state document (registers keep theirs, to the Wh)."""
_REGISTER_DECIMALS = 3


@dataclass(frozen=True, slots=True)
class Message:
    """One retained MQTT message to publish: an empty payload removes what the topic held."""

    topic: str
    payload: str


def meter_slug(meter_id: str) -> str:
    """Return the meter's id as a topic level and object id (letters, digits, ``_`` and ``-``).

    An id with other characters (``.`` or ``:``) has them replaced and a short hash of the whole
    id appended, so ``a.b`` and ``a_b`` stay apart.
    """
    slug = _UNSAFE.sub("_", meter_id)
    if slug == meter_id:
        return slug
    return f"{slug}_{hashlib.sha256(meter_id.encode()).hexdigest()[:6]}"


def discovery_topic(settings: HomeAssistantSettings, entity: Entity, slug: str) -> str:
    """Return ``<discovery_prefix>/<component>/<node_id>/<slug>_<key>/config``."""
    return f"{settings.discovery_prefix}/{entity.component}/{settings.node_id}/{slug}_{entity.key}/config"


def state_topic(settings: HomeAssistantSettings, slug: str) -> str:
    """Return the topic of a meter's JSON state document."""
    return f"{settings.state_prefix}/{slug}/state"


def availability_topic(settings: HomeAssistantSettings, slug: str) -> str:
    """Return the topic saying whether a meter is online (``online``/``offline``)."""
    return f"{settings.state_prefix}/{slug}/availability"


def present_keys(item: MeterNow) -> set[str]:
    """Return the keys of the entities the meter has values for now (online always)."""
    keys = {"online"}
    for entity in ENTITIES:
        if entity.field == "ts":
            if item.newest_at is not None:
                keys.add(entity.key)
            continue
        reading = item.phases.get(entity.phase)
        if reading is not None and entity.field != "online" and getattr(reading, entity.field) is not None:
            keys.add(entity.key)
    return keys


def _value(item: MeterNow, entity: Entity) -> Any:
    if entity.field == "online":
        return item.online
    if entity.field == "ts":
        return None if item.newest_at is None else item.newest_at.isoformat(timespec="seconds")
    reading = item.phases.get(entity.phase)
    value = None if reading is None else getattr(reading, entity.field)
    if value is None:
        return None
    decimals = _ROUNDING.get(entity.field, _REGISTER_DECIMALS)
    return round(float(value), decimals)


def state_document(item: MeterNow, keys: Iterable[str]) -> dict[str, Any]:
    """Return the meter's state document: each entity's value under its state key (null: unknown)."""
    wanted = set(keys)
    return {entity.state_key: _value(item, entity) for entity in ENTITIES if entity.key in wanted}


def _device(settings: HomeAssistantSettings, meter: Meter, slug: str) -> dict[str, Any]:
    label = VENDOR_LABELS.get(meter.vendor, meter.vendor)
    phases = "single-phase" if meter.phases == 1 else f"{meter.phases}-phase"
    return {
        "identifiers": [f"{settings.node_id}_{slug}"],
        "name": meter.name or meter.id,
        "manufacturer": label,
        "model": f"{label} meter ({phases})",
        "serial_number": meter.id,
        "sw_version": f"meterhub {__version__}",
    }


def _template(entity: Entity) -> str:
    if entity.component == "binary_sensor":
        return f"{{{{ 'ON' if value_json.{entity.state_key} else 'OFF' }}}}"
    return f"{{{{ value_json.{entity.state_key} }}}}"


def entity_config(settings: HomeAssistantSettings, meter: Meter, entity: Entity, slug: str) -> dict[str, Any]:
    """Return the discovery config of one entity of a meter."""
    hub = {"topic": settings.status_topic, "payload_available": "online", "payload_not_available": "offline"}
    own = {
        "topic": availability_topic(settings, slug),
        "payload_available": "online",
        "payload_not_available": "offline",
    }
    config: dict[str, Any] = {
        "name": entity.name,
        "unique_id": f"{settings.node_id}_{slug}_{entity.key}",
        "state_topic": state_topic(settings, slug),
        "value_template": _template(entity),
        "device_class": entity.device_class,
    }
    if entity.unit is not None:
        config["unit_of_measurement"] = entity.unit
    if entity.state_class is not None:
        config["state_class"] = entity.state_class
    if entity.precision is not None:
        config["suggested_display_precision"] = entity.precision
    if entity.component == "binary_sensor":
        config["payload_on"] = "ON"
        config["payload_off"] = "OFF"
        config["availability"] = [hub]
    else:
        config["availability"] = [hub, own]
        config["availability_mode"] = "all"
    if entity.diagnostic:
        config["entity_category"] = "diagnostic"
    config["device"] = _device(settings, meter, slug)
    config["origin"] = {"name": "meterhub", "sw_version": __version__}
    config["qos"] = 1
    return config


def _dump(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=False, separators=(",", ":"), ensure_ascii=False)


def config_messages(settings: HomeAssistantSettings, meter: Meter, keys: Iterable[str]) -> list[Message]:
    """Return the retained discovery configs of a meter's entities with these keys."""
    slug = meter_slug(meter.id)
    wanted = set(keys)
    return [
        Message(discovery_topic(settings, entity, slug), _dump(entity_config(settings, meter, entity, slug)))
        for entity in ENTITIES
        if entity.key in wanted
    ]


def meter_messages(
    settings: HomeAssistantSettings,
    item: MeterNow,
    keys: Iterable[str],
    configs: list[Message] | None = None,
) -> list[Message]:
    """Return the retained messages that describe a meter: configs, availability, then state.

    ``configs`` are the meter's config messages when already built (they change only with the
    meter or its keys), else they are built here.
    """
    slug = meter_slug(item.meter.id)
    wanted = set(keys)
    messages = list(configs) if configs is not None else config_messages(settings, item.meter, wanted)
    messages.append(Message(availability_topic(settings, slug), "online" if item.online else "offline"))
    messages.append(Message(state_topic(settings, slug), _dump(state_document(item, wanted))))
    return messages


def removal_messages(settings: HomeAssistantSettings, meter_id: str, keys: Iterable[str]) -> list[Message]:
    """Return the empty retained messages that remove a meter's entities and clear its topics."""
    slug = meter_slug(meter_id)
    wanted = set(keys)
    messages = [Message(discovery_topic(settings, e, slug), "") for e in ENTITIES if e.key in wanted]
    messages.append(Message(availability_topic(settings, slug), ""))
    messages.append(Message(state_topic(settings, slug), ""))  # last: once it is empty, all are
    return messages


def owned_filters(settings: HomeAssistantSettings) -> tuple[str, ...]:
    """Return topic filters matching every retained topic a hub with these settings publishes."""
    return (
        f"{settings.discovery_prefix}/+/{settings.node_id}/+/config",
        f"{settings.state_prefix}/+/state",
        f"{settings.state_prefix}/+/availability",
    )
