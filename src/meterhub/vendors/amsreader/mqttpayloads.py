"""Shape the AMS reader's MQTT payloads: JSON classic, raw (one topic each), Home Assistant, Domoticz.

Both are declared as tuples of fields, keyed by the HAN list type that first carries them: a
list-3 meter sends every list-1 and list-2 field too. Power in W, energy in kWh, as the reader
sends them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .device import PhaseSnapshot, ReaderDevice, Snapshot

__all__ = [
    "JSON_LIST_FIELDS",
    "RAW_REALTIME",
    "RAW_TOPICS",
    "domoticz_messages",
    "home_assistant_messages",
    "json_classic",
    "raw_messages",
]

Json = dict[str, Any]
Getter = Callable[[ReaderDevice, Snapshot], Any]


def _phase(index: int, read: Callable[[PhaseSnapshot], Any]) -> Getter:
    return lambda _device, snapshot: read(snapshot.phases[index])


def _rtc(_device: ReaderDevice, snapshot: Snapshot) -> int:
    return int(snapshot.ts.timestamp())


def _per_phase(name: str, read: Callable[[PhaseSnapshot], Any]) -> tuple[tuple[str, Getter], ...]:
    return tuple((name.format(n=index + 1), _phase(index, read)) for index in range(3))


JSON_LIST_FIELDS: tuple[tuple[int, tuple[tuple[str, Getter], ...]], ...] = (
    (1, (("P", lambda _d, s: s.import_w),)),
    (
        2,
        (
            ("lv", lambda d, _s: d.config.list_id),
            ("meterId", lambda d, _s: d.config.meter_id),
            ("type", lambda d, _s: d.config.meter_model),
            ("Q", lambda _d, s: s.reactive_import_var),
            ("PO", lambda _d, s: s.export_w),
            ("QO", lambda _d, s: s.reactive_export_var),
            *_per_phase("I{n}", lambda p: p.current_a),
            *_per_phase("U{n}", lambda p: p.voltage_v),
        ),
    ),
    (
        3,
        (
            ("tPI", lambda _d, s: s.energy_import_kwh),
            ("tPIT1", lambda _d, s: s.energy_import_kwh),
            ("tPIT2", lambda _d, _s: 0.0),
            ("tPO", lambda _d, s: s.energy_export_kwh),
            ("tPOT1", lambda _d, s: s.energy_export_kwh),
            ("tPOT2", lambda _d, _s: 0.0),
            ("tQI", lambda _d, s: s.reactive_import_kvarh),
            ("tQO", lambda _d, s: s.reactive_export_kvarh),
            ("rtc", _rtc),
        ),
    ),
    (
        4,
        (
            *_per_phase("P{n}", lambda p: p.import_w),
            *_per_phase("PO{n}", lambda p: p.export_w),
            ("PF", lambda _d, s: s.power_factor),
            *_per_phase("PF{n}", lambda p: p.power_factor),
            *_per_phase("tPI{n}", lambda p: p.energy_import_kwh),
            *_per_phase("tPO{n}", lambda p: p.energy_export_kwh),
        ),
    ),
)
"""The ``data`` fields of the JSON classic payload by the list type that adds them.

