"""Pure functions from smart-MAC ``getdata`` answers to the canonical model.

The device's answer is not strict JSON: the ``br0..br2`` names hold a raw line break. Every
value is a string, sometimes padded with spaces (``"  586"``). Fields are mapped declaratively
(:data:`PHASE_FIELDS`): each reading field is the sum of device keys times a factor, so Wh
becomes kWh and reverse power becomes negative (export) power. Newer firmware adds ``Fr1..3``
per line and the totals ``A``, ``W`` and ``TWh``. A single-line device has phase 0 only; a
three-line device has phases 1..3 and their total as phase 0. Anything that cannot be mapped
raises :class:`PayloadError`.

A device sends its keys in the same order on every answer, so the plan for one key order is
worked out once (a :class:`~meterhub.readingblocks.RowsPlan`), and each answer becomes a block of
its numbers read in a few C calls, which ingest takes as columns. An answer the plan cannot read
plainly (a null entry, a value that is no number, lines with different fields) takes the
field-by-field path, which maps it the same way or raises the error it deserves.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, NamedTuple

import orjson

from meterhub.errors import PayloadError
from meterhub.model import PHASE_TOTAL, READING_FIELDS, Extra, Reading
from meterhub.readingblocks import LIVE_PHASE_MIN_V as LIVE_PHASE_MIN_V_BLOCKS
from meterhub.readingblocks import PlannedRows, RowsPlan, Total, add_up, epoch_us, live_mean

__all__ = [
    "EXTRA_FIELDS",
    "LINES",
    "PHASE_FIELDS",
    "REPORTED_RELAY_OFF",
    "REPORTED_RELAY_ON",
    "TOTAL_FIELDS",
    "DeviceField",
    "DeviceSnapshot",
    "decode",
    "device_time",
    "map_getdata",
    "relay_state",
]

# The seed contradicts itself on the relay (see client.REQUEST_RELAY_ON): in an *answer*,
# "pout" follows its JSON comment, "relay status 0-Off / 1-On".
REPORTED_RELAY_ON = "1"
"""``"pout": "1"`` in an answer: the relay is on."""
REPORTED_RELAY_OFF = "0"
"""``"pout": "0"`` in an answer: the relay is off."""

WH_PER_KWH = 1000.0
LINES = (1, 2, 3)
"""The device's measuring lines; per-line keys carry the number as a suffix (``V1``)."""
LIVE_PHASE_MIN_V = LIVE_PHASE_MIN_V_BLOCKS
"""Below this a line is not connected and stays out of the phase-0 voltage mean."""


@dataclass(frozen=True, slots=True)
class DeviceField:
    """A reading field as the sum of device values, each times its factor: ``(key, factor)``."""

    target: str
    terms: tuple[tuple[str, float], ...]


PHASE_FIELDS: tuple[DeviceField, ...] = (
    DeviceField("voltage_v", (("V", 1.0),)),
    DeviceField("current_a", (("A", 1.0),)),
    DeviceField("power_w", (("W", 1.0), ("rW", -1.0))),  # import minus reverse (export) power
    DeviceField("power_factor", (("PF", 1.0),)),
    DeviceField("frequency_hz", (("Fr", 1.0),)),  # newer firmware
    DeviceField("energy_import_kwh", (("Wh", 1 / WH_PER_KWH),)),
    DeviceField("energy_export_kwh", (("rWh", 1 / WH_PER_KWH),)),
)
"""Per-line fields; keys get the line number appended."""

TOTAL_FIELDS: tuple[DeviceField, ...] = (
    DeviceField("current_a", (("A", 1.0),)),
    DeviceField("energy_import_kwh", (("TWh", 1 / WH_PER_KWH),)),
)
"""Newer firmware's device-wide totals, preferred for phase 0. Its total ``W`` is import power
only (no reverse total is sent), so phase-0 power stays the exact sum of the lines' net power."""

EXTRA_FIELDS: tuple[tuple[str, str], ...] = (("T", "temperature_c"),)
"""Device values that become named extras: (key in ``data``, extra name)."""
RELAY_EXTRA = "relay_on"
POWER_LIMIT_EXTRA = "power_limit_w"
"""Newer firmware's top-level ``powset``."""


PhaseRule = Callable[[Sequence[Any]], float | None]
"""Makes phase 0's value of a field from the phases' values (floats; typed loosely so the hot
loop needs no casts)."""
_FIRST: PhaseRule = itemgetter(0)

