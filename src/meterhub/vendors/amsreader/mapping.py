"""Map the AMS reader's HTTP answers to the canonical model (pure).

Payload fields are declared as data: one :class:`FieldSpec` per number that feeds a reading,
one :class:`ExtraSpec` per device extra. ``data.json`` gives phase 0 from the meter's totals and
phases 1 to 3 from ``l1``..``l3`` (firmware v2.3.0 and later) or from the flat ``u1..u3``,
``i1..i3``, ``f1..f3`` of older firmware. In ``l1``..``l3``, ``p`` is import power; ``q`` is
export power from v2.3.0 on (so ``power_w = p - q``) and reactive power in the vendor's document
for earlier versions: which one is decided from ``sysinfo.json``'s version, never from values.
``l2.e`` (and the flat ``i2e``) is true when the L2 current is missing (IT-grid meters).
Zeros a meter prints for what it does not report (power factor ``0.00``, per-phase power on
list-2/3 meters, registers ``0.000`` before the first list-3 frame, a phase voltage ``0.00``
while current flows in that phase, as IT-grid Kaifa meters print L2) are absent, not readings.
``dayplot.json`` keys are UTC hours of the last 24 closed hours; ``monthplot.json`` keys are days
of the month, a ring whose not-yet-reached days still hold last month's figures.
The same engine maps the reader's MQTT payloads (:mod:`meterhub.mqtt_mapping`).
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from meterhub.errors import PayloadError
from meterhub.model import PHASE_TOTAL, READING_FIELDS, Extra, IntervalEnergy, Reading
from meterhub.vendors.base import Fetched

__all__ = [
    "DATA_EXTRAS",
    "DATA_FIELDS",
    "FLAT_DATA_FIELDS",
    "SOURCE_DAYPLOT",
    "SOURCE_MONTHPLOT",
    "ExtraSpec",
    "FieldSpec",
    "dayplot_intervals",
    "epoch_time",
    "extras_from",
    "firmware_version",
    "map_data_json",
    "monthplot_intervals",
    "phases_in",
    "q_is_export",
    "readings_from",
    "require_object",
    "sensor_count",
    "sensor_extra_name",
    "temperature_extras",
    "without_unmeasured_voltages",
]

SOURCE_DAYPLOT = "amsreader.dayplot"
SOURCE_MONTHPLOT = "amsreader.monthplot"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SETTLE_S = 120.0
"""How long after an hour (or day) ends the reader may still show the old figure in its slot."""
_EARLIEST = datetime(2020, 1, 1, tzinfo=UTC)
"""A clock before this is unset: without NTP the reader counts seconds since boot. (The firmware
itself treats a clock before its build date as unset; no v2 firmware was built before 2020.)"""
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_UNIT_KWH: Mapping[str, float] = {"kwh": 1.0, "wh": 0.001}
_NO_SENSOR_C = -85.0
"""The reader reports -127 °C (or below -85) when no temperature sensor answers."""
_SENSOR_ADDRESS = re.compile(r"[0-9A-Fa-f]{16}")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One number of a payload, the phase and reading field it feeds, and its sign there."""

    path: tuple[str, ...]
    phase: int
    field: str
    sign: float = 1.0
    missing_if: tuple[str, ...] | None = None
    """A flag that, when true, says the field is not measured (``l2.e``: L2 current missing)."""


@dataclass(frozen=True, slots=True)
class ExtraSpec:
    """One number of a payload kept as a device extra; values at or below ``above`` mean none."""

    path: tuple[str, ...]
    name: str
    above: float = -math.inf


_Q_AS_EXPORT = (2, 3, 0)
"""From this firmware version on, ``l1..l3.q`` is the phase's export power."""


def _phase_fields(phase: int, q_field: str | None) -> tuple[FieldSpec, ...]:
    """``l<phase>`` of data.json; ``q_field`` None leaves ``p`` and ``q`` out (meaning unknown)."""
    line = f"l{phase}"
    missing = (line, "e") if phase == 2 else None
    specs = [
        FieldSpec((line, "u"), phase, "voltage_v"),
        FieldSpec((line, "i"), phase, "current_a", missing_if=missing),
        FieldSpec((line, "f"), phase, "power_factor"),
    ]
    if q_field is not None:
        specs.append(FieldSpec((line, "p"), phase, "power_w"))
    if q_field == "power_w":
        specs.append(FieldSpec((line, "q"), phase, "power_w", sign=-1.0))
    elif q_field is not None:
        specs.append(FieldSpec((line, "q"), phase, q_field))
    return tuple(specs)