A single-tariff meter: ``tPIT1``/``tPOT1`` carry the whole register, ``T2`` stays 0.
"""


def _realtime(snapshot: Snapshot) -> Json:
    capacity = snapshot.capacity
    return {
        "h": round(snapshot.hour.use_kwh, 2),
        "d": round(snapshot.day.use_kwh, 1),
        "m": round(snapshot.month.use_kwh, 1),
        "t": capacity.threshold_kwh,
        "x": capacity.month_max_kwh,
        "he": round(snapshot.hour.produced_kwh, 2),
        "de": round(snapshot.day.produced_kwh, 1),
        "me": round(snapshot.month.produced_kwh, 1),
        "peaks": [peak.energy_kwh for peak in capacity.peaks],
    }


def json_classic(device: ReaderDevice, snapshot: Snapshot) -> Json:
    """Return the JSON classic document the reader publishes for ``snapshot``."""
    list_type = device.config.list_type
    data = {
        name: getter(device, snapshot)
        for first_list, fields in JSON_LIST_FIELDS
        if first_list <= list_type
        for name, getter in fields
    }
    return {
        "id": device.mac,
        "name": device.config.hostname,
        "up": snapshot.uptime_s,
        "t": int(snapshot.ts.timestamp()) if device.config.ntp else snapshot.uptime_s,
        "vcc": snapshot.vcc_v,
        "rssi": snapshot.rssi_dbm,
        "temp": snapshot.temperature_c,
        "data": data,
        "realtime": _realtime(snapshot),
    }


@dataclass(frozen=True, slots=True)
class RawTopic:
    """One raw topic: its suffix under the prefix, the first list carrying it, its text."""

    suffix: str
    first_list: int
    text: Callable[[ReaderDevice, Snapshot], str]


def _fixed(getter: Getter, digits: int) -> Callable[[ReaderDevice, Snapshot], str]:
    return lambda device, snapshot: f"{getter(device, snapshot):.{digits}f}"


def _whole(getter: Getter) -> Callable[[ReaderDevice, Snapshot], str]:
    return lambda device, snapshot: str(int(getter(device, snapshot)))


def _raw_phase(suffix: str, first: int, read: Callable[[PhaseSnapshot], Any]) -> list[RawTopic]:
    return [RawTopic(suffix.format(n=index + 1), first, _fixed(_phase(index, read), 2)) for index in range(3)]


def _raw_phase_counter(suffix: str, read: Callable[[PhaseSnapshot], Any]) -> list[RawTopic]:
    return [RawTopic(suffix.format(n=index + 1), 4, _fixed(_phase(index, read), 2)) for index in range(3)]


def _meter_names(first_list: int) -> tuple[RawTopic, ...]:
    return (
        RawTopic("meter/id", first_list, lambda d, _s: d.config.meter_id),
        RawTopic("meter/type", first_list, lambda d, _s: d.config.meter_model),
    )


RAW_TOPICS: tuple[RawTopic, ...] = (
    RawTopic("meter/dlms/timestamp", 1, _whole(_rtc)),
    # list 4, then 3, 2 and 1: the reader sends the richest list first
    *_raw_phase("meter/import/l{n}", 4, lambda p: p.import_w),
    *_raw_phase("meter/export/l{n}", 4, lambda p: p.export_w),
    *_raw_phase_counter("meter/import/l{n}/accumulated", lambda p: p.energy_import_kwh),
    *_raw_phase_counter("meter/export/l{n}/accumulated", lambda p: p.energy_export_kwh),
    RawTopic("meter/powerfactor", 4, _fixed(lambda _d, s: s.power_factor, 2)),
    *_raw_phase("meter/l{n}/powerfactor", 4, lambda p: p.power_factor),
    *_meter_names(3),
    RawTopic("meter/clock", 3, _whole(_rtc)),
    RawTopic("meter/import/reactive/accumulated", 3, _fixed(lambda _d, s: s.reactive_import_kvarh, 3)),
    RawTopic("meter/import/accumulated", 3, _fixed(lambda _d, s: s.energy_import_kwh, 3)),
    RawTopic("meter/export/reactive/accumulated", 3, _fixed(lambda _d, s: s.reactive_export_kvarh, 3)),
    RawTopic("meter/export/accumulated", 3, _fixed(lambda _d, s: s.energy_export_kwh, 3)),
    *_meter_names(2),
    *(
        topic
        for index in range(3)
        for topic in (
            RawTopic(f"meter/l{index + 1}/current", 2, _fixed(_phase(index, lambda p: p.current_a), 2)),
            RawTopic(f"meter/l{index + 1}/voltage", 2, _fixed(_phase(index, lambda p: p.voltage_v), 2)),
        )
    ),
    RawTopic("meter/export/reactive", 2, _whole(lambda _d, s: s.reactive_export_var)),
    RawTopic("meter/export/active", 2, _whole(lambda _d, s: s.export_w)),
    RawTopic("meter/import/reactive", 2, _whole(lambda _d, s: s.reactive_import_var)),
    RawTopic("meter/import/active", 1, _whole(lambda _d, s: s.import_w)),
)
"""The raw meter topics under ``<prefix>/``, in the order the reader sends them in one round.

A round starts with ``meter/dlms/timestamp``. A list-3 or list-4 meter's round carries
``meter/id`` and ``meter/type`` twice: once with the list-3 registers, once with list 2.
"""

RAW_REALTIME: tuple[RawTopic, ...] = (
    RawTopic("realtime/import/hour", 1, _fixed(lambda _d, s: s.hour.use_kwh, 3)),
    RawTopic("realtime/import/day", 1, _fixed(lambda _d, s: s.day.use_kwh, 2)),
    RawTopic("realtime/import/month", 1, _fixed(lambda _d, s: s.month.use_kwh, 1)),
)
RAW_REALTIME_AFTER_PEAKS: tuple[RawTopic, ...] = (
    RawTopic("realtime/import/threshold", 1, _whole(lambda _d, s: s.capacity.threshold_kwh)),
    RawTopic("realtime/import/monthmax", 1, _fixed(lambda _d, s: s.capacity.month_max_kwh, 3)),
    RawTopic("realtime/export/hour", 1, _fixed(lambda _d, s: s.hour.produced_kwh, 3)),
    RawTopic("realtime/export/day", 1, _fixed(lambda _d, s: s.day.produced_kwh, 2)),
    RawTopic("realtime/export/month", 1, _fixed(lambda _d, s: s.month.produced_kwh, 1)),
)
"""The energy-accounting topics that end a round, before and after the capacity peaks."""


def raw_messages(device: ReaderDevice, snapshot: Snapshot, prefix: str) -> list[tuple[str, str]]:
    """Return the (topic, text) pairs of one raw round for ``snapshot``, in the reader's order."""
    list_type = device.config.list_type

    def texts(topics: tuple[RawTopic, ...]) -> list[tuple[str, str]]:
        return [
            (f"{prefix}/{topic.suffix}", topic.text(device, snapshot))
            for topic in topics
            if topic.first_list <= list_type
        ]

    peaks = [
        (f"{prefix}/realtime/import/peak/{rank}", f"{peak.energy_kwh:.2f}")
        for rank, peak in enumerate(snapshot.capacity.peaks, start=1)
    ]
    return [*texts(RAW_TOPICS), *texts(RAW_REALTIME), *peaks, *texts(RAW_REALTIME_AFTER_PEAKS)]


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _percent(power_factor: float, total: float) -> int:
    """Return a power factor as the reader's Home Assistant format does: 100 when none is reported."""
    return 100 if total == 0 else int(power_factor * 100)


