"""``meterhub.toml``: meters, MQTT sources and poller settings declared in one file.

::

    [poller]                      # optional; any PollerSettings field
    backoff_cap_s = 3600

    [[meters]]
    id = "house"
    vendor = "iammeter"
    phases = 3
    tz = "Europe/Oslo"
    interval_s = 300
    name = "Main fuse"
    options = { sn = "3FE34ABE", username = "test", password = "env:IAMMETER_PASSWORD" }

    [[mqtt]]                      # fields of meterhub.mqtt.MqttSource
    host = "127.0.0.1"            # default 127.0.0.1, port 1883
    topic = "ams/house"
    meter_id = "house-grid"
    format = "json"
    password_ref = "env:MQTT_PASSWORD"
    group = "meterhub"            # shared subscription of json/flat sources ("" for a plain one)
    dedupe_window_s = 600         # a copy of a message without device time within it is stored once

Secrets are references only: an option that holds a password, key or PIN must read
``env:NAME``; a literal value is refused, so the file can be shared and committed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from meterhub.config import REFERENCE_SHAPES, is_secret_reference, secret_reference_problem
from meterhub.errors import ConfigError, MeterhubError
from meterhub.homeassistant.settings import HomeAssistantSettings, parse_homeassistant
from meterhub.ids import id_problem
from meterhub.model import Meter
from meterhub.mqtt import MqttSource
from meterhub.poller.scheduler import PollerSettings
from meterhub.pricefeeds.sources import PriceSource, parse_price_sources
from meterhub.timeutil import get_zone

__all__ = ["SECRET_OPTIONS", "HubConfig", "check_secret_options", "load_config", "parse_config"]

SECRET_OPTIONS = frozenset({"password", "key", "devpass", "token", "secret", "api_key"})
"""Option names whose values are secrets and must be references (``env:NAME``, ``file:/path``)."""

_METER_FIELDS = {"id", "vendor", "phases", "tz", "interval_s", "name", "options"}


@dataclass(frozen=True, slots=True)
class HubConfig:
    """What a ``meterhub.toml`` declares."""

    meters: tuple[Meter, ...] = ()
    mqtt: tuple[MqttSource, ...] = ()
    poller: PollerSettings = field(default_factory=PollerSettings)
    homeassistant: HomeAssistantSettings | None = None
    prices: tuple[PriceSource, ...] = ()


def check_secret_options(options: Mapping[str, str], where: str) -> None:
    """Raise ConfigError if a secret option holds a value instead of an ``env:NAME`` reference."""
    for name, value in options.items():
        if name in SECRET_OPTIONS and (not is_secret_reference(value) or secret_reference_problem(value)):
            raise ConfigError(
                f"{where}: option {name!r} must be a reference like {REFERENCE_SHAPES}, "
                "never the secret itself"
            )


def load_config(path: Path) -> HubConfig:
    """Read and check a ``meterhub.toml``."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return parse_config(document, str(path))


def parse_config(document: Mapping[str, Any], where: str = "meterhub.toml") -> HubConfig:
    """Build a HubConfig from a parsed TOML document."""
    unknown = sorted(set(document) - {"meters", "mqtt", "poller", "homeassistant", "prices"})
    if unknown:
        raise ConfigError(
            f"{where}: unknown section(s) {', '.join(unknown)}; "
            "use meters, mqtt, poller, homeassistant, prices"
        )
    meters = tuple(
        _meter(table, f"{where}: meters[{n}]") for n, table in enumerate(_tables(document, "meters", where))
    )
    ids = [meter.id for meter in meters]
    duplicates = sorted({meter_id for meter_id in ids if ids.count(meter_id) > 1})
    if duplicates:
        raise ConfigError(f"{where}: meter id(s) declared twice: {', '.join(duplicates)}")
    sources = tuple(
        _mqtt_source(table, f"{where}: mqtt[{n}]") for n, table in enumerate(_tables(document, "mqtt", where))
    )
    return HubConfig(
        meters,
        sources,
        _poller_settings(document.get("poller", {}), where),
        parse_homeassistant(document.get("homeassistant"), where),
        prices=parse_price_sources(document.get("prices"), where),
    )


def _tables(document: Mapping[str, Any], name: str, where: str) -> Sequence[Mapping[str, Any]]:
    tables = document.get(name, [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{where}: {name} must be an array of tables ([[{name}]])")
    return tables


def _meter(table: Mapping[str, Any], where: str) -> Meter:
    unknown = sorted(set(table) - _METER_FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
    meter_id, vendor = table.get("id"), table.get("vendor")
    if not isinstance(meter_id, str):
        raise ConfigError(f"{where}: id must be a non-empty string of letters, digits and _ . : -")
    problem = id_problem(meter_id)
    if problem is not None:
        raise ConfigError(f"{where}: {problem}")
    if not isinstance(vendor, str) or not vendor:
        raise ConfigError(f"{where}: vendor must be a string")
    options = table.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: options must be a table")
    text_options = {str(k): str(v) for k, v in options.items()}
    check_secret_options(text_options, f"{where} ({meter_id})")
    phases, interval_s = table.get("phases", 1), table.get("interval_s", 60)
    if phases not in (1, 2, 3) or not isinstance(interval_s, int) or not 1 <= interval_s <= 86_400:
        raise ConfigError(f"{where} ({meter_id}): phases must be 1..3 and interval_s 1..86400")
    tz = str(table.get("tz", ""))  # empty: the hub's default zone, applied when the meter is added
    try:
        if tz:
            get_zone(tz)
    except MeterhubError as exc:
        raise ConfigError(f"{where} ({meter_id}): {exc}") from exc
    return Meter(meter_id, vendor.lower(), phases, tz, interval_s, str(table.get("name", "")), text_options)


def _mqtt_source(table: Mapping[str, Any], where: str) -> MqttSource:
    fields_ = {"host": "127.0.0.1", "port": 1883, "meter_id": None, **table}
    for name in ("username_ref", "password_ref"):
        reference = fields_.get(name)
        if reference is not None and not (isinstance(reference, str) and is_secret_reference(reference)):
            raise ConfigError(f"{where}: {name} must be a reference like {REFERENCE_SHAPES}")
    devices = fields_.get("devices", {})
    meter_ids = [fields_["meter_id"], *(devices.values() if isinstance(devices, dict) else ())]
    for meter_id in (m for m in meter_ids if m is not None):
        problem = id_problem(meter_id) if isinstance(meter_id, str) else "meter id must be a string"
        if problem is not None:
            raise ConfigError(f"{where}: {problem}")
    try:
        return MqttSource(**fields_)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.args[0] if exc.args else exc}") from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _poller_settings(table: object, where: str) -> PollerSettings:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [poller] must be a table")
    known = {f.name for f in fields(PollerSettings)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown [poller] setting(s) {', '.join(unknown)}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in table.values()):
        raise ConfigError(f"{where}: [poller] settings must be numbers")
    counts = {f.name for f in fields(PollerSettings) if isinstance(f.default, int)}
    if any(name in counts and (value != int(value) or value < 1) for name, value in table.items()):
        raise ConfigError(f"{where}: [poller] {', '.join(sorted(counts))} must be whole numbers >= 1")
    values: dict[str, Any] = {k: int(v) if k in counts else float(v) for k, v in table.items()}
    return PollerSettings(**values)
