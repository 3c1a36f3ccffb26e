"""Pure functions from IAMMETER payloads (cloud API and local ``/monitorjson``) to the model.

Row layouts are data: a row of 5, 6 or 7 numbers is read by the layout of its width
(:data:`ROW_LAYOUTS`), and ``null`` padding reads as "not measured". How phases become the
whole-meter phase 0 is data too (:data:`PHASE_TOTAL_RULES`); the NEM net row, when a payload has
one, *is* phase 0. A single-phase meter has phase 0 only. Cloud times (``YYYY/M/D H:MM:SS``, no
zero padding) are read from ``gmtTime`` as UTC. Anything that cannot be mapped, a failure
envelope included, raises :class:`PayloadError` (the client tells rejected tokens apart).

A poll's or a history window's usual answer is handed to ingest as a block
(:func:`meterdata_block`, :func:`meterdatalist2_block`), which it takes as columns; the
``map_*`` functions give the same readings one by one.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from operator import itemgetter
from typing import Any, cast
from zoneinfo import ZoneInfo

import orjson

from meterhub import readingblocks
from meterhub.errors import PayloadError
from meterhub.model import PHASE_TOTAL, READING_FIELDS, IntervalEnergy, Reading
from meterhub.readingblocks import PlannedRows, ReadingBlock, RowsPlan, Total, add_up, epoch_us, live_mean

__all__ = [
    "ADVANCED_ROW",
    "BASIC_ROW",
    "BLOCK_TOTALS",
    "ENERGYHISTORY_ROLE_FIELDS",
    "FULL_ROW",
    "LIVE_PHASE_MIN_V",
    "PHASE_TOTAL_RULES",
    "REACTIVE_ROW",
    "ROW_LAYOUTS",
    "MetersdataMeter",
    "decode",
    "failure_message",
    "map_energyhistory",
    "map_meterdata",
    "map_meterdatalist",
    "map_meterdatalist2",
    "map_meterdatalist2_items",
    "map_metersdata",
    "map_monitorjson",
    "meterdata_block",
    "meterdatalist2_block",
    "metersdata_meters",
    "monitorjson_phases",
    "monitorjson_sn",
    "parse_vendor_time",
    "unwrap",
    "vendor_time_us",
]

BASIC_ROW = ("voltage_v", "current_a", "power_w", "energy_import_kwh", "energy_export_kwh")
"""meterdata, meterdatalist and legacy ``/monitorjson``: V, A, W, import kWh, export kWh."""
ADVANCED_ROW = ("voltage_v", "current_a", "power_w", "power_factor", "energy_import_kwh",
                "energy_export_kwh")
"""meterdata2 and meterdatalist2: the power factor after the power."""
FULL_ROW = (*BASIC_ROW, "frequency_hz", "power_factor")
"""metersdata 7-column rows and ``/monitorjson``: frequency and power factor appended."""
ROW_LAYOUTS: dict[int, tuple[str, ...]] = {5: BASIC_ROW, 6: ADVANCED_ROW, 7: FULL_ROW}
"""The layout of a row by its width; NEM rows are basic rows padded to 7 with nulls."""
REACTIVE_ROW = ("reactive_power_var", "reactive_import_kvarh", "reactive_export_kvarh")
"""``/monitorjson`` ``EA.Reactive`` rows: var (the vendor doc says kvar, its values are var),
inductive and capacitive kvarh (read as reactive import and export)."""

NEM_ROWS = 4
"""Three phase rows, then the net (NEM) row of the whole meter."""

LIVE_PHASE_MIN_V = readingblocks.LIVE_PHASE_MIN_V
"""Below this a phase is not connected (open phases read 0 to a few volts of induction)."""

Values = tuple[float | None, ...]
"""A row's values in READING_FIELDS order."""


PhaseRule = Callable[[Sequence[Any]], float | None]
"""Makes phase 0's value of a field from the phases' values (floats; typed loosely so the hot
loop needs no casts)."""
_FIRST: PhaseRule = itemgetter(0)