def home_assistant_messages(device: ReaderDevice, snapshot: Snapshot, prefix: str) -> list[tuple[str, str]]:
    """Return the Home Assistant state documents of ``snapshot``: energy, power, realtime."""
    list_type, config, t = device.config.list_type, device.config, _iso(snapshot.ts)
    messages: list[tuple[str, str]] = []
    if list_type >= 3:
        energy = {
            "tPI": round(snapshot.energy_import_kwh, 3),
            "tPO": round(snapshot.energy_export_kwh, 3),
            "tQI": round(snapshot.reactive_import_kvarh, 3),
            "tQO": round(snapshot.reactive_export_kvarh, 3),
            "rtc": t,
            "t": t,
        }
        messages.append((f"{prefix}/energy", json.dumps(energy)))
    power: Json = {"P": snapshot.import_w}
    if list_type >= 2:
        phases = snapshot.phases
        power = {"lv": config.list_id, "id": config.meter_id, "type": config.meter_model}
        power["P"] = snapshot.import_w
        if list_type >= 4:
            power |= {f"P{n + 1}": phases[n].import_w for n in range(3)}
        power |= {"Q": snapshot.reactive_import_var, "PO": snapshot.export_w}
        if list_type >= 4:
            power |= {f"PO{n + 1}": phases[n].export_w for n in range(3)}
        power["QO"] = snapshot.reactive_export_var
        power |= {f"I{n + 1}": round(phases[n].current_a, 2) for n in range(3)}
        power |= {f"U{n + 1}": round(phases[n].voltage_v, 2) for n in range(3)}
        if list_type >= 4:
            total = snapshot.power_factor
            power["PF"] = _percent(total, total)
            power |= {f"PF{n + 1}": _percent(phases[n].power_factor, total) for n in range(3)}
            power |= {f"tPI{n + 1}": round(phases[n].energy_import_kwh, 3) for n in range(3)}
            power |= {f"tPO{n + 1}": round(phases[n].energy_export_kwh, 3) for n in range(3)}
    power["t"] = t
    messages.append((f"{prefix}/power", json.dumps(power)))
    capacity = snapshot.capacity
    realtime = {
        "max": round(capacity.month_max_kwh, 1),
        "peaks": [round(peak.energy_kwh, 2) for peak in capacity.peaks],
        "threshold": int(capacity.threshold_kwh),
        **{
            name: {
                "use": round(totals.use_kwh, 2),
                "cost": 0.0,
                "produced": round(totals.produced_kwh, 2),
                "income": 0.0,
            }
            for name, totals in (("hour", snapshot.hour), ("day", snapshot.day), ("month", snapshot.month))
        },
        "t": t,
    }
    messages.append((f"{prefix}/realtime", json.dumps(realtime)))
    return messages


def domoticz_messages(
    device: ReaderDevice, snapshot: Snapshot, topic: str, idx: Mapping[str, int]
) -> list[tuple[str, str]]:
    """Return the Domoticz ``udevice`` commands of ``snapshot`` for the idx numbers set in ``idx``.

    Electricity (import W; import register Wh) goes first, then list 2's voltages and currents.
    """
    phases = snapshot.phases
    values: list[tuple[str, str]] = []
    if snapshot.energy_import_kwh > 0:
        values.append(("elidx", f"{snapshot.import_w:.1f};{snapshot.energy_import_kwh * 1000.0:.1f}"))
    if device.config.list_type >= 2:
        values += [(f"vl{n + 1}idx", f"{phases[n].voltage_v:.2f}") for n in range(3)]
        values.append(("cl1idx", ";".join(f"{phase.current_a:.1f}" for phase in phases)))
    return [
        (topic, json.dumps({"command": "udevice", "idx": idx[name], "nvalue": 0, "svalue": svalue}))
        for name, svalue in values
        if idx.get(name, 0) > 0
    ]