PHASE_TOTAL_RULES: dict[str, PhaseRule | None] = {
    "voltage_v": live_mean,
    "current_a": add_up,
    "power_w": add_up,
    "reactive_power_var": None,
    "power_factor": None,  # not derivable from the lines' power factors alone
    "frequency_hz": _FIRST,
    "energy_import_kwh": add_up,
    "energy_export_kwh": add_up,
    "reactive_import_kvarh": None,
    "reactive_export_kvarh": None,
}
"""How phase 0 is made from the lines of a multi-line device."""

Plan = tuple[tuple[int, str, float], ...]
"""(index in READING_FIELDS, suffixed key, factor) of each term a device may send."""
Values = list[float | None]
"""A line's values in READING_FIELDS order."""


def _plan(fields: tuple[DeviceField, ...], suffix: str) -> Plan:
    """Return where each field goes and its terms with keys suffixed."""
    return tuple((READING_FIELDS.index(f.target), f"{key}{suffix}", factor)
                 for f in fields for key, factor in f.terms)


_LINE_PLANS: tuple[Plan, ...] = tuple(_plan(PHASE_FIELDS, str(line)) for line in LINES)
_TOTAL_PLAN: Plan = _plan(TOTAL_FIELDS, "")
_RULES = tuple(PHASE_TOTAL_RULES[name] for name in READING_FIELDS)
_LINE_FILLED = frozenset(index for index, _, _ in _LINE_PLANS[0])
_TOTAL_FILLED = frozenset(index for index, _, _ in _TOTAL_PLAN)
_TOTALLED = tuple(
    (index, _RULES[index]) for index in range(len(READING_FIELDS))
    if index in _TOTAL_FILLED or (index in _LINE_FILLED and _RULES[index] is not None)
)
"""The fields phase 0 can know: a device total, or a rule over fields the lines send (the
others, such as reactive power or the power factor, stay unknown)."""
_NEW_READING: Callable[[type[Reading], tuple[Any, ...]], Reading] = tuple.__new__
"""Builds a reading from the tuple of its fields as ``Reading._make`` does, without its Python call."""


class DeviceSnapshot(NamedTuple):
    """One ``getdata`` answer in the model: readings, extras and the relay state (immutable, and
    cheap to build once per poll, as a reading is)."""

    readings: Sequence[Reading]
    """A :class:`~meterhub.readingblocks.PlannedRows` for a usual answer, which ingest takes as columns."""
    extras: list[Extra]
    relay_on: bool | None
    phases: int


_NEW_SNAPSHOT: Callable[[type[DeviceSnapshot], tuple[Any, ...]], DeviceSnapshot] = tuple.__new__


def decode(body: bytes) -> Any:
    """Parse a device answer: JSON whose strings may hold raw line breaks (``br0..br2``)."""
    try:
        # Escaping raw breaks is exact when they sit inside strings (a backslash outside one is
        # invalid JSON, so any other case fails here and takes the lenient parser below).
        return orjson.loads(body.replace(b"\r", b"\\r").replace(b"\n", b"\\n"))
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body.decode("utf-8", errors="replace"), strict=False)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"smart-MAC answered something that is not JSON: {exc}") from exc


def _values(data: dict[str, Any], plan: Plan) -> Values:
    """Return the plan's fields from ``data``; raise PayloadError on a malformed value."""
    values: Values = [None] * len(READING_FIELDS)
    numbers: list[float] = []
    try:
        for index, key, factor in plan:
            entry = data.get(key)
            if entry is not None:
                number = float(entry["value"]) * factor  # float() strips the padding
                numbers.append(number)
                known = values[index]
                values[index] = number if known is None else known + number
    except (TypeError, KeyError, ValueError, OverflowError) as exc:
        raise PayloadError(f"smart-MAC data has a value that is not a number: {exc}") from exc
    if not all(map(math.isfinite, numbers)):
        raise PayloadError(f"smart-MAC data has a value that is not finite: {values}")
    return values


