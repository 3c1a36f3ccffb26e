"""The ``[homeassistant]`` section of ``meterhub.toml``.

::

    [homeassistant]
    broker = "mqtt://127.0.0.1:1883"     # mqtt:// or mqtts:// (TLS); default port 1883 / 8883
    username_ref = "env:MQTT_USER"       # optional; secret references only
    password_ref = "env:MQTT_PASSWORD"
    discovery_prefix = "homeassistant"   # Home Assistant's discovery prefix
    state_prefix = "meterhub"            # meterhub's state, availability and status topics
    node_id = "meterhub"                 # tells this hub's entities apart from another hub's
    meters = ["*"]                       # meter ids or globs (house-*) to publish
    interval_s = 5                       # how often new readings are looked for

The section's presence turns publishing on within ``meterhub serve``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

from meterhub.errors import ConfigError

__all__ = ["DEFAULT_BROKER", "HomeAssistantSettings", "parse_homeassistant", "settings_rows"]

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
"""The broker published to when the section names none."""

_TOPIC_PREFIX = re.compile(r"[^\s#+]+")
"""A topic prefix: no wildcards, no blanks (levels are separated by /)."""
_NODE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""Home Assistant's discovery topic allows a node id of these characters only."""
_FIELDS = {
    "broker",
    "username_ref",
    "password_ref",
    "discovery_prefix",
    "state_prefix",
    "node_id",
    "meters",
    "interval_s",
    "client_id",
}


@dataclass(frozen=True, slots=True)
class HomeAssistantSettings:
    """Where and what the Home Assistant publisher publishes."""

    broker: str = DEFAULT_BROKER
    username_ref: str | None = None
    password_ref: str | None = None
    discovery_prefix: str = "homeassistant"
    state_prefix: str = "meterhub"
    node_id: str = "meterhub"
    meters: tuple[str, ...] = ("*",)
    """Meter ids or shell-style globs; a meter is published when one matches."""
    interval_s: float = 5.0
    client_id: str = ""
    """The MQTT client id (empty: the broker's choice)."""

    @property
    def host(self) -> str:
        """Return the broker's host name."""
        return urlsplit(self.broker).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        """Return the broker's port (1883, or 8883 for mqtts://, unless the URL names one)."""
        parts = urlsplit(self.broker)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        """Say whether the broker is spoken to over TLS (``mqtts://``)."""
        return urlsplit(self.broker).scheme == "mqtts"

    @property
    def birth_topic(self) -> str:
        """Return the topic Home Assistant announces itself on (``online`` after it starts)."""
        return f"{self.discovery_prefix}/status"

    @property
    def status_topic(self) -> str:
        """Return the hub's own availability topic: ``online`` while it publishes, else ``offline``."""
        return f"{self.state_prefix}/status"

    def publishes(self, meter_id: str) -> bool:
        """Say whether the meter is one to publish."""
        return any(fnmatchcase(meter_id, pattern) for pattern in self.meters)


def parse_homeassistant(table: object, where: str = "meterhub.toml") -> HomeAssistantSettings | None:
    """Check the ``[homeassistant]`` table of a config file; None when there is none."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [homeassistant] must be a table")
    unknown = sorted(set(table) - _FIELDS)
    if unknown:
        known = ", ".join(sorted(_FIELDS))
        raise ConfigError(f"{where}: unknown [homeassistant] setting(s) {', '.join(unknown)}; use {known}")
    here = f"{where}: [homeassistant]"
    values: dict[str, Any] = {}
    values["broker"] = _broker(table.get("broker", DEFAULT_BROKER), here)
    for name in ("username_ref", "password_ref"):
        if name in table:
            values[name] = _reference(table[name], f"{here} {name}")
    for name in ("discovery_prefix", "state_prefix"):
        if name in table:
            values[name] = _prefix(table[name], f"{here} {name}")
    if "node_id" in table:
        node_id = table["node_id"]
        if not isinstance(node_id, str) or not _NODE_ID.fullmatch(node_id):
            raise ConfigError(f"{here} node_id must be 1-64 letters, digits, _ or -")
        values["node_id"] = node_id
    if "meters" in table:
        values["meters"] = _meters(table["meters"], f"{here} meters")
    if "interval_s" in table:
        interval_s = table["interval_s"]
        number = isinstance(interval_s, int | float) and not isinstance(interval_s, bool)
        if not number or not 0.1 <= interval_s <= 3600:
            raise ConfigError(f"{here} interval_s must be a number of seconds from 0.1 to 3600")
        values["interval_s"] = float(interval_s)
    if "client_id" in table:
        client_id = table["client_id"]
        if not isinstance(client_id, str) or len(client_id) > 128:
            raise ConfigError(f"{here} client_id must be a string of at most 128 characters")
        values["client_id"] = client_id
    return HomeAssistantSettings(**values)


def _broker(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} broker must be a URL like mqtt://host:1883")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise ConfigError(f"{where} broker {value!r} is not a usable URL: {exc}") from exc
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(f"{where} broker must be a URL like mqtt://host:1883 or mqtts://host:8883")
    if parts.username or parts.password:
        raise ConfigError(
            f"{where} broker must not hold credentials; give username_ref and password_ref "
            "as references like env:VARIABLE_NAME"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{where} broker must be only scheme, host and port, like mqtt://host:1883")
    return value


def _reference(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.startswith(("env:", "file:")) or len(value) <= 5:
        raise ConfigError(f"{where} must be a reference like env:VARIABLE_NAME, never the secret itself")
    return value


def _prefix(value: object, where: str) -> str:
    if (
        not isinstance(value, str)
        or not _TOPIC_PREFIX.fullmatch(value)
        or value.startswith("/")
        or value.endswith("/")
        or "//" in value
    ):
        raise ConfigError(
            f"{where} must be a topic prefix like homeassistant: no wildcards, blanks or empty levels"
        )
    return value


def _meters(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f'{where} must be "*" or a list of meter ids and globs like ["house", "flat-*"]')
    return tuple(value)


def settings_rows(settings: HomeAssistantSettings) -> Sequence[tuple[str, str]]:
    """Return the settings as (name, value) rows to show, secrets as their references."""
    return [
        ("broker", settings.broker),
        ("username_ref", settings.username_ref or ""),
        ("password_ref", settings.password_ref or ""),
        ("discovery_prefix", settings.discovery_prefix),
        ("state_prefix", settings.state_prefix),
        ("node_id", settings.node_id),
        ("meters", ", ".join(settings.meters)),
        ("interval_s", f"{settings.interval_s:g}"),
    ]
