"""Home Assistant's documented MQTT discovery rules, as data, to check published payloads against.

Sources:
- discovery topics and payloads: https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery
  (topic ``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config``; node and object ids
  of ``[a-zA-Z0-9_-]``; an empty retained payload deletes the entity; the birth message
  ``online`` on ``homeassistant/status``);
- the MQTT sensor: https://www.home-assistant.io/integrations/sensor.mqtt/ (``state_topic`` is
  required; ``availability`` items need ``topic``; ``availability_mode`` all/any/latest);
- the MQTT binary sensor: https://www.home-assistant.io/integrations/binary_sensor.mqtt/
  (``payload_on``/``payload_off``, default ``ON``/``OFF``);
- sensor device classes, their units and state classes:
  https://developers.home-assistant.io/docs/core/entity/sensor/#available-device-classes and
  https://developers.home-assistant.io/docs/core/entity/sensor/#available-state-classes
  (the energy dashboard takes ``energy`` sensors with state class ``total`` or
  ``total_increasing``: https://www.home-assistant.io/docs/energy/faq/);
- binary sensor device classes:
  https://developers.home-assistant.io/docs/core/entity/binary-sensor/#available-device-classes.
"""

from __future__ import annotations

import re
from typing import Any

import jinja2

DISCOVERY_TOPIC = re.compile(
    r"(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config"
)
"""What follows ``<discovery_prefix>/`` in a discovery topic (Home Assistant's own pattern)."""

REQUIRED = {"sensor": {"state_topic"}, "binary_sensor": {"state_topic"}}

KNOWN_KEYS = {
    "common": {
        "availability",
        "availability_mode",
        "availability_template",
        "availability_topic",
        "device",
        "device_class",
        "enabled_by_default",
        "entity_category",
        "expire_after",
        "force_update",
        "icon",
        "json_attributes_template",
        "json_attributes_topic",
        "name",
        "object_id",
        "default_entity_id",
        "origin",
        "payload_available",
        "payload_not_available",
        "qos",
        "state_topic",
        "unique_id",
        "value_template",
        "encoding",
    },
    "sensor": {
        "last_reset_value_template",
        "options",
        "state_class",
        "suggested_display_precision",
        "unit_of_measurement",
    },
    "binary_sensor": {"off_delay", "payload_off", "payload_on"},
}

DEVICE_KEYS = {
    "configuration_url",
    "connections",
    "hw_version",
    "identifiers",
    "manufacturer",
    "model",
    "model_id",
    "name",
    "serial_number",
    "suggested_area",
    "sw_version",
    "via_device",
}

SENSOR_UNITS: dict[str, set[str | None]] = {
    "power": {"mW", "W", "kW", "MW", "GW", "TW", "BTU/h"},
    "energy": {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal", "Mcal", "Gcal"},
    "voltage": {"µV", "mV", "V", "kV", "MV"},
    "current": {"mA", "A"},
    "frequency": {"Hz", "kHz", "MHz", "GHz"},
    "timestamp": {None},
}
"""Units each sensor device class accepts (None: no unit allowed)."""

SENSOR_STATE_CLASSES: dict[str, set[str | None]] = {
    "power": {"measurement"},
    "energy": {"total", "total_increasing"},
    "voltage": {"measurement"},
    "current": {"measurement"},
    "frequency": {"measurement"},
    "timestamp": {None},
}
"""State classes each sensor device class accepts (None: none allowed)."""

BINARY_SENSOR_CLASSES = {"connectivity", "power", "problem", "running", "plug"}
ENTITY_CATEGORIES = {"config", "diagnostic"}
AVAILABILITY_MODES = {"all", "any", "latest"}


def problems(prefix: str, topic: str, config: dict[str, Any]) -> list[str]:
    """Return how a discovery config breaks Home Assistant's documented rules (empty: none)."""
    found: list[str] = []
    if not topic.startswith(prefix + "/"):
        return [f"{topic}: not under the discovery prefix {prefix}"]
    match = DISCOVERY_TOPIC.fullmatch(topic.removeprefix(prefix + "/"))
    if match is None:
        return [f"{topic}: not a discovery topic"]
    component = match["component"]
    if component not in REQUIRED:
        return [f"{topic}: component {component} is not a sensor or binary_sensor"]
    found += [f"{topic}: missing {key}" for key in sorted(REQUIRED[component] - set(config))]
    unknown = set(config) - KNOWN_KEYS["common"] - KNOWN_KEYS[component]
    found += [f"{topic}: unknown key {key}" for key in sorted(unknown)]
    device_class = config.get("device_class")
    if component == "sensor":
        if device_class not in SENSOR_UNITS:
            found.append(f"{topic}: device_class {device_class} not checked here")
        else:
            if config.get("unit_of_measurement") not in SENSOR_UNITS[device_class]:
                found.append(f"{topic}: unit {config.get('unit_of_measurement')} invalid for {device_class}")
            if config.get("state_class") not in SENSOR_STATE_CLASSES[device_class]:
                found.append(f"{topic}: state_class {config.get('state_class')} invalid for {device_class}")
    elif device_class not in BINARY_SENSOR_CLASSES:
        found.append(f"{topic}: binary sensor device_class {device_class} unknown")
    if "entity_category" in config and config["entity_category"] not in ENTITY_CATEGORIES:
        found.append(f"{topic}: entity_category {config['entity_category']} invalid")
    if config.get("availability_mode", "latest") not in AVAILABILITY_MODES:
        found.append(f"{topic}: availability_mode invalid")
    for item in config.get("availability", []):
        if "topic" not in item:
            found.append(f"{topic}: availability item without topic")
    device = config.get("device", {})
    if not device.get("identifiers") and not device.get("connections"):
        found.append(f"{topic}: device without identifiers or connections")
    found += [f"{topic}: unknown device key {key}" for key in sorted(set(device) - DEVICE_KEYS)]
    if "device" in config and "unique_id" not in config:
        found.append(f"{topic}: device info needs a unique_id")
    return found


_TEMPLATES = jinja2.Environment(autoescape=False)


def render(template: str, value_json: dict[str, Any]) -> str:
    """Render a value_template as Home Assistant does: Jinja with ``value_json`` the parsed payload."""
    return _TEMPLATES.from_string(template).render(value_json=value_json)