def _phase_total(lines: list[Values], totals: Values) -> Values:
    """Return phase 0 from the lines' known values; the device's own totals win."""
    result: Values = [None] * len(READING_FIELDS)
    columns = list(zip(*lines, strict=True))
    for index, rule in _TOTALLED:
        total = totals[index]
        if total is not None:
            result[index] = total
            continue
        column = columns[index]
        if rule is None:
            continue
        if None not in column:
            result[index] = rule(column)
        elif column.count(None) != len(column):
            result[index] = rule([v for v in column if v is not None])
    return result


def device_time(answer: object) -> datetime | None:
    """Return the answer's ``time`` (UNIX seconds as text), or None when it has none."""
    if type(answer) is not dict or answer.get("time") is None:
        return None
    try:
        return datetime.fromtimestamp(float(answer["time"]), UTC)
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise PayloadError(f"smart-MAC time {answer['time']!r} is not UNIX seconds") from exc


def relay_state(answer: object) -> bool | None:
    """Return the relay state an answer reports (``pout``), or None when it reports none."""
    if type(answer) is not dict or answer.get("pout") is None:
        return None
    pout = answer["pout"]
    text = pout.strip() if isinstance(pout, str) else pout
    if text == REPORTED_RELAY_ON:
        return True
    if text == REPORTED_RELAY_OFF:
        return False
    raise PayloadError(f"smart-MAC pout {pout!r} is neither {REPORTED_RELAY_OFF} nor {REPORTED_RELAY_ON}")


def map_getdata(answer: object, meter_id: str, ts: datetime | None = None) -> DeviceSnapshot:
    """Map a ``getdata`` answer at ``ts`` (default: the device's own ``time``)."""
    if type(answer) is not dict:
        raise PayloadError("smart-MAC answered JSON that is not an object")
    if "error" in answer:
        raise PayloadError(f"smart-MAC device error: {answer['error']!r}")
    data = answer.get("data")
    if type(data) is not dict:
        raise PayloadError("smart-MAC answer has no data object")
    ts = ts or device_time(answer)
    if ts is None:
        raise PayloadError("smart-MAC answer has no time")
    readings: Sequence[Reading] = _planned_block(data, meter_id, ts) or _field_readings(data, meter_id, ts)
    relay_on = relay_state(answer)
    phases = 1 if len(readings) == 1 else len(readings) - 1
    extras = _extras(answer, data, meter_id, ts, relay_on)
    return _NEW_SNAPSHOT(DeviceSnapshot, (readings, extras, relay_on, phases))


def _field_readings(data: dict[str, Any], meter_id: str, ts: datetime) -> list[Reading]:
    """Return phase 0 and the lines' readings, field by field; raise PayloadError when unmappable."""
    lines = [values for values in (_values(data, plan) for plan in _LINE_PLANS)
             if values.count(None) != len(values)]
    if not lines:
        raise PayloadError("smart-MAC data has no measuring line (V1, A1, W1, ...)")
    rows = [lines[0]] if len(lines) == 1 else [_phase_total(lines, _values(data, _TOTAL_PLAN)), *lines]
    new = _NEW_READING
    return [new(Reading, (meter_id, ts, phase, *values)) for phase, values in enumerate(rows)]


Projection = Callable[[Any], Any]
"""A getter of some items: an answer's entries, or of its numbers a reading's fields or a column."""


_PHASES = (PHASE_TOTAL, *LINES)
_SHAPES_KEPT = 64
"""Key orders whose plan is remembered; a hub's devices send a handful (firmwares, line counts)."""
_shapes: dict[tuple[str, ...], tuple[Projection, RowsPlan] | None] = {}
"""The plan of each key order: a getter of the entries of every term the answer sends (and phase 0
needs), in one call, and how their numbers become readings."""
_VALUE = itemgetter("value")
_TOTALS = {live_mean: Total.LIVE_MEAN, add_up: Total.SUM, _FIRST: Total.FIRST}
"""Each phase rule as :class:`~meterhub.readingblocks.RowsPlan` makes it by columns."""


def _planned_block(data: dict[str, Any], meter_id: str, ts: datetime) -> PlannedRows | None:
    """Return phase 0 and the lines' readings by the plan of ``data``'s key order, or None when
    the answer needs the field-by-field path (whose readings these equal, value for value)."""
    keys = tuple(data)
    try:
        shape = _shapes[keys]
    except KeyError:
        if len(_shapes) >= _SHAPES_KEPT:
            return None  # planning each answer anew would cost more than reading it field by field
        shape = _shapes[keys] = _shape_of(keys)
    if shape is None:
        return None
    entries, plan = shape
    try:
        numbers = list(map(float, map(_VALUE, entries(data))))
    except (TypeError, KeyError, ValueError, OverflowError):
        return None
    total = sum(numbers)
    if total - total != 0.0:  # NaN or infinity somewhere (or a sum that overflows): the field path says
        return None
    return PlannedRows(meter_id, epoch_us(ts), numbers, plan)


