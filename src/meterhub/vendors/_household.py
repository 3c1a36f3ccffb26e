"""Per-minute load and PV of the simulated household, vectorised over whole UTC days.

Private to :mod:`meterhub.vendors.physics`. Every random choice is a hash of (seed, stream,
index), so any minute is computed without the ones before it.
"""

from __future__ import annotations

import csv
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

FLICKER = 0.03
"""Relative amplitude of the load's step-to-step flicker within a minute.

The flicker is zero-sum over a minute's six steps and never flips the sign of net power (its
amplitude is at most FLICKER x min(load, |net|)), so a minute's import is exactly
max(mean net, 0) x 60 s and no step-level arithmetic is needed for energy.
"""

_MIN_PER_DAY = 1440
_SCRATCH = threading.local()
_MASK = (1 << 64) - 1
_S_PATTERN, _S_FLICKER, _S_DAYCLOUD, _S_CLOUD = 11, 12, 13, 14
_HOUR_PROFILE = np.array(
    [0.7, 0.65, 0.6, 0.6, 0.6, 0.7, 0.9, 1.2, 1.1, 0.95, 0.9, 0.9,
     1.0, 0.95, 0.9, 0.95, 1.1, 1.35, 1.5, 1.45, 1.35, 1.2, 1.0, 0.8]
)  # fmt: skip
"""Base load by local hour, relative to ``base_load_w`` (mean about 1)."""


def uniform(seed: int, stream: int, index: IntArray) -> FloatArray:
    """Return a uniform in [0, 1) for each index, a pure function of (seed, stream, index)."""
    key = np.uint64(((seed * 0x9E3779B97F4A7C15) ^ (stream * 0xD1B54A32D192ED69)) & _MASK)
    x = index.astype(np.int64).view(np.uint64) * np.uint64(0xBF58476D1CE4E5B9) + key
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _zero_sum_patterns(count: int, length: int) -> FloatArray:
    raw = uniform(0, _S_PATTERN, np.arange(count * length)).reshape(count, length) * 2 - 1
    raw -= raw.mean(axis=1, keepdims=True)
    raw /= np.abs(raw).max(axis=1, keepdims=True)
    return raw


_BASE_FACTORS = 1.0 + 0.06 * _zero_sum_patterns(64, 60)
_MINUTE_ANGLE = 2 * np.pi * (np.arange(_MIN_PER_DAY) + 0.5) / _MIN_PER_DAY
_COS_MINUTE, _SIN_MINUTE = np.cos(_MINUTE_ANGLE), np.sin(_MINUTE_ANGLE)


@dataclass(frozen=True)
class Minutes:
    """Mean power per minute: load and reactive (phases, minutes); PV of each phase (minutes,)."""

    load_w: FloatArray
    reactive_var: FloatArray
    pv_w: FloatArray


@dataclass(frozen=True)
class Appliance:
    """A load that runs at most once per slot: a head (e.g. heating) then an optional tail."""

    name: str
    power_w: float
    power_factor: float
    slot_min: int
    run_min: tuple[int, int]
    chance_by_hour: tuple[float, ...]
    phase: int
    head_min: int = 0
    tail_w: float = 0.0
    tail_power_factor: float = 1.0


def _hours(default: float, **windows: float) -> tuple[float, ...]:
    """Return 24 chances; keys like ``h6_9`` set local hours 6..8 to their value."""
    chances = [default] * 24
    for key, chance in windows.items():
        first, last = (int(part) for part in key[1:].split("_"))
        for hour in range(first, last):
            chances[hour] = chance
    return tuple(chances)


APPLIANCES: tuple[Appliance, ...] = (
    Appliance("fridge", 85.0, 0.80, 60, (14, 24), _hours(1.0), 0),
    Appliance("freezer", 110.0, 0.78, 120, (30, 50), _hours(1.0), 1),
    Appliance("kettle", 2000.0, 1.0, 60, (2, 4), _hours(0.02, h6_9=0.45, h12_22=0.2), 1),
    Appliance("oven", 2200.0, 1.0, 240, (25, 60), _hours(0.02, h11_14=0.15, h15_20=0.5), 2),
    Appliance("water heater", 2000.0, 1.0, 120, (10, 40), _hours(0.3), 2),
    Appliance("lights and tv", 180.0, 0.92, 30, (10, 30), _hours(0.05, h6_9=0.5, h16_24=0.85), 1),
    Appliance(
        "washing machine", 2000.0, 1.0, 360, (60, 100), _hours(0.02, h6_18=0.3), 0,
        head_min=15, tail_w=250.0, tail_power_factor=0.6,
    ),
    Appliance(
        "dishwasher", 1800.0, 1.0, 480, (60, 120), _hours(0.05, h14_22=0.6), 2,
        head_min=20, tail_w=120.0, tail_power_factor=0.7,
    ),
)  # fmt: skip