PHASE_TOTAL_RULES: dict[str, PhaseRule | None] = {
    "voltage_v": live_mean,  # of connected phases only
    "current_a": add_up,
    "power_w": add_up,
    "reactive_power_var": add_up,
    "power_factor": None,  # not derivable from per-phase power factors alone
    "frequency_hz": _FIRST,
    "energy_import_kwh": add_up,
    "energy_export_kwh": add_up,
    "reactive_import_kvarh": add_up,
    "reactive_export_kvarh": add_up,
}
"""How phase 0 is made from the phases' known values when the payload has no net row (None:
left unknown); a field no phase knows stays unknown."""

_RULES = tuple(PHASE_TOTAL_RULES[name] for name in READING_FIELDS)
_NEW_READING: Callable[[type[Reading], tuple[Any, ...]], Reading] = tuple.__new__
"""Builds a reading from the tuple of its fields as ``Reading._make`` does, without its Python call."""


def _projection(layout: tuple[str, ...]) -> Callable[[list[float | None]], Values]:
    """Return a getter from a row (with a None appended) to READING_FIELDS order."""
    missing = len(layout)  # the index of the appended None
    return itemgetter(*(layout.index(name) if name in layout else missing for name in READING_FIELDS))


_PROJECTIONS = {width: _projection(layout) for width, layout in ROW_LAYOUTS.items()}
_REACTIVE_PROJECTIONS = {len(REACTIVE_ROW): _projection(REACTIVE_ROW)}
_SMALL_NUMBERS = {f"{n}": n for n in range(100)} | {f"{n:02d}": n for n in range(10)}
"""Every text of one or two digits, with its number."""
_VENDOR_TIME = re.compile(r"\s*(\d{1,4})/(\d{1,2})/(\d{1,2}) +(\d{1,2}):(\d{1,2}):(\d{1,2})\s*", re.ASCII)
_VENDOR_DATE = re.compile(r"\s*\d{1,4}/\d{1,2}/\d{1,2}", re.ASCII)
"""The date of a vendor time, up to the first space."""
_DATES_KEPT = 64
_dates: dict[str, tuple[int, int, int]] = {}
"""(year, month, day) of the date texts of times read lately (emptied when full): a text whose date
is here and whose clock is ``H:MM:SS`` right after one space is read with lookups alone."""


def decode(body: bytes) -> Any:
    """Parse a JSON body, raising PayloadError when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"IAMMETER answered something that is not JSON: {exc}") from exc


def failure_message(payload: object) -> str | None:
    """Return the message of a failure envelope, or None when ``payload`` is not one."""
    if type(payload) is not dict or (payload.get("successful") is not False and "data" in payload):
        return None
    message = payload.get("message")
    return message if isinstance(message, str) and message else "no reason given"


def unwrap(payload: object) -> Any:
    """Return ``data`` of the vendor's success envelope; raise PayloadError for anything else."""
    if type(payload) is not dict:
        raise PayloadError("IAMMETER answered JSON that is not an object")
    message = failure_message(payload)
    if message is not None:
        raise PayloadError(f"IAMMETER refused the request: {message}")
    return payload["data"]


def parse_vendor_time(text: object, zone: tzinfo = UTC) -> datetime:
    """Read ``YYYY/M/D H:MM:SS`` (no zero padding) as a time in ``zone`` (UTC by default)."""
    if type(text) is str:  # the usual text, read without the pattern: a day's uploads share a date
        date_text, _, clock = text.partition(" ")
        date = _dates.get(date_text)
        if date is not None:
            small = _SMALL_NUMBERS  # a dict lookup is half the price of int() here, on every poll
            try:
                hour_text, minute_text, second_text = clock.split(":")
                return datetime(*date, small[hour_text], small[minute_text], small[second_text], tzinfo=zone)
            except (ValueError, KeyError):
                pass  # spaces around the clock, no clock, or no such time: the pattern path tells
    match = _VENDOR_TIME.fullmatch(text) if type(text) is str else None
    if match is None or not isinstance(text, str):
        raise PayloadError(f"IAMMETER time {text!r} is not like 2023/9/1 0:00:22")
    year, month, day, hour_text, minute_text, second_text = match.groups()
    small = _SMALL_NUMBERS
    date = int(year), small[month], small[day]
    date_text = text.partition(" ")[0]
    if _VENDOR_DATE.fullmatch(date_text):
        if len(_dates) >= _DATES_KEPT:
            _dates.clear()
        _dates[date_text] = date
    return _vendor_datetime(text, *date, small[hour_text], small[minute_text], small[second_text], zone)


