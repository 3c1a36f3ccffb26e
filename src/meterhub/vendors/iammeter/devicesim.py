"""The simulated meter's local API, ``GET /monitorjson``, shaped like the captured answers.

Pure functions from a physics state to the JSON a meter answers, one layout per firmware:

- single-phase meters (WEM3080, firmware ``i.91.063T2``): ``Data`` is one row of seven,
  ``[V, A, W, import kWh, export kWh, Hz, PF]``, beside ``method``, ``mac``, ``version``,
  ``server`` and ``SN``;
- three-phase meters (WEM3080T, firmware 1.72.7): ``Datas`` holds one such row per phase;
- NEM mode adds a fourth ``Datas`` row, the net of the phases;
- newer firmware adds ``EA.Reactive``, per phase ``[var, inductive kvarh, capacitive kvarh]``;
- old single-phase meters (WEM3162) answer ``{"status": "succeed", "data": [V, A, W, kWh, kWh]}``
  only (a three-phase meter in this layout shows its first phase).

The simulated meters book reactive energy as fixed shares of their active import register
(:data:`INDUCTIVE_SHARE`, :data:`CAPACITIVE_SHARE`), so the registers only ever grow.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from meterhub.vendors.physics import MeterState, PhaseState

__all__ = [
    "CAPACITIVE_SHARE",
    "INDUCTIVE_SHARE",
    "LAYOUTS",
    "MonitorjsonLayout",
    "monitorjson_payload",
]

INDUCTIVE_SHARE = 0.05
"""Inductive reactive energy (kvarh) per kWh imported."""
CAPACITIVE_SHARE = 0.6
"""Capacitive reactive energy (kvarh) per kWh imported."""
SINGLE_PHASE_VERSION = "i.91.063T2"
THREE_PHASE_VERSION = "1.72.7"


@dataclass(frozen=True, slots=True)
class MonitorjsonLayout:
    """Which parts of the answer a meter's firmware prints."""

    legacy: bool = False
    net_row: bool = False
    reactive: bool = False


LAYOUTS: dict[str, str] = {
    "monitorjson_legacy": "an old single-phase meter (WEM3162): {status: succeed, data: [V, A, W, kWh, kWh]}",
    "monitorjson_nem": "a three-phase meter in NEM mode: a fourth Datas row, the net of the phases",
    "monitorjson_reactive": "newer firmware: EA.Reactive with var and inductive/capacitive kvarh per phase",
}
"""The ``/monitorjson`` variants of the simulator and what each reproduces."""


def _row(phase: PhaseState, state: MeterState, single: bool = False) -> list[float]:
    """Return ``[V, A, W, kWh, kWh, Hz, PF]`` with the decimals the captured answers show."""
    return [
        round(phase.voltage_v, 2 if single else 1),
        round(phase.current_a, 2),
        round(phase.power_w, 1) if single else round(phase.power_w),
        round(phase.energy_import_kwh, 2),
        round(phase.energy_export_kwh, 2),
        round(state.frequency_hz, 2),
        round(phase.power_factor, 2),
    ]


def _reactive_row(phase: PhaseState) -> list[float]:
    return [
        round(phase.reactive_power_var),
        round(INDUCTIVE_SHARE * phase.energy_import_kwh, 3),
        round(CAPACITIVE_SHARE * phase.energy_import_kwh, 3),
    ]


def _mac(serial: str) -> str:
    return "B0F893" + hashlib.sha256(serial.encode()).hexdigest()[:6].upper()


def _head(method: str, serial: str, version: str) -> dict[str, Any]:
    """Return the fields before the values, in the captured answers' order."""
    return {"method": method, "mac": _mac(serial), "version": version, "server": "em", "SN": serial}


def monitorjson_payload(serial: str, state: MeterState, layout: MonitorjsonLayout) -> dict[str, Any]:
    """Return the meter's ``/monitorjson`` answer for ``state`` in ``layout``."""
    phases = state.phases
    if layout.legacy:
        first = phases[0]
        row = [round(first.voltage_v, 2), round(first.current_a, 3), round(first.power_w),
               round(first.energy_import_kwh, 2), round(first.energy_export_kwh, 2)]
        return {"status": "succeed", "data": row}
    if len(phases) == 1:
        head = _head("1-272", serial, SINGLE_PHASE_VERSION)
        return {**head, "Data": _row(phases[0], state, single=True)}
    rows = [_row(phase, state) for phase in phases]
    if layout.net_row:
        rows.append(_row(state.total, state))
    answer: dict[str, Any] = {**_head("uploadsn", serial, THREE_PHASE_VERSION), "Datas": rows}
    if layout.reactive:
        answer["EA"] = {"Reactive": [_reactive_row(phase) for phase in phases]}
    return answer
