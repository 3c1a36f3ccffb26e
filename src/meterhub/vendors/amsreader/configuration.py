"""Shape ``/configuration.json``: the reader's settings tree, secrets masked as ``***``.

The vendor's keys are one or two letters; the tree below keeps them exactly and fills the
values this simulator actually uses (zone, hostname, auth, meter, thresholds, MQTT).
"""

from __future__ import annotations

from typing import Any

from .device import UI_SETTINGS, ReaderDevice
from .tariff import PEAK_DAYS, THRESHOLD_SENTINEL

__all__ = ["MQTT_FORMAT_JSON", "MQTT_FORMAT_RAW", "configuration_json"]

Json = dict[str, Any]
MQTT_FORMAT_JSON = 0
"""The reader's ``q.m`` code of the JSON classic payload."""
MQTT_FORMAT_RAW = 2
"""The reader's ``q.m`` code of the raw (one topic per value) payload."""
_MASK = "***"
_ZERO_KEY = "0" * 32


def _masked(secret: str) -> str:
    return _MASK if secret else ""


def _meter(device: ReaderDevice) -> Json:
    config = device.config
    return {
        "o": 1,
        "a": 0,
        "b": 2400,
        "p": 3,
        "i": False,
        "s": 512,
        "d": config.distribution_system,
        "f": config.main_fuse_a,
        "r": round(config.pv_peak_w / 1000),
        "e": {"e": False, "k": _ZERO_KEY, "a": _ZERO_KEY},
        "m": {"e": False, "w": 1, "v": 1, "a": 1, "c": 1},
    }


def _mqtt(device: ReaderDevice) -> Json:
    config = device.config
    return {
        "h": config.mqtt_host,
        "p": config.mqtt_port,
        "u": "",
        "a": "",
        "c": config.hostname,
        "b": config.mqtt_topic,
        "m": MQTT_FORMAT_JSON,
        "s": {"e": False, "c": False, "r": False, "k": False},
        "t": 0,
        "d": 0,
        "i": round(config.mqtt_interval_s * 1000),
        "k": 60,
    }


def configuration_json(device: ReaderDevice) -> Json:
    """Return ``/configuration.json`` of ``device``."""
    config = device.config
    return {
        "version": config.firmware_version,
        "g": {
            "t": config.tz,
            "h": config.hostname,
            "s": 1 if config.password else 0,
            "u": config.username,
            "p": _masked(config.password),
            "c": "",
        },
        "m": _meter(device),
        "t": {"t": [*config.thresholds_kwh, THRESHOLD_SENTINEL], "h": PEAK_DAYS},
        "w": {"s": "meterhub-sim", "p": _MASK, "w": 19.5, "z": 1, "b": False},
        "n": {
            "c": 1,
            "m": "dhcp",
            "i": "",
            "s": "",
            "g": "",
            "d1": "",
            "d2": "",
            "d": True,
            "n1": "pool.ntp.org",
            "h": True,
            "x": False,
        },
        "q": _mqtt(device),
        "p": {"e": True, "t": "", "r": config.price_area, "c": config.currency},
        "d": {"s": False, "t": False, "l": 4},
        "i": {
            "h": {"p": 16, "u": True, "t": 9},
            "a": 0,
            "l": {"p": None, "i": True},
            "r": {"r": 13, "g": 14, "b": None, "i": True},
            "d": {"d": 6, "b": 0},
            "t": {"d": None, "a": None},
            "v": {"p": 10, "o": 0, "m": 1, "d": {"v": 33, "g": 22}, "b": 0},
        },
        "u": UI_SETTINGS,
        "o": {"e": 1, "c": 5953, "u1": 5954, "u2": 5955, "u3": 5956},
        "h": {"t": "", "h": "", "n": ""},
        "c": {"e": False, "p": 1, "es": False},
    }
