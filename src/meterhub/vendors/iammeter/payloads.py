"""Shape IAMMETER cloud answers from physics states, exactly as the vendor's API document shows.

Pure functions: no clock, no quotas, no HTTP. Every row layout is a tuple of column descriptions,
so the five documented layouts (meterdata, meterdata2, meterdatalist, metersdata with 5 or 7
columns, the NEM net row) differ in data, not in code paths.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from meterhub.vendors.physics import MeterState, PhaseState

__all__ = [
    "ADVANCED_COLUMNS",
    "BASIC_COLUMNS",
    "METERSDATA_FLAT",
    "METERSDATA_NEM",
    "METERSDATA_NESTED_5",
    "METERSDATA_NESTED_7",
    "UTC_ZONE",
    "Column",
    "EnergyBucket",
    "MetersdataShape",
    "OfflineGap",
    "PowerSummary",
    "energyhistory_item",
    "failure",
    "format_iso_date",
    "format_vendor_time",
    "meterdata_payload",
    "meterdatalist2_item",
    "meterdatalist_row",
    "metersdata_item",
    "offline_analysis_payload",
    "phase_row",
    "power_analysis_payload",
    "success",
]

UTC_ZONE = ZoneInfo("UTC")
"""The zone of every ``gmtTime``."""

JsonValue = Any
"""A value ``json.dumps`` accepts; kept loose because the vendor's rows mix numbers and text."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a vendor row: how to read it from a phase and how many decimals to keep."""

    name: str
    value_fn: Callable[[PhaseState, MeterState], float]
    digits: int

    def render(self, phase: PhaseState, state: MeterState) -> float:
        """Return this column's value for ``phase`` of ``state``, rounded like the vendor."""
        return round(self.value_fn(phase, state), self.digits)


VOLTAGE = Column("voltage_v", lambda p, s: p.voltage_v, 2)
CURRENT = Column("current_a", lambda p, s: p.current_a, 3)
POWER = Column("power_w", lambda p, s: p.power_w, 1)
POWER_FACTOR = Column("power_factor", lambda p, s: p.power_factor, 2)
IMPORT = Column("energy_import_kwh", lambda p, s: p.energy_import_kwh, 3)
EXPORT = Column("energy_export_kwh", lambda p, s: p.energy_export_kwh, 3)
FREQUENCY = Column("frequency_hz", lambda p, s: s.frequency_hz, 2)

BASIC_COLUMNS: tuple[Column, ...] = (VOLTAGE, CURRENT, POWER, IMPORT, EXPORT)
"""meterdata and meterdatalist: voltage, current, active power, imported kWh, exported kWh."""

ADVANCED_COLUMNS: tuple[Column, ...] = (VOLTAGE, CURRENT, POWER, POWER_FACTOR, IMPORT, EXPORT)
"""meterdata2 and meterdatalist2: the basic columns with the power factor after the power."""


@dataclass(frozen=True, slots=True)
class MetersdataShape:
    """How one meter model appears in ``metersdata``: flat or nested, padding, the NEM net row."""

    columns: tuple[Column, ...]
    flat: bool = False
    null_columns: int = 0
    phase_rows: int = 3
    net_row: bool = False


METERSDATA_FLAT = MetersdataShape(BASIC_COLUMNS, flat=True, phase_rows=1)
"""Single-phase meters: one flat row of five numbers."""
METERSDATA_NESTED_5 = MetersdataShape(BASIC_COLUMNS)
"""Three-phase meters on older firmware: three rows of five numbers."""
METERSDATA_NESTED_7 = MetersdataShape((*BASIC_COLUMNS, FREQUENCY, POWER_FACTOR))
"""Three-phase meters that add frequency and power factor: three rows of seven numbers."""
METERSDATA_NEM = MetersdataShape(BASIC_COLUMNS, null_columns=2, net_row=True)
"""NEM meters: three phase rows padded to seven with nulls, then the net row of all phases."""


def format_vendor_time(ts: datetime, zone: ZoneInfo) -> str:
    """Format an aware instant as the vendor does: ``YYYY/M/D H:MM:SS``, no zero padding."""
    local = ts.astimezone(zone)
    day = f"{local.year}/{local.month}/{local.day}"
    return f"{day} {local.hour}:{local.minute:02d}:{local.second:02d}"


def format_iso_date(day: date) -> str:
    """Format a calendar day as the analysis answers echo it: ``YYYY-MM-DD``."""
    return day.isoformat()


def success(data: JsonValue) -> dict[str, JsonValue]:
    """Wrap ``data`` in the vendor's success envelope."""
    return {"data": data, "successful": True, "message": None}


def failure(message: str) -> dict[str, JsonValue]:
    """Return the vendor's failure envelope carrying ``message``."""
    return {"data": None, "successful": False, "message": message}


def phase_row(phase: PhaseState, state: MeterState, columns: Sequence[Column]) -> list[float]:
    """Return one phase's values in ``columns`` order."""
    return [column.render(phase, state) for column in columns]


def _phase_rows(state: MeterState, columns: Sequence[Column]) -> list[list[float]]:
    return [phase_row(phase, state, columns) for phase in state.phases]