def _flat_phase_fields(phase: int) -> tuple[FieldSpec, ...]:
    missing = ("i2e",) if phase == 2 else None
    return (
        FieldSpec((f"u{phase}",), phase, "voltage_v"),
        FieldSpec((f"i{phase}",), phase, "current_a", missing_if=missing),
        FieldSpec((f"f{phase}",), phase, "power_factor"),
    )


_TOTAL_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(("i",), PHASE_TOTAL, "power_w"),
    FieldSpec(("e",), PHASE_TOTAL, "power_w", sign=-1.0),
    FieldSpec(("ri",), PHASE_TOTAL, "reactive_power_var"),
    FieldSpec(("re",), PHASE_TOTAL, "reactive_power_var", sign=-1.0),
    FieldSpec(("f",), PHASE_TOTAL, "power_factor"),
    FieldSpec(("ic",), PHASE_TOTAL, "energy_import_kwh"),
    FieldSpec(("ec",), PHASE_TOTAL, "energy_export_kwh"),
    FieldSpec(("ric",), PHASE_TOTAL, "reactive_import_kvarh"),
    FieldSpec(("rec",), PHASE_TOTAL, "reactive_export_kvarh"),
)
_REGISTERS = ("ic", "ec", "ric", "rec")
_POWER_FACTORS: tuple[tuple[str, ...], ...] = (
    ("f",),
    *((f"l{n}", "f") for n in (1, 2, 3)),
    *((f"f{n}",) for n in (1, 2, 3)),
)

DATA_FIELDS: tuple[FieldSpec, ...] = (
    *_TOTAL_FIELDS,
    *_phase_fields(1, "power_w"),
    *_phase_fields(2, "power_w"),
    *_phase_fields(3, "power_w"),
)
"""``data.json`` numbers of current firmware (v2.3.0 and later) and the readings they feed."""

FLAT_DATA_FIELDS: tuple[FieldSpec, ...] = (
    *_TOTAL_FIELDS,
    *_flat_phase_fields(1),
    *_flat_phase_fields(2),
    *_flat_phase_fields(3),
)
"""``data.json`` numbers of firmware before v2.3.0 (flat, no per-phase power)."""

DATA_EXTRAS: tuple[ExtraSpec, ...] = (
    ExtraSpec(("t",), "temperature_c", above=_NO_SENSOR_C),
    ExtraSpec(("r",), "rssi_dbm", above=-math.inf),
    ExtraSpec(("v",), "vcc_v"),
    ExtraSpec(("u",), "uptime_s"),
    ExtraSpec(("ea", "h", "u"), "hour_import_kwh"),
    ExtraSpec(("ea", "h", "p"), "hour_export_kwh"),
    ExtraSpec(("ea", "d", "u"), "day_import_kwh"),
    ExtraSpec(("ea", "d", "p"), "day_export_kwh"),
    ExtraSpec(("ea", "m", "u"), "month_import_kwh"),
    ExtraSpec(("ea", "m", "p"), "month_export_kwh"),
    ExtraSpec(("ea", "x"), "capacity_month_max_kwh"),
    ExtraSpec(("ea", "t"), "capacity_threshold_kwh"),
)
"""``data.json`` numbers kept as device extras."""


# --- the engine -------------------------------------------------------------------------------
def require_object(document: object, what: str) -> Mapping[str, object]:
    """Return ``document`` as a JSON object or raise PayloadError naming ``what``."""
    if not isinstance(document, dict):
        raise PayloadError(f"{what} is {type(document).__name__}, not a JSON object")
    return document


def _lookup(document: Mapping[str, object], path: Sequence[str]) -> object:
    node: object = document
    for key in path:
        if not isinstance(node, dict):
            raise PayloadError(f"AMS reader field {'.'.join(path)} sits in a non-object")
        node = node.get(key)
        if node is None:
            return None
    return node


def _number(raw: object, path: Sequence[str]) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise PayloadError(f"AMS reader field {'.'.join(path)} is {raw!r}, not a number")
    try:
        value = float(raw)
    except OverflowError as exc:
        raise PayloadError(f"AMS reader field {'.'.join(path)} is out of range") from exc
    if not math.isfinite(value):
        raise PayloadError(f"AMS reader field {'.'.join(path)} is {value}, not finite")
    return value