_HOUR_US = {text: hour * 3_600_000_000 for text, hour in _SMALL_NUMBERS.items() if hour < 24}
_MINUTE_US = {text: minute * 60_000_000 for text, minute in _SMALL_NUMBERS.items() if minute < 60}
_SECOND_US = {text: second * 1_000_000 for text, second in _SMALL_NUMBERS.items() if second < 60}
_days_us: dict[str, int] = {}
"""Epoch microseconds of the midnights of the date texts :data:`_dates` holds."""


def vendor_time_us(text: object) -> int:
    """Return :func:`parse_vendor_time` of ``text`` (in UTC) as epoch microseconds."""
    if type(text) is str:  # a usual text: lookups and additions, no datetime built
        date_text, _, clock = text.partition(" ")
        day_us = _days_us.get(date_text)
        if day_us is not None:
            try:
                hour_text, minute_text, second_text = clock.split(":")
                return day_us + _HOUR_US[hour_text] + _MINUTE_US[minute_text] + _SECOND_US[second_text]
            except (ValueError, KeyError):
                pass  # spaces around the clock, no clock, or no such time: parse_vendor_time tells
    ts = parse_vendor_time(text)
    date_text = cast(str, text).partition(" ")[0]
    date = _dates.get(date_text)
    if date is not None:
        if len(_days_us) >= _DATES_KEPT:
            _days_us.clear()
        _days_us[date_text] = epoch_us(datetime(*date, tzinfo=UTC))
    return epoch_us(ts)


def _vendor_datetime(text: str, year: int, month: int, day: int, hour: int, minute: int, second: int,
                     zone: tzinfo) -> datetime:
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError as exc:
        raise PayloadError(f"IAMMETER time {text!r} does not exist: {exc}") from exc