def meterdata_payload(
    state: MeterState, local_zone: ZoneInfo, *, advanced: bool
) -> dict[str, JsonValue]:
    """Return ``data`` of meterdata (basic) or meterdata2 (advanced): one row per phase."""
    columns = ADVANCED_COLUMNS if advanced else BASIC_COLUMNS
    return {
        "values": _phase_rows(state, columns),
        "localTime": format_vendor_time(state.ts, local_zone),
        "gmtTime": format_vendor_time(state.ts, UTC_ZONE),
    }


def meterdatalist_row(state: MeterState, local_zone: ZoneInfo) -> list[JsonValue]:
    """Return one meterdatalist row: five values per phase, then local and GMT time."""
    values: list[JsonValue] = []
    for row in _phase_rows(state, BASIC_COLUMNS):
        values.extend(row)
    values.append(format_vendor_time(state.ts, local_zone))
    values.append(format_vendor_time(state.ts, UTC_ZONE))
    return values


def meterdatalist2_item(state: MeterState, local_zone: ZoneInfo) -> dict[str, JsonValue]:
    """Return one meterdatalist2 item: local ``rtcTime``, ``gmtTime`` and one row per phase."""
    return {
        "rtcTime": format_vendor_time(state.ts, local_zone),
        "gmtTime": format_vendor_time(state.ts, UTC_ZONE),
        "values": _phase_rows(state, ADVANCED_COLUMNS),
    }


def _metersdata_values(state: MeterState, shape: MetersdataShape, wired: int) -> JsonValue:
    padding: list[float | None] = [None] * shape.null_columns
    if shape.flat:
        return phase_row(state.phases[0], state, shape.columns)
    rows: list[list[float | None]] = [
        [*phase_row(phase, state, shape.columns), *padding] for phase in state.phases[:wired]
    ]
    width = len(shape.columns) + shape.null_columns
    rows.extend([None] * width for _ in range(shape.phase_rows - len(rows)))
    if shape.net_row:
        rows.append([*phase_row(state.total, state, shape.columns), *padding])
    return rows


def metersdata_item(
    serial: str, state: MeterState, shape: MetersdataShape, wired_phases: int | None = None
) -> dict[str, JsonValue]:
    """Return one meter's entry of ``metersdata``; unwired phases are rows of nulls."""
    wired = len(state.phases) if wired_phases is None else wired_phases
    return {
        "sn": serial,
        "values": _metersdata_values(state, shape, wired),
        "gmtTime": format_vendor_time(state.ts, UTC_ZONE),
    }


@dataclass(frozen=True, slots=True)
class EnergyBucket:
    """A place's energy in one hour or day, in kWh, as energyhistory reports it."""

    start: datetime
    yield_kwh: float
    from_grid_kwh: float
    to_grid_kwh: float
    special_load_kwh: float

    @property
    def self_use_kwh(self) -> float:
        """Return the solar energy used on site: yield minus what went to the grid."""
        return max(0.0, self.yield_kwh - self.to_grid_kwh)


def energyhistory_item(bucket: EnergyBucket, local_zone: ZoneInfo) -> dict[str, JsonValue]:
    """Return one energyhistory row; ``time`` is the bucket start in the place's zone."""
    return {
        "time": format_vendor_time(bucket.start, local_zone),
        "yield": round(bucket.yield_kwh, 2),
        "fromGrid": round(bucket.from_grid_kwh, 2),
        "toGrid": round(bucket.to_grid_kwh, 2),
        "specialLoad": round(bucket.special_load_kwh, 2),
        "selfUse": round(bucket.self_use_kwh, 2),
    }


@dataclass(frozen=True, slots=True)
class PowerSummary:
    """Power statistics over a range of days, in W."""

    first_day: date
    last_day: date
    average_w: float
    average_daytime_w: float
    minimum_w: float
    maximum_w: float


def power_analysis_payload(summary: PowerSummary) -> dict[str, JsonValue]:
    """Return ``data`` of powerAnalysis."""
    return {
        "startTime": format_iso_date(summary.first_day),
        "endTime": format_iso_date(summary.last_day),
        "average": round(summary.average_w, 1),
        "averageDaytime": round(summary.average_daytime_w, 1),
        "minimum": round(summary.minimum_w, 1),
        "maximum": round(summary.maximum_w, 1),
    }


@dataclass(frozen=True, slots=True)
class OfflineGap:
    """A stretch without uploads, clipped to the analysed range."""

    start: datetime
    end: datetime

    @property
    def duration_min(self) -> int:
        """Return the whole minutes of the gap."""
        return int((self.end - self.start).total_seconds() // 60)


def offline_analysis_payload(
    first_day: date,
    last_day: date,
    total_min: int,
    gaps: Sequence[OfflineGap],
    local_zone: ZoneInfo,
) -> dict[str, JsonValue]:
    """Return ``data`` of offlineAnalysis: minutes offline, minutes analysed, the gaps."""
    return {
        "startTime": format_iso_date(first_day),
        "endTime": format_iso_date(last_day),
        "offlineCount": sum(gap.duration_min for gap in gaps),
        "totalCount": total_min,
        "list": [
            {
                "startTime": format_vendor_time(gap.start, local_zone),
                "endTime": format_vendor_time(gap.end, local_zone),
                "duration": gap.duration_min,
            }
            for gap in gaps
        ],
    }