def _tan_phi(power_factor: float) -> float:
    return float(np.sqrt(1.0 - power_factor**2) / power_factor)


def _column(values: list[float]) -> FloatArray:
    return np.array(values, dtype=np.float64)


_A_POWER_W = _column([a.power_w for a in APPLIANCES])
_A_TAIL_W = _column([a.tail_w if a.head_min else a.power_w for a in APPLIANCES])
_A_VAR = _A_POWER_W * _column([_tan_phi(a.power_factor) for a in APPLIANCES])
_A_TAIL_VAR = _A_TAIL_W * _column(
    [_tan_phi(a.tail_power_factor if a.head_min else a.power_factor) for a in APPLIANCES]
)
_A_HEAD_MIN = np.array([a.head_min for a in APPLIANCES], dtype=np.int64)
_A_SLOT_MIN = np.array([a.slot_min for a in APPLIANCES], dtype=np.int64)
_A_RUN_LOW = np.array([a.run_min[0] for a in APPLIANCES], dtype=np.int64)
_A_RUN_SPAN = np.array([a.run_min[1] - a.run_min[0] + 1 for a in APPLIANCES], dtype=np.int64)
_A_PHASE = np.array([a.phase for a in APPLIANCES], dtype=np.int64)
_A_CHANCE = np.array([a.chance_by_hour for a in APPLIANCES], dtype=np.float64)
_S_APPLIANCE = 1000


@lru_cache(maxsize=4)
def _slot_layout(ndays: int) -> tuple[IntArray, IntArray]:
    """Return (appliance number, first minute) of every appliance slot in ``ndays`` days."""
    numbers, starts = [], []
    for number, app in enumerate(APPLIANCES):
        first = np.arange(0, ndays * _MIN_PER_DAY, app.slot_min, dtype=np.int64)
        numbers.append(np.full(len(first), number, dtype=np.int64))
        starts.append(first)
    return np.concatenate(numbers), np.concatenate(starts)


def scratch(name: str, shape: tuple[int, ...]) -> FloatArray:
    """Return a reusable per-thread buffer: fresh large arrays cost page faults on every block."""
    buffers: dict[tuple[str, tuple[int, ...]], FloatArray] = _SCRATCH.__dict__.setdefault("buffers", {})
    buffer = buffers.get((name, shape))
    if buffer is None:
        buffer = buffers[(name, shape)] = np.empty(shape)
    return buffer


def household_load(
    seed: int, base_load_w: float, day0: int, offsets_min: IntArray, out: FloatArray
) -> FloatArray:
    """Fill ``out`` (phases, minutes) with the load per phase and minute of len(offsets) days."""
    phases = out.shape[0]
    index, delta_w, _ = _appliance_steps(seed, phases, day0, offsets_min)
    out.fill(0.0)
    np.add.at(out.reshape(-1), index, delta_w)
    np.cumsum(out, axis=1, out=out)
    for p, base in enumerate(_base_minutes(seed, phases, base_load_w, day0, offsets_min)):
        out[p].reshape(-1, 60)[:] += base
    return out


def household_reactive(
    seed: int, phases: int, base_load_w: float, day0: int, offsets_min: IntArray
) -> FloatArray:
    """Return the reactive power (phases, minutes) in var of len(offsets_min) days."""
    n = len(offsets_min) * _MIN_PER_DAY
    index, _, delta_var = _appliance_steps(seed, phases, day0, offsets_min)
    reactive: FloatArray = np.bincount(index, delta_var, minlength=phases * n).astype(np.float64, copy=False)
    reactive = reactive.reshape(phases, n)
    np.cumsum(reactive, axis=1, out=reactive)
    for p, base in enumerate(_base_minutes(seed, phases, base_load_w, day0, offsets_min)):
        reactive[p].reshape(-1, 60)[:] += base * _tan_phi(0.9)
    return reactive


