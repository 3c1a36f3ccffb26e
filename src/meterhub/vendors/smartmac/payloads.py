"""Shape smart-MAC ``getdata`` answers from physics states, as the device's API document shows.

Every value is a string, formatted the way the firmware's ``dtostrf(value, width, decimals)``
does it: right-aligned to a minimum width, so small numbers arrive with leading spaces
(``"  586"``). The ``br0..br2`` separators carry a name that is a bare line break, written raw
into the JSON text exactly as the device sends it (strict JSON parsers reject it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meterhub.vendors.physics import MeterState, PhaseState

__all__ = [
    "NEWER_TOTAL_FIELDS",
    "PHASE_FIELDS",
    "REPORTED_POUT_OFF",
    "REPORTED_POUT_ON",
    "REQUEST_POUT_OFF",
    "REQUEST_POUT_ON",
    "TEMPERATURE_FIELD",
    "DeviceField",
    "error_payload",
    "getdata_payload",
    "render_json",
]

# The seed contradicts itself on the relay; VENDORS.md says to follow it literally in both places.
REQUEST_POUT_ON = "0"
"""``&pout=0`` in a request turns the external load on ("0 - turn-on")."""
REQUEST_POUT_OFF = "1"
"""``&pout=1`` in a request turns the external load off ("1 - turn-off")."""
REPORTED_POUT_ON = "1"
"""``"pout": "1"`` in an answer means the relay is on ("0-Off / 1-On")."""
REPORTED_POUT_OFF = "0"
"""``"pout": "0"`` in an answer means the relay is off."""

_LINE_BREAK = "\n"
_ESCAPED_SEPARATOR = '{"name":"\\n"}'
_RAW_SEPARATOR = '{"name":"\n"}'


@dataclass(frozen=True, slots=True)
class DeviceField:
    """One entry of ``data``: key, human name, unit, ``dtostrf`` width and decimals, value."""

    key: str
    name: str
    unit: str
    width: int
    decimals: int
    value_fn: Callable[[PhaseState, MeterState], float]

    def entry(self, phase: PhaseState, state: MeterState, line: int | None) -> dict[str, str]:
        """Return this field's ``{"name", "unit", "value"}`` for ``line`` (None: device-wide)."""
        suffix = "" if line is None else str(line)
        value = self.value_fn(phase, state)
        return {
            "name": f"{self.name} {suffix}".rstrip(),
            "unit": self.unit,
            "value": f"{value:{self.width}.{self.decimals}f}",
        }


def _import_w(phase: PhaseState, _state: MeterState) -> float:
    return max(0.0, phase.power_w)


def _export_w(phase: PhaseState, _state: MeterState) -> float:
    return max(0.0, -phase.power_w)


def _import_wh(phase: PhaseState, _state: MeterState) -> float:
    return phase.energy_import_kwh * 1000.0


def _export_wh(phase: PhaseState, _state: MeterState) -> float:
    return phase.energy_export_kwh * 1000.0


PHASE_FIELDS: tuple[DeviceField, ...] = (
    DeviceField("V", "Voltage", "V", 6, 2, lambda p, s: p.voltage_v),
    DeviceField("A", "Current", "A", 4, 2, lambda p, s: abs(p.current_a)),
    DeviceField("W", "Active Power", "W", 5, 0, _import_w),
    DeviceField("rW", "Rev. Active Power", "W", 5, 0, _export_w),
    DeviceField("Wh", "Energy", "Wh", 1, 0, _import_wh),
    DeviceField("rWh", "Rev. Energy", "Wh", 1, 0, _export_wh),
    DeviceField("PF", "Power Factor", "", 4, 2, lambda p, s: abs(p.power_factor)),
)
"""The per-line fields, suffixed 1..3, in the order the device sends them."""

NEWER_PHASE_FIELDS: tuple[DeviceField, ...] = (
    DeviceField("Fr", "Frequency", "Hz", 5, 2, lambda p, s: s.frequency_hz),
)
"""Per-line fields that newer firmware adds after the power factor."""

NEWER_TOTAL_FIELDS: tuple[DeviceField, ...] = (
    DeviceField("A", "Current", "A", 4, 2, lambda p, s: sum(abs(x.current_a) for x in s.phases)),
    DeviceField("W", "Active Power", "W", 5, 0, _import_w),
    DeviceField("TWh", "Total Energy", "Wh", 1, 0, _import_wh),
)
"""Device-wide totals that newer firmware adds after the last line (read from the total)."""

TEMPERATURE_FIELD = DeviceField("T", "Temperature", "°C", 2, 0, lambda p, s: s.temperature_c)
"""The temperature inside the device, always the last entry."""


def getdata_payload(
    devid: str,
    state: MeterState,
    now: datetime,
    relay_on: bool,
    *,
    newer_firmware: bool,
    power_limit_w: int = 0,
) -> dict[str, Any]:
    """Return the ``getdata`` answer for ``state``, every value a string."""
    data: dict[str, dict[str, str]] = {}
    phase_fields = PHASE_FIELDS + (NEWER_PHASE_FIELDS if newer_firmware else ())
    for index, phase in enumerate(state.phases):
        line = index + 1
        for field in phase_fields:
            data[f"{field.key}{line}"] = field.entry(phase, state, line)
        data[f"br{index}"] = {"name": _LINE_BREAK}
    if newer_firmware:
        for field in NEWER_TOTAL_FIELDS:
            data[field.key] = field.entry(state.total, state, None)
    data[TEMPERATURE_FIELD.key] = TEMPERATURE_FIELD.entry(state.total, state, None)
    answer: dict[str, Any] = {
        "devid": devid,
        "time": str(int(now.timestamp())),
        "pout": REPORTED_POUT_ON if relay_on else REPORTED_POUT_OFF,
    }
    if newer_firmware:
        answer["powset"] = str(power_limit_w)
    answer["data"] = data
    return answer


def error_payload(devid: str, now: datetime, message: str) -> dict[str, str]:
    """Return the device's error answer: its id, its time and what went wrong, all strings."""
    return {"devid": devid, "time": str(int(now.timestamp())), "error": message}


def render_json(answer: dict[str, Any], *, raw_line_breaks: bool = True) -> bytes:
    """Serialise an answer compactly, as the firmware does, with raw line breaks in ``br*``."""
    text = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
    if raw_line_breaks:
        text = text.replace(_ESCAPED_SEPARATOR, _RAW_SEPARATOR)
    return text.encode("utf-8")