def _flag_set(document: Mapping[str, object], path: Sequence[str] | None) -> bool:
    if path is None:
        return False
    raw = _lookup(document, path)
    if raw is None:
        return False  # no flag: nothing is said to be missing
    if isinstance(raw, bool | int | float):
        return bool(raw)
    raise PayloadError(f"AMS reader flag {'.'.join(path)} is {raw!r}, not true or false")


def readings_from(
    document: Mapping[str, object], specs: Sequence[FieldSpec], meter_id: str, ts: datetime
) -> list[Reading]:
    """Build one reading per phase the specs find numbers for; a phase of only zeros is absent."""
    by_phase: dict[int, dict[str, float]] = {}
    for spec in specs:
        value = _number(_lookup(document, spec.path), spec.path)
        if value is None or _flag_set(document, spec.missing_if):
            continue
        fields = by_phase.setdefault(spec.phase, {})
        fields[spec.field] = fields.get(spec.field, 0.0) + spec.sign * value
    readings: list[Reading] = []
    for phase in sorted(by_phase):
        fields = by_phase[phase]
        if phase != PHASE_TOTAL and not any(fields.values()):
            continue
        values = (fields.get(name) for name in READING_FIELDS)
        readings.append(Reading(meter_id, ts, phase, *values))
    return readings


def extras_from(
    document: Mapping[str, object], specs: Sequence[ExtraSpec], meter_id: str, ts: datetime
) -> list[Extra]:
    """Build the device extras the specs find numbers for."""
    extras: list[Extra] = []
    for spec in specs:
        value = _number(_lookup(document, spec.path), spec.path)
        if value is not None and value > spec.above:
            extras.append(Extra(meter=meter_id, ts=ts, name=spec.name, value=value))
    return extras


def epoch_time(raw: object, what: str) -> datetime | None:
    """Read epoch seconds; missing, or before 2020 (a clock not yet set), gives None.

    A reader without NTP counts its clock from boot (``5012`` is 5012 s after power-on).
    """
    seconds = _number(raw, (what,))
    if seconds is not None and seconds < 0:
        raise PayloadError(f"AMS reader {what} {seconds} is negative, not a time")
    if seconds is None or seconds < _EARLIEST.timestamp():
        return None
    try:
        ts = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise PayloadError(f"AMS reader {what} {seconds} is not a time") from exc
    if ts >= _LATEST:
        raise PayloadError(f"AMS reader {what} {ts.isoformat()} is not a plausible time")
    return ts


# --- data.json --------------------------------------------------------------------------------
def firmware_version(sysinfo: object) -> tuple[int, int, int] | None:
    """Return ``sysinfo.json``'s ``version`` (``"v2.3.9"``) as numbers, None if not a release."""
    version = sysinfo.get("version") if isinstance(sysinfo, dict) else None
    if not isinstance(version, str):
        return None
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?", version.strip())
    if match is None:
        return None
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def q_is_export(version: tuple[int, int, int] | None) -> bool | None:
    """Say whether ``l1..l3.q`` is export power (True), reactive power (False) or unknown (None)."""
    if version is None:
        return None
    return version >= _Q_AS_EXPORT


def _is_zero(document: Mapping[str, object], path: Sequence[str]) -> bool:
    raw = _lookup(document, path)
    return isinstance(raw, int | float) and not isinstance(raw, bool) and raw == 0


def _cleared(document: Mapping[str, object], paths: Sequence[Sequence[str]]) -> dict[str, object]:
    """Return a copy of ``document`` with the numbers at ``paths`` taken out."""
    copied: dict[str, object] = dict(document)
    for path in paths:
        node = copied
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                break
            node[key] = node = dict(child)
        else:
            node.pop(path[-1], None)
    return copied