def _planned_readings(data: dict[str, Any], meter_id: str, ts: datetime) -> list[Reading] | None:
    """Return the readings of :func:`_planned_block`, or None when it steps aside."""
    block = _planned_block(data, meter_id, ts)
    return None if block is None else list(block)


def _shape_of(keys: tuple[str, ...]) -> tuple[Projection, RowsPlan] | None:
    """Return the plan for ``data`` with these keys, or None when lines send different fields."""
    present = frozenset(keys)
    terms: list[str] = []
    factors: list[float] = []
    summed: list[tuple[int, int]] = []

    def place(plan: Plan) -> dict[int, int]:
        """Take the plan's terms the answer sends; return each field's first term's position."""
        first_of: dict[int, int] = {}
        for index, key, factor in plan:
            if key in present:
                terms.append(key)
                factors.append(factor)
                if index in first_of:
                    summed.append((first_of[index], len(terms) - 1))
                else:
                    first_of[index] = len(terms) - 1
        return first_of

    lines = [first_of for first_of in map(place, _LINE_PLANS) if first_of]
    if not lines or any(line.keys() != lines[0].keys() for line in lines):
        return None
    totals = place(_TOTAL_PLAN) if len(lines) > 1 else {}  # the device's own, which win
    rules = [(index, rule) for index, rule in _TOTALLED
             if len(lines) > 1 and index not in totals and rule is not None and index in lines[0]]
    made = {index: len(terms) + count for count, (index, _) in enumerate(rules)}
    unknown = len(terms) + len(rules)
    rows = [{**made, **totals}] if len(lines) > 1 else []
    rows.extend(lines)
    return _getter(terms), RowsPlan(
        width=len(terms),
        factors=tuple(factors),
        summed=tuple(summed),
        totals=tuple((_TOTALS[rule], tuple(line[index] for line in lines)) for index, rule in rules),
        cells=tuple(tuple(row.get(index, unknown) for index in range(len(READING_FIELDS))) for row in rows),
        phases=_PHASES[: len(rows)] if len(lines) > 1 else (PHASE_TOTAL,),
    )


def _getter(items: list[Any]) -> Projection:
    """Return a getter of ``items`` that always answers a tuple (itemgetter of one does not)."""
    if len(items) == 1:
        only = items[0]
        return lambda source: (source[only],)
    return itemgetter(*items)


_NEW_EXTRA: Callable[[type[Extra], tuple[Any, ...]], Extra] = tuple.__new__
"""Builds an extra from the tuple of its fields without its Python call (what ``Extra._make`` does)."""


def _extra(meter_id: str, ts: datetime, name: str, value: float) -> Extra:
    """Return ``Extra(meter_id, ts, name, value)``, built without a Python call: on every poll."""
    return _NEW_EXTRA(Extra, (meter_id, ts, name, value))


def _extras(answer: dict[str, Any], data: dict[str, Any], meter_id: str, ts: datetime,
            relay_on: bool | None) -> list[Extra]:
    extras = []
    for key, name in EXTRA_FIELDS:
        entry = data.get(key)
        if entry is not None:
            value = entry.get("value") if type(entry) is dict else entry
            extras.append(_extra(meter_id, ts, name, _scalar(value, key)))
    if relay_on is not None:
        extras.append(_extra(meter_id, ts, RELAY_EXTRA, 1.0 if relay_on else 0.0))
    power_limit = answer.get("powset")
    if power_limit is not None:
        extras.append(_extra(meter_id, ts, POWER_LIMIT_EXTRA, _scalar(power_limit, "powset")))
    return extras


def _scalar(value: object, key: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]  # anything else raises TypeError
    except (TypeError, ValueError, OverflowError) as exc:
        raise PayloadError(f"smart-MAC {key} {str(value)[:40]!r} is not a number") from exc
    if number - number != 0.0:
        raise PayloadError(f"smart-MAC {key} {value!r} is not finite")
    return number
