"""Shape the AMS reader's MQTT payloads: JSON classic (one document) and raw (one topic each).

Both are declared as tuples of fields, keyed by the HAN list type that first carries them: a
list-3 meter sends every list-1 and list-2 field too. Power in W, energy in kWh, as the reader
sends them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .device import PhaseSnapshot, ReaderDevice, Snapshot

__all__ = ["JSON_LIST_FIELDS", "RAW_TOPICS", "json_classic", "raw_messages"]

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
        "t": int(snapshot.ts.timestamp()),
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
    return [
        RawTopic(suffix.format(n=index + 1), first, _fixed(_phase(index, read), 2))
        for index in range(3)
    ]


RAW_TOPICS: tuple[RawTopic, ...] = (
    RawTopic("meter/import/active", 1, _whole(lambda _d, s: s.import_w)),
    RawTopic("meter/id", 2, lambda d, _s: d.config.meter_id),
    RawTopic("meter/type", 2, lambda d, _s: d.config.meter_model),
    *_raw_phase("meter/l{n}/current", 2, lambda p: p.current_a),
    *_raw_phase("meter/l{n}/voltage", 2, lambda p: p.voltage_v),
    RawTopic("meter/export/active", 2, _whole(lambda _d, s: s.export_w)),
    RawTopic("meter/import/reactive", 2, _whole(lambda _d, s: s.reactive_import_var)),
    RawTopic("meter/export/reactive", 2, _whole(lambda _d, s: s.reactive_export_var)),
    RawTopic("meter/clock", 3, _whole(_rtc)),
    RawTopic("meter/import/accumulated", 3, _fixed(lambda _d, s: s.energy_import_kwh, 3)),
    RawTopic("meter/export/accumulated", 3, _fixed(lambda _d, s: s.energy_export_kwh, 3)),
    RawTopic(
        "meter/import/reactive/accumulated", 3, _fixed(lambda _d, s: s.reactive_import_kvarh, 3)
    ),
    RawTopic(
        "meter/export/reactive/accumulated", 3, _fixed(lambda _d, s: s.reactive_export_kvarh, 3)
    ),
    *_raw_phase("meter/import/l{n}", 4, lambda p: p.import_w),
    *_raw_phase("meter/export/l{n}", 4, lambda p: p.export_w),
    RawTopic("meter/powerfactor", 4, _fixed(lambda _d, s: s.power_factor, 2)),
    *_raw_phase("meter/l{n}/powerfactor", 4, lambda p: p.power_factor),
    RawTopic("realtime/import/hour", 1, _fixed(lambda _d, s: s.hour.use_kwh, 3)),
    RawTopic("realtime/import/day", 1, _fixed(lambda _d, s: s.day.use_kwh, 2)),
    RawTopic("realtime/import/month", 1, _fixed(lambda _d, s: s.month.use_kwh, 1)),
    RawTopic("realtime/import/threshold", 1, _whole(lambda _d, s: s.capacity.threshold_kwh)),
    RawTopic("realtime/import/monthmax", 1, _fixed(lambda _d, s: s.capacity.month_max_kwh, 3)),
    RawTopic("realtime/export/hour", 1, _fixed(lambda _d, s: s.hour.produced_kwh, 3)),
    RawTopic("realtime/export/day", 1, _fixed(lambda _d, s: s.day.produced_kwh, 2)),
    RawTopic("realtime/export/month", 1, _fixed(lambda _d, s: s.month.produced_kwh, 1)),
)
"""The raw topics under ``<prefix>/``, in the order the reader sends them."""


def raw_messages(device: ReaderDevice, snapshot: Snapshot, prefix: str) -> list[tuple[str, str]]:
    """Return the (topic, text) pairs of the raw format for ``snapshot``."""
    list_type = device.config.list_type
    messages = [
        (f"{prefix}/{topic.suffix}", topic.text(device, snapshot))
        for topic in RAW_TOPICS
        if topic.first_list <= list_type
    ]
    peaks = [
        (f"{prefix}/realtime/import/peak/{rank}", f"{peak.energy_kwh:.2f}")
        for rank, peak in enumerate(snapshot.capacity.peaks, start=1)
    ]
    return [*messages, *peaks]