def _unreported(data: Mapping[str, object], nested: bool) -> list[tuple[str, ...]]:
    """The zeros in ``data`` that stand for values the meter does not send."""
    absent: list[tuple[str, ...]] = []
    factors = [path for path in _POWER_FACTORS if _lookup(data, path) is not None]
    if all(_is_zero(data, path) for path in factors):  # a meter that sends no power factor
        absent.extend(factors)
    if _is_zero(data, ("ic",)):  # no list-3 frame yet: every register is still 0.000
        absent.extend((key,) for key in _REGISTERS)
    if nested:
        powers = [(f"l{n}", key) for n in (1, 2, 3) for key in ("p", "q")]
        if all(_lookup(data, path) is None or _is_zero(data, path) for path in powers):
            absent.extend(powers)  # list-2/3 meters report no per-phase power
    for n in (1, 2, 3):
        volts, amps = ((f"l{n}", "u"), (f"l{n}", "i")) if nested else ((f"u{n}",), (f"i{n}",))
        current = _lookup(data, amps)
        flowing = isinstance(current, int | float) and not isinstance(current, bool) and current > 0
        if flowing and _is_zero(data, volts):  # IT-grid Kaifa meters send no L2 voltage
            absent.append(volts)
    return absent


def without_unmeasured_voltages(
    document: Mapping[str, object], specs: Sequence[FieldSpec]
) -> Mapping[str, object]:
    """Return ``document`` without the phase voltages of 0 while that phase's current flows.

    An IT-grid Kaifa meter measures no L2 voltage and the reader prints it as 0; a phase that
    carries current has a voltage, so the 0 is not a measurement. ``specs`` say where each
    phase's ``voltage_v`` and ``current_a`` are.
    """

    def path_of(phase: int, field: str) -> tuple[str, ...] | None:
        return next((s.path for s in specs if s.phase == phase and s.field == field), None)

    absent: list[tuple[str, ...]] = []
    for phase in (1, 2, 3):
        volts, amps = path_of(phase, "voltage_v"), path_of(phase, "current_a")
        if volts is None or amps is None:
            continue
        current = _lookup(document, amps)
        flowing = isinstance(current, int | float) and not isinstance(current, bool) and current > 0
        if flowing and _is_zero(document, volts):
            absent.append(volts)
    return _cleared(document, absent) if absent else document


def map_data_json(
    document: object,
    meter_id: str,
    received_at: datetime,
    version: tuple[int, int, int] | None = None,
) -> Fetched:
    """Map ``/data.json`` to per-phase readings and device extras.

    ``version`` is the reader's firmware (:func:`firmware_version` of ``sysinfo.json``); it says
    what ``l1..l3.q`` means, and without it ``q`` and the per-phase power are left out. The
    readings are stamped by the clock ``c`` when it is set, else by ``received_at``.
    """
    data = require_object(document, "AMS reader data.json")
    ts = epoch_time(data.get("c"), "clock c") or received_at
    nested = any(key in data for key in ("l1", "l2", "l3"))
    if nested:
        export = q_is_export(version)
        q_field = None if export is None else "power_w" if export else "reactive_power_var"
        specs = (*_TOTAL_FIELDS, *(spec for n in (1, 2, 3) for spec in _phase_fields(n, q_field)))
    else:
        specs = FLAT_DATA_FIELDS
    cleaned = _cleared(data, _unreported(data, nested))
    return Fetched(
        readings=readings_from(cleaned, specs, meter_id, ts),
        extras=extras_from(data, DATA_EXTRAS, meter_id, ts),
    )


def phases_in(document: object) -> int:
    """Return how many phases ``/data.json`` shows voltage on (at least 1)."""
    data = require_object(document, "AMS reader data.json")
    paths = [(f"l{n}", "u") if f"l{n}" in data else (f"u{n}",) for n in (1, 2, 3)]
    live = [
        n for n, path in zip((1, 2, 3), paths, strict=True) if (_number(_lookup(data, path), path) or 0.0) > 0
    ]
    return max(live, default=1)


# --- temperature.json -------------------------------------------------------------------------
def sensor_extra_name(address: str) -> str:
    """Return the extra a 1-Wire sensor's readings are kept under: ``temperature_<address>_c``."""
    return f"temperature_{address.lower()}_c"


def temperature_extras(document: object, meter_id: str, ts: datetime) -> list[Extra]:
    """Map ``/temperature.json`` to one extra per sensor that gives a reading, stamped ``ts``.

    The firmware prints ``{"c": count, "s": [{"i", "a": 16 hex digits, "n", "c", "v"}, ...]}``;
    a reading of -127 (or below -85) means the sensor did not answer and is left out.
    """
    data = require_object(document, "AMS reader temperature.json")
    sensors = data.get("s")
    if not isinstance(sensors, list):
        raise PayloadError(f"AMS reader temperature.json s is {sensors!r}, not a list of sensors")
    extras: list[Extra] = []
    for position, sensor in enumerate(sensors):
        entry = require_object(sensor, f"AMS reader temperature.json sensor {position}")
        address = entry.get("a")
        if not isinstance(address, str) or _SENSOR_ADDRESS.fullmatch(address) is None:
            raise PayloadError(
                f"AMS reader temperature.json sensor {position} address {address!r} is not 16 hex digits"
            )
        value = _number(entry.get("v"), ("s", str(position), "v"))
        if value is not None and value > _NO_SENSOR_C:
            extras.append(Extra(meter=meter_id, ts=ts, name=sensor_extra_name(address), value=value))
    return extras