def _number(value: object, where: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(cast(str, value))
    except (TypeError, ValueError, OverflowError) as exc:
        raise PayloadError(f"IAMMETER {where}: {value!r} is not a number") from exc
    if number - number != 0.0:
        raise PayloadError(f"IAMMETER {where}: {value!r} is not finite")
    return number


def _energy_kwh(value: object, where: str) -> float | None:
    """Return an energy over an interval; fromGrid and toGrid each count one direction, so never < 0."""
    energy_kwh = _number(value, where)
    if energy_kwh is not None and energy_kwh < 0:
        raise PayloadError(f"IAMMETER {where}: energy {value!r} kWh is negative")
    return energy_kwh


def _row(row: object, where: str,
         projections: Mapping[int, Callable[[list[float | None]], Values]] = _PROJECTIONS) -> Values | None:
    """Return a row's values in READING_FIELDS order, or None when the row is all nulls."""
    if type(row) is not list:
        raise PayloadError(f"IAMMETER {where}: expected a row of numbers, got {type(row).__name__}")
    projection = projections.get(len(row))
    if projection is None:
        widths = " or ".join(str(width) for width in projections)
        raise PayloadError(f"IAMMETER {where}: a row of {len(row)} values ({widths} expected)")
    try:
        floats = list(map(float, row))  # the common case: numbers only
    except (TypeError, ValueError, OverflowError):
        numbers = [_number(v, where) for v in row]  # nulls, or the error
        if numbers.count(None) == len(numbers):
            return None
        numbers.append(None)
        return projection(numbers)
    if not all(map(math.isfinite, floats)):
        raise PayloadError(f"IAMMETER {where}: a value is not finite")
    return projection([*floats, None])


def _phase_total(phases: Sequence[Values]) -> Values:
    total: list[float | None] = []
    for rule, column in zip(_RULES, zip(*phases)):  # noqa: B905 - both have one per field
        if rule is not None and None not in column:
            total.append(rule(column))
        elif rule is None or column.count(None) == len(column):
            total.append(None)
        else:
            total.append(rule([v for v in column if v is not None]))
    return tuple(total)


def _readings(meter_id: str, ts: datetime, phase_rows: Sequence[Values | None],
              net_row: Values | None) -> list[Reading]:
    """Return phase 0 (the net row, the only row, or the phases' total) and phases 1..n."""
    new = _NEW_READING
    if len(phase_rows) == 1:
        only = phase_rows[0]
        return [] if only is None else [new(Reading, (meter_id, ts, PHASE_TOTAL, *only))]
    phases = [new(Reading, (meter_id, ts, number, *values))
              for number, values in enumerate(phase_rows, 1) if values is not None]
    if net_row is None:
        if not phases:
            return []
        net_row = _phase_total([values for values in phase_rows if values is not None])
    return [new(Reading, (meter_id, ts, PHASE_TOTAL, *net_row)), *phases]


def _values_readings(values: object, meter_id: str, ts: datetime, where: str) -> list[Reading]:
    """Map ``values``: one flat row (single phase) or nested rows, with a 4th NEM row."""
    if type(values) is not list or not values:
        raise PayloadError(f"IAMMETER {where}: values must be a non-empty list")
    return _row_readings(values, meter_id, ts, where)


def _row_readings(values: list[Any], meter_id: str, ts: datetime, where: str) -> list[Reading]:
    """Map non-empty ``values`` row by row, raising PayloadError for what cannot be mapped."""
    if type(values[0]) is not list:
        return _readings(meter_id, ts, [_row(values, where)], None)
    if len(values) > NEM_ROWS:
        raise PayloadError(f"IAMMETER {where}: {len(values)} rows (at most 4 expected)")
    rows = [_row(row, where) for row in values]
    if len(rows) == NEM_ROWS:
        return _readings(meter_id, ts, rows[:3], rows[3])
    return _readings(meter_id, ts, rows, None)


_PHASES = (PHASE_TOTAL, 1, 2, 3)


def _block_plan(count: int, width: int) -> RowsPlan:
    """Return how ``count`` rows of one width become phase 0 and the phases (one row: phase 0)."""
    layout = ROW_LAYOUTS[width]
    rules = [(name, BLOCK_TOTALS[name]) for name, rule in PHASE_TOTAL_RULES.items()
             if count > 1 and rule is not None and name in layout]
    numbers = count * width
    made = {name: numbers + k for k, (name, _) in enumerate(rules)}
    unknown = numbers + len(rules)
    rows = [{name: offset + layout.index(name) for name in layout} for offset in range(0, numbers, width)]
    if count > 1:
        rows.insert(0, made)
    return RowsPlan(
        width=numbers,
        factors=None,
        summed=(),
        totals=tuple((total, tuple(range(layout.index(name), numbers, width))) for name, total in rules),
        cells=tuple(tuple(row.get(name, unknown) for name in READING_FIELDS) for row in rows),
        phases=_PHASES[: len(rows)] if count > 1 else (PHASE_TOTAL,),
    )


BLOCK_TOTALS = {"voltage_v": Total.LIVE_MEAN, "frequency_hz": Total.FIRST,
                **{name: Total.SUM for name, rule in PHASE_TOTAL_RULES.items() if rule is add_up}}
"""Each phase rule as :class:`~meterhub.readingblocks.RowsPlan` makes it by columns."""
_BLOCK_PLANS = {(count, width): _block_plan(count, width)
                for count in range(1, NEM_ROWS) for width in ROW_LAYOUTS}
"""The plan of nested rows by their count and width."""
_FLAT_PLANS = {width: _block_plan(1, width) for width in ROW_LAYOUTS}
"""The plan of a flat row (a single-phase meter's) by its width: a plan of its own, as its numbers
are not nested (ingest reads the numbers of one plan into one array)."""


def _plain_block(values: list[Any], meter_id: str, ts_us: int) -> PlannedRows | None:
    """Return the block of up to three rows of one width holding finite numbers only.

    Anything else (a null, a value that is no number, a net row) returns None for the row-by-row
    path, which maps it the same way or raises the error it deserves. The rows are kept as they
    are: ingest reads them into arrays.
    """
    plan: RowsPlan | None
    try:
        if type(values[0]) is list:
            count, width = len(values), len(values[0])
            plan = _BLOCK_PLANS.get((count, width))
            if plan is None or list(map(len, values)).count(width) != count:
                return None
            # a text, null, list or object raises here; so does an int too large for a float
            total = sum(itertools.chain.from_iterable(values), 0.0)
        else:
            plan = _FLAT_PLANS.get(len(values))
            if plan is None:
                return None
            total = sum(values, 0.0)
    except (TypeError, OverflowError):
        return None
    if total - total != 0.0:  # NaN or infinity somewhere (or a sum that overflows): the row path says
        return None
    return PlannedRows(meter_id, ts_us, values, plan)


def _plain_readings(values: list[Any], meter_id: str, ts: datetime) -> list[Reading] | None:
    """Return the readings of :func:`_plain_block`, or None when the row path must map them."""
    block = _plain_block(values, meter_id, epoch_us(ts))
    return None if block is None else list(block)


def _object(value: object, where: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise PayloadError(f"IAMMETER {where} is not an object")
    return value


def _list(value: object, where: str) -> list[Any]:
    if type(value) is not list:
        raise PayloadError(f"IAMMETER {where} is not a list")
    return value


def map_meterdata(payload: object, meter_id: str) -> list[Reading]:
    """Map a meterdata or meterdata2 answer (one or three phases) to readings at its gmtTime."""
    return list(meterdata_block(payload, meter_id))


def meterdata_block(payload: object, meter_id: str) -> ReadingBlock | list[Reading]:
    """Map a meterdata or meterdata2 answer as ingest takes it: a block, or readings when unusual."""
    if type(payload) is dict and payload.get("successful") is not False and "data" in payload:
        data = payload["data"]  # a success envelope, read as unwrap() reads it, once per poll
    else:
        data = unwrap(payload)
    if type(data) is not dict:
        raise PayloadError("IAMMETER meterdata data is not an object")
    text = data.get("gmtTime")
    ts_us = vendor_time_us(text)
    values = data.get("values")
    if type(values) is not list or not values:
        raise PayloadError("IAMMETER meterdata values: values must be a non-empty list")
    return _plain_block(values, meter_id, ts_us) or _row_readings(
        values, meter_id, parse_vendor_time(text), "meterdata values")


def map_meterdatalist2(payload: object, meter_id: str) -> list[Reading]:
    """Map meterdatalist2 items (``rtcTime``, ``gmtTime``, ``values``) to readings."""
    return list(meterdatalist2_block(payload, meter_id))


def meterdatalist2_block(payload: object, meter_id: str) -> ReadingBlock | list[Reading]:
    """Map meterdatalist2 items as ingest takes them: arrays, or readings when unusual.

    A usual answer is mapped by columns (:mod:`meterhub.vendors.iammeter.batch`); any other goes
    item by item, which maps it the same way or raises the error it deserves.
    """
    from meterhub.vendors.iammeter.batch import window_block  # it builds on this module

    items = _list(unwrap(payload), "meterdatalist2 data")
    block = window_block(items, meter_id)
    if block is not None:
        return block
    return map_meterdatalist2_items(items, meter_id)


def map_meterdatalist2_items(items: list[Any], meter_id: str) -> list[Reading]:
    """Map meterdatalist2 items one by one (any answer :func:`map_meterdatalist2` receives)."""
    readings: list[Reading] = []
    for index, item in enumerate(items):
        where = f"meterdatalist2 item {index}"
        item = _object(item, where)
        ts = parse_vendor_time(item.get("gmtTime"))
        readings.extend(_values_readings(item.get("values"), meter_id, ts, where))
    return readings


def _is_local_of(local_text: object, gmt_text: object, zone: ZoneInfo) -> bool:
    local = parse_vendor_time(local_text, zone).replace(tzinfo=None)
    try:
        return parse_vendor_time(gmt_text).astimezone(zone).replace(tzinfo=None) == local
    except OverflowError:  # the first or last representable day
        return False


def _gmt_position(first: object, second: object, zone: ZoneInfo | None) -> int:
    """Return which of a meterdatalist row's two times is GMT (-2 or -1)."""
    # The seed's text says "utc time, local time" but its examples (and the simulator) put the
    # local time first; with the meter's zone the offset decides, else the examples win.
    if zone is not None and not _is_local_of(first, second, zone) and _is_local_of(
        second, first, zone
    ):
        return -2
    return -1


def map_meterdatalist(payload: object, meter_id: str, zone: ZoneInfo | None = None) -> list[Reading]:
    """Map meterdatalist rows (5 numbers per phase, then two times) to readings."""
    rows = _list(unwrap(payload), "meterdatalist data")
    readings: list[Reading] = []
    gmt_at: int | None = None
    for index, row in enumerate(rows):
        where = f"meterdatalist row {index}"
        row = _list(row, where)
        numbers = row[:-2]
        if len(row) < 7 or len(numbers) % 5 or len(numbers) > 5 * NEM_ROWS:
            raise PayloadError(f"IAMMETER {where}: {len(row)} values is not 5 per phase + 2 times")
        if gmt_at is None:
            gmt_at = _gmt_position(row[-2], row[-1], zone)
        ts = parse_vendor_time(row[gmt_at])
        phases = [numbers[i : i + 5] for i in range(0, len(numbers), 5)]
        readings.extend(_values_readings(phases if len(phases) > 1 else numbers, meter_id, ts, where))
    return readings


@dataclass(frozen=True, slots=True)
class MetersdataMeter:
    """One meter of a metersdata answer: its serial, phases and time of its last upload."""

    sn: str
    phases: int
    ts: datetime
    values: Any


def metersdata_meters(payload: object) -> list[MetersdataMeter]:
    """Return the meters a metersdata answer lists (flat values: 1 phase; nested: 3)."""
    meters = []
    for index, item in enumerate(_list(unwrap(payload), "metersdata data")):
        item = _object(item, f"metersdata item {index}")
        sn, values = item.get("sn"), item.get("values")
        if type(sn) is not str or not sn:
            raise PayloadError(f"IAMMETER metersdata item {index} has no sn")
        if type(values) is not list or not values:
            raise PayloadError(f"IAMMETER metersdata {sn}: values must be a non-empty list")
        phases = min(len(values), 3) if type(values[0]) is list else 1
        meters.append(MetersdataMeter(sn, phases, parse_vendor_time(item.get("gmtTime")), values))
    return meters


def map_metersdata(payload: object, meter_ids: Mapping[str, str]) -> list[Reading]:
    """Map the metersdata entries whose SN is a key of ``meter_ids`` to that meter's readings."""
    readings: list[Reading] = []
    for meter in metersdata_meters(payload):
        meter_id = meter_ids.get(meter.sn)
        if meter_id is not None:
            readings.extend(_values_readings(meter.values, meter_id, meter.ts, f"metersdata {meter.sn}"))
    return readings


def _local_instant(naive: datetime, zone: ZoneInfo, after: datetime | None) -> datetime:
    """Return the UTC instant of a local wall time; a repeated (DST) hour goes after ``after``."""
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if after is not None and first <= after:
        second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
        if second > after:
            return second
    return first


ENERGYHISTORY_ROLE_FIELDS: dict[str, tuple[str, str | None]] = {
    "grid": ("fromGrid", "toGrid"),
    "solar": ("yield", None),
    "special": ("specialLoad", None),
}
"""Which energyhistory fields a meter of each place role records as its (import, export) energy:
the grid meter's fromGrid and toGrid, the solar meter's yield (its forward register counts the
inverter's output), the special-load meter's specialLoad. selfUse (yield - toGrid) is not stored:
the hub's place analytics derives it from the solar and grid meters the same way."""


def map_energyhistory(payload: object, meter_id: str, zone: ZoneInfo, group_by: str,
                      role: str = "grid") -> list[IntervalEnergy]:
    """Map a place's energyhistory rows (local hours or days) to the intervals of its ``role`` meter."""
    if group_by not in ("hour", "day"):
        raise PayloadError(f"IAMMETER energyhistory groupby {group_by!r} is not hour or day")
    if role not in ENERGYHISTORY_ROLE_FIELDS:
        roles = ", ".join(ENERGYHISTORY_ROLE_FIELDS)
        raise PayloadError(f"IAMMETER place role {role!r} is not one of {roles}")
    import_field, export_field = ENERGYHISTORY_ROLE_FIELDS[role]
    source = f"iammeter:energyhistory:{group_by}"
    intervals: list[IntervalEnergy] = []
    previous: datetime | None = None
    for index, item in enumerate(_list(unwrap(payload), "energyhistory data")):
        where = f"energyhistory item {index}"
        item = _object(item, where)
        naive = parse_vendor_time(item.get("time"), zone).replace(tzinfo=None)
        from_grid_kwh = _energy_kwh(item.get(import_field), f"{where} {import_field}")
        to_grid_kwh = _energy_kwh(item.get(export_field), f"{where} {export_field}") if export_field else None
        try:
            start = _local_instant(naive, zone, previous)
            if group_by == "hour":
                end = start + timedelta(hours=1)
            else:
                end = _local_instant(naive + timedelta(days=1), zone, start)
            intervals.append(IntervalEnergy(meter_id, start, end, from_grid_kwh, to_grid_kwh, source))
        except (ValueError, OverflowError) as exc:
            raise PayloadError(f"IAMMETER {where}: {item.get('time')!r} is not a usable time") from exc
        previous = start
    return intervals


def map_monitorjson(payload: object, meter_id: str, ts: datetime) -> list[Reading]:
    """Map a local ``GET /monitorjson`` answer (``Data``, legacy ``data`` or ``Datas``) at ``ts``."""
    body = _object(payload, "monitorjson answer")
    if "Datas" in body:
        rows = _list(body["Datas"], "monitorjson Datas")
        if not rows or len(rows) > NEM_ROWS:
            raise PayloadError(f"IAMMETER monitorjson Datas has {len(rows)} rows (1 to 4 expected)")
        phases = [_row(row, f"monitorjson Datas row {n}") for n, row in enumerate(rows, 1)]
        phases = _with_reactive(phases, body.get("EA"))
        net = phases[3] if len(phases) == NEM_ROWS else None
        return _readings(meter_id, ts, phases[:3], net)
    values = body.get("Data", body.get("data"))
    if values is None:
        raise PayloadError("IAMMETER monitorjson answer has neither Data nor Datas")
    return _readings(meter_id, ts, [_row(values, "monitorjson Data")], None)


def _with_reactive(phases: list[Values | None], ea: object) -> list[Values | None]:
    """Return the phase rows with reactive power and energies from ``EA.Reactive`` filled in."""
    if ea is None:
        return phases
    reactive = _list(_object(ea, "monitorjson EA").get("Reactive"), "monitorjson EA.Reactive")
    merged = list(phases)
    for index, (values, row) in enumerate(zip(phases, reactive, strict=False)):
        extra = _row(row, f"monitorjson EA.Reactive row {index + 1}", _REACTIVE_PROJECTIONS)
        if values is not None and extra is not None:
            merged[index] = tuple(old if new is None else new for old, new in zip(values, extra, strict=True))
    return merged




def monitorjson_sn(payload: object) -> str | None:
    """Return the serial number a ``/monitorjson`` answer carries (legacy answers carry none)."""
    sn = _object(payload, "monitorjson answer").get("SN")
    return sn.strip().upper() if isinstance(sn, str) and sn.strip() else None


def monitorjson_phases(payload: object) -> int:
    """Return the phases of a ``/monitorjson`` answer: the rows of ``Datas`` (at most 3), else 1."""
    rows = _object(payload, "monitorjson answer").get("Datas")
    return min(len(rows), 3) if isinstance(rows, list) and rows else 1
