"""Map the AMS reader's HTTP answers to the canonical model (pure).

Payload fields are declared as data: one :class:`FieldSpec` per number that feeds a reading,
one :class:`ExtraSpec` per device extra. ``data.json`` gives phase 0 from the meter's totals and
phases 1 to 3 from ``l1``..``l3``, where, in current firmware, ``p`` is import and ``q`` export
power (so ``power_w = p - q``) and ``l2.e`` says whether the meter measures L2 current at all.
``dayplot.json`` keys are UTC hours of the last 24 closed hours; ``monthplot.json`` keys are days
of the month, a ring whose not-yet-reached days still hold last month's figures.
The same engine maps the reader's MQTT payloads (:mod:`meterhub.mqtt_mapping`).
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from meterhub.errors import PayloadError
from meterhub.model import PHASE_TOTAL, READING_FIELDS, Extra, IntervalEnergy, Reading
from meterhub.vendors.base import Fetched

__all__ = [
    "DATA_EXTRAS",
    "DATA_FIELDS",
    "SOURCE_DAYPLOT",
    "SOURCE_MONTHPLOT",
    "ExtraSpec",
    "FieldSpec",
    "dayplot_intervals",
    "epoch_time",
    "extras_from",
    "map_data_json",
    "monthplot_intervals",
    "phases_in",
    "readings_from",
    "require_object",
]

SOURCE_DAYPLOT = "amsreader.dayplot"
SOURCE_MONTHPLOT = "amsreader.monthplot"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SETTLE_S = 120.0
"""How long after an hour (or day) ends the reader may still show the old figure in its slot."""
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_UNIT_KWH: Mapping[str, float] = {"kwh": 1.0, "wh": 0.001}
_NO_SENSOR_C = -85.0
"""The reader reports -127 °C (or below -85) when no temperature sensor answers."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One number of a payload, the phase and reading field it feeds, and its sign there."""

    path: tuple[str, ...]
    phase: int
    field: str
    sign: float = 1.0
    when: tuple[str, ...] | None = None
    """A flag that must not be false for the field to count (``l2.e``: L2 current present)."""


@dataclass(frozen=True, slots=True)
class ExtraSpec:
    """One number of a payload kept as a device extra; values at or below ``above`` mean none."""

    path: tuple[str, ...]
    name: str
    above: float = -math.inf


def _phase_fields(phase: int) -> tuple[FieldSpec, ...]:
    line = f"l{phase}"
    present = (line, "e") if phase == 2 else None
    return (
        FieldSpec((line, "u"), phase, "voltage_v"),
        FieldSpec((line, "i"), phase, "current_a", when=present),
        FieldSpec((line, "p"), phase, "power_w"),
        FieldSpec((line, "q"), phase, "power_w", sign=-1.0),
        FieldSpec((line, "f"), phase, "power_factor"),
    )


DATA_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(("i",), PHASE_TOTAL, "power_w"),
    FieldSpec(("e",), PHASE_TOTAL, "power_w", sign=-1.0),
    FieldSpec(("ri",), PHASE_TOTAL, "reactive_power_var"),
    FieldSpec(("re",), PHASE_TOTAL, "reactive_power_var", sign=-1.0),
    FieldSpec(("f",), PHASE_TOTAL, "power_factor"),
    FieldSpec(("ic",), PHASE_TOTAL, "energy_import_kwh"),
    FieldSpec(("ec",), PHASE_TOTAL, "energy_export_kwh"),
    FieldSpec(("ric",), PHASE_TOTAL, "reactive_import_kvarh"),
    FieldSpec(("rec",), PHASE_TOTAL, "reactive_export_kvarh"),
    *_phase_fields(1),
    *_phase_fields(2),
    *_phase_fields(3),
)
"""``data.json`` numbers and the readings they feed."""

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
        return True
    raw = _lookup(document, path)
    if raw is None:
        return True  # no flag: the field is there
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
        if value is None or not _flag_set(document, spec.when):
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
    """Read epoch seconds; 0 or missing (a clock not yet set) gives None."""
    seconds = _number(raw, (what,))
    if not seconds:
        return None
    try:
        ts = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise PayloadError(f"AMS reader {what} {seconds} is not a time") from exc
    if not _EARLIEST <= ts < _LATEST:
        raise PayloadError(f"AMS reader {what} {ts.isoformat()} is not a plausible time")
    return ts


# --- data.json --------------------------------------------------------------------------------
def map_data_json(document: object, meter_id: str, received_at: datetime) -> Fetched:
    """Map ``/data.json`` to per-phase readings and device extras, stamped by its clock ``c``."""
    data = require_object(document, "AMS reader data.json")
    ts = epoch_time(data.get("c"), "clock c") or received_at
    return Fetched(
        readings=readings_from(data, DATA_FIELDS, meter_id, ts),
        extras=extras_from(data, DATA_EXTRAS, meter_id, ts),
    )


def phases_in(document: object) -> int:
    """Return how many phases ``/data.json`` shows voltage on (at least 1)."""
    data = require_object(document, "AMS reader data.json")
    live = [
        phase
        for phase in (1, 2, 3)
        if (_number(_lookup(data, (f"l{phase}", "u")), (f"l{phase}", "u")) or 0.0) > 0
    ]
    return max(live, default=1)


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