def sensor_count(document: object) -> int:
    """Return how many sensors ``/temperature.json`` lists (0 when it is not the firmware's shape)."""
    sensors = document.get("s") if isinstance(document, dict) else None
    return len(sensors) if isinstance(sensors, list) else 0


# --- dayplot.json and monthplot.json ----------------------------------------------------------
def _unit_factor(plot: Mapping[str, object], what: str) -> float:
    unit = plot.get("unit", "kwh")
    factor = _UNIT_KWH.get(unit.lower()) if isinstance(unit, str) else None
    if factor is None:
        raise PayloadError(f"AMS reader {what} unit is {unit!r}, not kwh or wh")
    return factor


def _energy(plot: Mapping[str, object], key: str, factor: float) -> float | None:
    value = _number(plot.get(key), (key,))
    if value is None:
        return None
    if value < 0:
        raise PayloadError(f"AMS reader plot value {key} is negative ({value})")
    return value * factor


def _plot_record(
    plot: Mapping[str, object],
    slot: int,
    factor: float,
    span: tuple[datetime, datetime, str],
    meter_id: str,
) -> IntervalEnergy | None:
    import_kwh = _energy(plot, f"i{slot:02d}", factor)
    export_kwh = _energy(plot, f"e{slot:02d}", factor)
    if import_kwh is None and export_kwh is None:
        return None
    start, end, source = span
    return IntervalEnergy(meter_id, start, end, import_kwh, export_kwh, source)


def dayplot_intervals(
    document: object, meter_id: str, now: datetime, settle_s: float = SETTLE_S
) -> list[IntervalEnergy]:
    """Map ``/dayplot.json`` to hourly records of the 24 closed UTC hours before ``now``."""
    plot = require_object(document, "AMS reader dayplot.json")
    factor = _unit_factor(plot, "dayplot.json")
    now = now.astimezone(UTC)
    current = now.replace(minute=0, second=0, microsecond=0)
    settled = (now - current).total_seconds() >= settle_s
    records: list[IntervalEnergy] = []
    for hour in range(24):
        start = current.replace(hour=hour)
        if start >= current:
            start -= DAY
        if start + HOUR == current and not settled:
            continue
        record = _plot_record(plot, hour, factor, (start, start + HOUR, SOURCE_DAYPLOT), meter_id)
        if record is not None:
            records.append(record)
    return sorted(records, key=lambda record: record.start)


def _local_midnight(day: date, zone: tzinfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _month_slot_day(slot: int, today: date) -> date | None:
    """Return the day a monthplot slot holds: this month before today, else last month's."""
    if slot < today.day:
        return today.replace(day=slot)
    last_month = today.replace(day=1) - DAY
    if slot > calendar.monthrange(last_month.year, last_month.month)[1]:
        return None
    return last_month.replace(day=slot)


def monthplot_intervals(
    document: object, meter_id: str, now: datetime, zone: tzinfo, settle_s: float = SETTLE_S
) -> list[IntervalEnergy]:
    """Map ``/monthplot.json`` to daily records of the local days (in ``zone``) it holds."""
    plot = require_object(document, "AMS reader monthplot.json")
    factor = _unit_factor(plot, "monthplot.json")
    local_now = now.astimezone(zone)
    today = local_now.date()
    settled = (now - _local_midnight(today, zone)).total_seconds() >= settle_s
    records: list[IntervalEnergy] = []
    for slot in range(1, 32):
        day = _month_slot_day(slot, today)
        if day is None or (day == today - DAY and not settled):
            continue
        span = (_local_midnight(day, zone), _local_midnight(day + DAY, zone), SOURCE_MONTHPLOT)
        record = _plot_record(plot, slot, factor, span, meter_id)
        if record is not None:
            records.append(record)
    return sorted(records, key=lambda record: record.start)