def _base_minutes(
    seed: int, phases: int, base_load_w: float, day0: int, offsets_min: IntArray
) -> list[FloatArray]:
    """Return the base load of each phase as (hours, 60) minute values."""
    hours = np.arange(len(offsets_min) * 24)
    hourly = base_load_w / phases * _HOUR_PROFILE[(hours + (offsets_min // 60).repeat(24)) % 24]
    bases = []
    for p in range(phases):
        pattern = (uniform(seed, 100 + p, day0 * 24 + hours) * len(_BASE_FACTORS)).astype(np.int64)
        base = _BASE_FACTORS[pattern]
        base *= hourly[:, None]
        bases.append(base)
    return bases


def _appliance_steps(
    seed: int, phases: int, day0: int, offsets_min: IntArray
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Return the appliances' power steps: flat (phase, minute) index, delta W, delta var."""
    n = len(offsets_min) * _MIN_PER_DAY
    number, slot_start = _slot_layout(len(offsets_min))
    slot_min = _A_SLOT_MIN[number]
    key = ((day0 * _MIN_PER_DAY + slot_start) // slot_min) * 16 + number
    hour = ((slot_start % _MIN_PER_DAY + offsets_min[slot_start // _MIN_PER_DAY]) // 60) % 24
    active = uniform(seed, _S_APPLIANCE, key) < _A_CHANCE[number, hour]
    run = _A_RUN_LOW[number] + (uniform(seed, _S_APPLIANCE + 1, key) * _A_RUN_SPAN[number])
    run = run.astype(np.int64)
    lead = (uniform(seed, _S_APPLIANCE + 2, key) * (slot_min - run + 1)).astype(np.int64)
    app = number[active]
    start = (slot_start + lead)[active]
    end = start + run[active]
    row = (_A_PHASE[app] % phases) * n
    at = np.concatenate([start, start + _A_HEAD_MIN[app], end])
    index = np.concatenate([row, row, row]) + at
    delta_w = np.concatenate([_A_POWER_W[app], _A_TAIL_W[app] - _A_POWER_W[app], -_A_TAIL_W[app]])
    delta_var = np.concatenate([_A_VAR[app], _A_TAIL_VAR[app] - _A_VAR[app], -_A_TAIL_VAR[app]])
    inside = at < n  # a run ending exactly at the block's end has no step inside it
    return index[inside], delta_w[inside], delta_var[inside]


def pv_minutes(
    seed: int, peak_w: float, latitude: float, longitude: float, day0: int, doys: FloatArray
) -> FloatArray:
    """Return total PV power per minute for len(doys) UTC days (zeros without an array)."""
    ndays = len(doys)
    if peak_w <= 0:
        return np.zeros(ndays * _MIN_PER_DAY)
    lat = np.radians(latitude)
    declination = np.radians(23.44) * np.sin(2 * np.pi * (284 + doys) / 365.0)
    b = 2 * np.pi * (doys - 81) / 364.0
    eot_min = 9.87 * np.sin(2 * b) - 7.53 * np.cos(b) - 1.5 * np.sin(b)
    shift = np.radians(longitude + eot_min / 4.0 - 180.0)
    sun = np.outer(np.cos(shift), _COS_MINUTE)
    sun -= np.outer(np.sin(shift), _SIN_MINUTE)
    sun *= (np.cos(lat) * np.cos(declination))[:, None]
    sun += (np.sin(lat) * np.sin(declination))[:, None]
    np.clip(sun, 0.0, None, out=sun)  # sine of the solar elevation, 0 at night
    power = sun * 0.45
    power += 0.55
    power *= sun  # lower sun, longer path through the air
    days = day0 + np.arange(ndays)
    clearness = 0.25 + 0.75 * np.sqrt(uniform(seed, _S_DAYCLOUD, days))
    ten_min = (day0 * 144 + np.arange(ndays * 144)).reshape(ndays, 144)
    cloud = 1.0 - (1.0 - clearness[:, None]) * uniform(seed, _S_CLOUD, ten_min)
    cloud *= peak_w * 0.9
    power.reshape(ndays, 144, 10)[:] *= cloud[:, :, None]
    return power.reshape(-1)


def flicker(seed: int, minute: int, phases: int) -> FloatArray:
    """Return the zero-sum flicker pattern (phases, 6) of one minute, each value in [-1, 1]."""
    index = minute * 24 + np.arange(phases * 6, dtype=np.int64)
    raw = (uniform(seed, _S_FLICKER, index) * 2 - 1).reshape(phases, 6)
    raw -= raw.mean(axis=1, keepdims=True)
    raw /= np.maximum(1.0, np.abs(raw).max(axis=1, keepdims=True))
    return raw


def step_net_w(load_w: FloatArray, pv_w: float, pattern: FloatArray) -> FloatArray:
    """Return net power (phases, 6) of a minute's steps: the mean plus sign-keeping flicker."""
    net = load_w - pv_w
    amplitude = FLICKER * np.minimum(load_w, np.abs(net)) * np.sign(net)
    return net[:, None] + amplitude[:, None] * pattern


def grid_minutes_wh(load_w: FloatArray, pv_w: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return (import_wh, export_wh) per phase and minute (exact: flicker keeps the sign)."""
    net_wh = (load_w - pv_w) / 60.0
    import_wh = np.maximum(net_wh, 0.0)
    return import_wh, import_wh - net_wh


def day_totals_wh(load_w: FloatArray, pv_w: FloatArray) -> FloatArray:
    """Return energy (days, 4, phases) in Wh per UTC day: import, export, load, pv."""
    phases, n = load_w.shape
    ndays = n // _MIN_PER_DAY
    load_wh = load_w.reshape(phases, ndays, _MIN_PER_DAY).sum(axis=2) / 60.0
    pv_wh = np.broadcast_to(pv_w.reshape(ndays, _MIN_PER_DAY).sum(axis=1) / 60.0, load_wh.shape)
    if pv_w.any():
        positive = np.subtract(load_w, pv_w, out=scratch("positive", load_w.shape))
        np.maximum(positive, 0.0, out=positive)
        import_wh = positive.reshape(phases, ndays, _MIN_PER_DAY).sum(axis=2) / 60.0
    else:
        import_wh = load_wh
    totals = np.stack([import_wh, import_wh - (load_wh - pv_wh), load_wh, pv_wh])
    return np.ascontiguousarray(totals.transpose(2, 0, 1))


@dataclass(frozen=True)
class Trace:
    """A household load recording: per-phase load and reactive power per minute."""

    start_minute: int
    load_w: FloatArray  # (3, minutes): L1..L3 shares
    reactive_var: FloatArray  # (minutes,)


@lru_cache(maxsize=8)
def load_trace(path: Path, tz: str) -> Trace:
    """Read a UCI household power trace (``;`` or ``,`` separated; '?' is missing)."""
    with path.open(newline="", encoding="utf-8") as handle:
        header = handle.readline()
        delimiter = ";" if ";" in header else ","
        rows = [row for row in csv.reader(handle, delimiter=delimiter) if row]
    if not rows:
        raise ValueError(f"trace {path} has no rows")
    joined = delimiter == ","
    first = rows[0][0] if joined else f"{rows[0][0]} {rows[0][1]}"
    local = datetime.strptime(first, "%d/%m/%Y %H:%M:%S").replace(tzinfo=ZoneInfo(tz))
    start_minute = int(local.astimezone(UTC).timestamp()) // 60
    values = np.array([[_number(v) for v in (row[1:8] if joined else row[2:9])] for row in rows])
    for column in range(values.shape[1]):
        series = values[:, column]
        valid = ~np.isnan(series)
        last = np.maximum.accumulate(np.where(valid, np.arange(len(series)), -1))
        values[:, column] = np.where(last >= 0, series[np.maximum(last, 0)], 0.0)
    active_w = values[:, 0] * 1000.0
    sub_w = values[:, 4:7].T * 60.0  # Wh per minute -> W
    rest_w = np.maximum(active_w - sub_w.sum(axis=0), 0.0) / 3.0
    return Trace(start_minute, sub_w + rest_w, values[:, 1] * 1000.0)


def _number(text: str) -> float:
    return float(text) if text.strip() not in ("", "?") else float("nan")


def trace_minutes(trace: Trace, phases: int, day0: int, ndays: int) -> tuple[FloatArray, FloatArray]:
    """Return (load_w, reactive_var) per phase and minute, repeating the trace cyclically."""
    minutes = day0 * _MIN_PER_DAY + np.arange(ndays * _MIN_PER_DAY)
    index = (minutes - trace.start_minute) % trace.load_w.shape[1]
    per_phase = trace.load_w[:, index]
    total = per_phase.sum(axis=0)
    reactive = trace.reactive_var[index]
    if phases == 1:
        return total[None, :], reactive[None, :]
    share = np.divide(per_phase, total, out=np.full_like(per_phase, 1 / 3), where=total > 0)
    return per_phase, reactive * share
