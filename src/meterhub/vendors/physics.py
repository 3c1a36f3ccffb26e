"""The deterministic household every vendor simulator shares: load, PV, grid and registers.

Load and PV are modelled per UTC minute; within a minute the load flickers over six 10 s steps by
a zero-sum pattern, so power is piecewise constant on ``STEP_S`` steps and every register is the
exact integral of power. Randomness comes from hashing (seed, stream, index), never from a
sequential generator, so any instant is computed directly. Per-day totals are memoised in
32-day blocks, which makes a register a year away a few tens of milliseconds to compute once and
well under a millisecond after.

In three phases each appliance sits on one phase, base load and PV are split evenly, every phase
has its own registers and the total is their sum. Registers read ``initial_*_kwh`` at
:data:`REGISTER_EPOCH` and carry the integral from there (they are lower before it); a reset or
replacement re-anchors them at its instant. An offline window only silences the device: energy
still flows through the meter and the registers keep counting.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from meterhub.vendors import _household as hh
from meterhub.vendors._household import FloatArray, uniform

__all__ = [
    "REGISTER_EPOCH",
    "STEP_S",
    "Household",
    "MeterState",
    "PhaseState",
    "SimClock",
    "SiteConfig",
]

STEP_S = 10
"""Power is constant within each step of this many seconds (aligned to the UTC minute)."""

REGISTER_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
"""The instant at which the registers read ``initial_import_kwh`` and ``initial_export_kwh``."""

_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = (REGISTER_EPOCH - _UNIX).days
_BLOCK_DAYS = 32
_DAY_CACHE = 64
_MIN_PER_DAY = 1440
_WH_PER_W_STEP = STEP_S / 3600.0
_NOMINAL_V = 230.0
_LINE_OHM = 0.35
# Channels of an energy vector: import, export, load, pv; each per phase, in Wh.
_IMP, _EXP, _LOAD, _PV = range(4)
_S_VOLT, _S_FAST, _S_FREQ = 301, 311, 321


@dataclass(frozen=True)
class SiteConfig:
    """One simulated site: its household, PV array, grid connection and meter history."""

    seed: int = 1
    phases: int = 1
    latitude: float = 59.91
    longitude: float = 10.75
    tz: str = "Europe/Oslo"
    base_load_w: float = 300.0
    pv_peak_w: float = 0.0
    replay_trace: Path | None = None
    offline: tuple[tuple[datetime, datetime], ...] = ()
    resets: tuple[datetime, ...] = ()
    replacements: tuple[tuple[datetime, float], ...] = ()
    initial_import_kwh: float = 1234.5
    initial_export_kwh: float = 0.0

    def __post_init__(self) -> None:
        if self.phases not in (1, 3):
            raise ValueError(f"phases must be 1 or 3, not {self.phases}")
        instants = [*self.resets, *(at for at, _ in self.replacements)]
        instants += [edge for window in self.offline for edge in window]
        for instant in instants:
            _require_aware(instant)
        for start, end in self.offline:
            if end <= start:
                raise ValueError(f"offline window ends ({end}) before it starts ({start})")


@dataclass(frozen=True)
class PhaseState:
    """What a meter measures on one phase (or in total) at one instant."""

    voltage_v: float
    current_a: float
    power_w: float
    reactive_power_var: float
    power_factor: float
    energy_import_kwh: float
    energy_export_kwh: float


@dataclass(frozen=True)
class MeterState:
    """Everything a simulated device can report at one instant."""

    ts: datetime
    frequency_hz: float
    temperature_c: float
    total: PhaseState
    phases: tuple[PhaseState, ...]
    load_w: float
    pv_w: float


@dataclass(frozen=True)
class _Day:
    """One UTC day per minute: power arrays (phases x 1440) and cumulative energies."""

    load_w: FloatArray
    reactive_var: FloatArray
    pv_w: FloatArray
    cumulative_wh: FloatArray  # (4 channels, phases, 1441)


class _Model:
    """The memoised computations behind every Household with the same SiteConfig."""

    def __init__(self, config: SiteConfig) -> None:
        self.config = config
        self.zone = ZoneInfo(config.tz)
        self.trace = hh.load_trace(config.replay_trace, config.tz) if config.replay_trace else None
        self._lock = threading.RLock()
        self._days: OrderedDict[int, _Day] = OrderedDict()
        self._blocks: dict[int, FloatArray] = {}  # block -> per-day totals (days, 4, phases)
        self._day_prefix: dict[int, FloatArray] = {_EPOCH_DAY: np.zeros((4, config.phases))}

    def minutes(self, day0: int, ndays: int, scratch: bool = False) -> hh.Minutes:
        """Return load, reactive and PV per minute for UTC days [day0, day0+ndays).

        With ``scratch`` the load lives in a reused buffer and reactive power is left out (zeros):
        the caller reduces the arrays at once.
        """
        offsets = np.array([self.offset_min(day0 + i) for i in range(ndays)], dtype=np.int64)
        doys = np.array([_doy(day0 + i) for i in range(ndays)], dtype=np.float64)
        cfg = self.config
        shape = (cfg.phases, ndays * _MIN_PER_DAY)
        if self.trace is not None:
            load, reactive = hh.trace_minutes(self.trace, cfg.phases, day0, ndays)
        else:
            out = hh.scratch("load", shape) if scratch else np.empty(shape)
            load = hh.household_load(cfg.seed, cfg.base_load_w, day0, offsets, out)
            if scratch:
                reactive = np.zeros(shape)
            else:
                reactive = hh.household_reactive(cfg.seed, cfg.phases, cfg.base_load_w, day0, offsets)
        pv = hh.pv_minutes(cfg.seed, cfg.pv_peak_w, cfg.latitude, cfg.longitude, day0, doys)
        return hh.Minutes(load, reactive, pv / cfg.phases)

    def day(self, day_index: int) -> _Day:
        """Return the memoised per-minute arrays of one UTC day."""
        with self._lock:  # simulators may ask from a thread pool
            return self._day_locked(day_index)

    def _day_locked(self, day_index: int) -> _Day:
        cached = self._days.get(day_index)
        if cached is not None:
            self._days.move_to_end(day_index)
            return cached
        mins = self.minutes(day_index, 1)
        imp, exp = hh.grid_minutes_wh(mins.load_w, mins.pv_w)
        pv_wh = np.broadcast_to(mins.pv_w / 60.0, imp.shape)
        energy = np.stack([imp, exp, mins.load_w / 60.0, pv_wh])
        cumulative = np.zeros((4, self.config.phases, _MIN_PER_DAY + 1))
        np.cumsum(energy, axis=2, out=cumulative[:, :, 1:])
        result = _Day(mins.load_w, mins.reactive_var, mins.pv_w, cumulative)
        self._days[day_index] = result
        if len(self._days) > _DAY_CACHE:
            self._days.popitem(last=False)
        return result

    def _block_totals(self, block: int) -> FloatArray:
        """Return the energy (days, 4, phases) in Wh of each day of a 32-day block."""
        totals = self._blocks.get(block)
        if totals is None:
            day0 = _EPOCH_DAY + block * _BLOCK_DAYS
            mins = self.minutes(day0, _BLOCK_DAYS, scratch=True)
            totals = hh.day_totals_wh(mins.load_w, mins.pv_w)
            self._blocks[block] = totals
        return totals

    def day_prefix(self, day_index: int) -> FloatArray:
        """Return the energy (4, phases) in Wh from REGISTER_EPOCH to the start of a UTC day.

        Built by adding (or, before the epoch, subtracting) one day at a time, so it never
        decreases from one day to the next, not even by a rounding error.
        """
        known = self._day_prefix.get(day_index)
        if known is not None:
            return known
        with self._lock:
            return self._day_prefix_locked(day_index)

    def _day_prefix_locked(self, day_index: int) -> FloatArray:
        step = 1 if day_index > _EPOCH_DAY else -1
        current = day_index - step
        while current not in self._day_prefix:
            current -= step
        while current != day_index:
            day_total = self._day_totals(current if step > 0 else current - 1)
            after = self._day_prefix[current] + step * day_total  # x + (-t) is exactly x - t
            current += step
            self._day_prefix[current] = after
        return self._day_prefix[day_index]

    def _day_totals(self, day_index: int) -> FloatArray:
        block, offset = divmod(day_index - _EPOCH_DAY, _BLOCK_DAYS)
        totals: FloatArray = self._block_totals(block)[offset]
        return totals

    def prefix(self, ts: datetime) -> FloatArray:
        """Return the energy (4, phases) in Wh from REGISTER_EPOCH to ``ts`` (monotone in ts)."""
        day_index, second, micro = _split(ts)
        minute, second_in_minute = divmod(second, 60)
        cumulative = self.day(day_index).cumulative_wh
        steps = self.steps(day_index, minute)
        step, into_step = divmod(second_in_minute + micro / 1e6, STEP_S)
        whole = int(step)
        fraction = np.full(6, 0.0)
        fraction[:whole] = 1.0
        if whole < 6:
            fraction[whole] = into_step / STEP_S
        partial: FloatArray = (steps * fraction).sum(axis=2) * _WH_PER_W_STEP
        # The caps keep rounding errors from making a register step back at a minute or a day.
        within = np.minimum(cumulative[:, :, minute] + partial, cumulative[:, :, minute + 1])
        capped: FloatArray = np.minimum(self.day_prefix(day_index) + within, self.day_prefix(day_index + 1))
        return capped

    def steps(self, day_index: int, minute: int) -> FloatArray:
        """Return the power (4 channels, phases, 6 steps) in W of one minute of one day."""
        day = self.day(day_index)
        pv_w = float(day.pv_w[minute])
        pattern = hh.flicker(self.config.seed, day_index * _MIN_PER_DAY + minute, self.config.phases)
        net = hh.step_net_w(day.load_w[:, minute], pv_w, pattern)
        pv_steps = np.full(net.shape, pv_w)
        return np.stack([np.maximum(net, 0.0), np.maximum(-net, 0.0), net + pv_w, pv_steps])

    def offset_min(self, day_index: int) -> int:
        noon = _UNIX + timedelta(days=day_index, hours=12)
        offset = noon.astimezone(self.zone).utcoffset() or timedelta()
        return int(offset.total_seconds() // 60)


@lru_cache(maxsize=256)
def _model_for(config: SiteConfig) -> _Model:
    return _Model(config)


class Household:
    """A simulated site whose meter readings are a pure function of (config, instant)."""

    def __init__(self, config: SiteConfig) -> None:
        self.config = config
        self._model = _model_for(config)
        anchors = [(at, 0.0) for at in config.resets] + list(config.replacements)
        self._anchors = sorted(anchors, key=lambda anchor: anchor[0])
        self._anchor_prefix: dict[datetime, FloatArray] = {}

    def state_at(self, ts: datetime) -> MeterState:
        """Return what the meter measures at ``ts`` (aware; any zone)."""
        ts = _utc(ts)
        model, seed, phases = self._model, self.config.seed, self.config.phases
        day_index, second, _ = _split(ts)
        minute, step = second // 60, (second % 60) // STEP_S
        power = model.steps(day_index, minute)[:, :, step]
        net_w = (power[_IMP] - power[_EXP]).tolist()
        flicker = hh.flicker(seed, day_index * _MIN_PER_DAY + minute, phases)[:, step]
        reactive = model.day(day_index).reactive_var[:, minute] * (1 + hh.FLICKER * flicker)
        imp_kwh, exp_kwh = self._registers(ts, model.prefix(ts))
        unix_s = day_index * 86400 + second
        fast = (uniform(seed, _S_FAST, unix_s * 4 + np.arange(4)) * 2 - 1).tolist()
        states = []
        for p in range(phases):
            slow = _smooth(seed, _S_VOLT + p, unix_s, 900.0)
            voltage = _NOMINAL_V + 3.0 * slow + 0.4 * fast[p] - _LINE_OHM * net_w[p] / _NOMINAL_V
            states.append(_phase(voltage, net_w[p], float(reactive[p]), imp_kwh[p], exp_kwh[p]))
        total = _phase(
            sum(state.voltage_v for state in states) / phases,
            sum(net_w),
            float(reactive.sum()),
            sum(imp_kwh),
            sum(exp_kwh),
            current_a=sum(state.current_a for state in states),
        )
        frequency = 50.0 + 0.04 * _smooth(seed, _S_FREQ, unix_s, 120.0) + 0.005 * fast[3]
        local_h = second / 3600.0 + model.offset_min(day_index) / 60.0
        temperature = 24.0 - 1.5 * math.cos(2 * math.pi * local_h / 24) + 0.08 * total.current_a
        return MeterState(
            ts=ts,
            frequency_hz=round(frequency, 3),
            temperature_c=round(temperature, 1),
            total=total,
            phases=tuple(states),
            load_w=round(float(power[_LOAD].sum()), 2),
            pv_w=round(float(power[_PV].sum()), 2),
        )

    def is_offline(self, ts: datetime) -> bool:
        """Return whether the device is silent at ``ts``."""
        ts = _utc(ts)
        return any(start <= ts < end for start, end in self.config.offline)

    def energy_between(self, start: datetime, end: datetime) -> tuple[float, float]:
        """Return (import_kwh, export_kwh) metered in [start, end), across resets."""
        delta = self._delta(start, end)
        return float(delta[_IMP].sum()) / 1000.0, float(delta[_EXP].sum()) / 1000.0

    def pv_energy_between(self, start: datetime, end: datetime) -> float:
        """Return the kWh the PV array produced in [start, end)."""
        return float(self._delta(start, end)[_PV].sum()) / 1000.0

    def load_energy_between(self, start: datetime, end: datetime) -> float:
        """Return the kWh the household consumed in [start, end)."""
        return float(self._delta(start, end)[_LOAD].sum()) / 1000.0

    def _delta(self, start: datetime, end: datetime) -> FloatArray:
        start, end = _utc(start), _utc(end)
        if end < start:
            raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
        return self._model.prefix(end) - self._model.prefix(start)

    def _registers(self, ts: datetime, prefix_wh: FloatArray) -> tuple[list[float], list[float]]:
        """Return the import and export registers (kWh) per phase at ``ts``."""
        phases = self.config.phases
        anchor_at = REGISTER_EPOCH
        import_kwh, export_kwh = self.config.initial_import_kwh, self.config.initial_export_kwh
        for at, value_kwh in self._anchors:
            if at > ts:
                break
            anchor_at, import_kwh, export_kwh = at, value_kwh, 0.0
        anchor_wh = self._anchor_prefix.get(anchor_at)
        if anchor_wh is None:
            anchor_wh = self._anchor_prefix[anchor_at] = self._model.prefix(anchor_at)
        delta_kwh = (prefix_wh - anchor_wh) / 1000.0
        imports = (import_kwh / phases + delta_kwh[_IMP]).tolist()
        exports = (export_kwh / phases + delta_kwh[_EXP]).tolist()
        return imports, exports


class SimClock:
    """A clock that runs at ``speed`` times real time from the instant it was last set."""

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        self._base = _utc(start) if start is not None else datetime.now(UTC)
        self._real_base_s = time.monotonic()
        self._speed = _checked_speed(speed)

    def now(self) -> datetime:
        """Return the simulated instant, aware UTC."""
        elapsed_s = (time.monotonic() - self._real_base_s) * self._speed
        return self._base + timedelta(seconds=elapsed_s)

    @property
    def speed(self) -> float:
        """Return the simulated seconds per real second."""
        return self._speed

    def set(self, now: datetime) -> None:
        """Jump to ``now`` (aware) and keep running from there."""
        self._base = _utc(now)
        self._real_base_s = time.monotonic()

    def set_speed(self, speed: float) -> None:
        """Run at ``speed`` times real time from the current simulated instant."""
        checked = _checked_speed(speed)
        self._base = self.now()
        self._real_base_s = time.monotonic()
        self._speed = checked


def _checked_speed(speed: float) -> float:
    if not 0 <= speed < math.inf:
        raise ValueError(f"speed must be a finite number >= 0, not {speed}")
    return float(speed)


def _phase(
    voltage_v: float,
    power_w: float,
    reactive_var: float,
    import_kwh: float,
    export_kwh: float,
    current_a: float | None = None,
) -> PhaseState:
    apparent_va = math.hypot(power_w, reactive_var)
    return PhaseState(
        voltage_v=round(voltage_v, 2),
        current_a=round(apparent_va / voltage_v if current_a is None else current_a, 3),
        power_w=round(power_w, 2),
        reactive_power_var=round(reactive_var, 2),
        power_factor=round(abs(power_w) / apparent_va, 3) if apparent_va > 0 else 1.0,
        energy_import_kwh=import_kwh,
        energy_export_kwh=export_kwh,
    )


def _smooth(seed: int, stream: int, unix_s: int, period_s: float) -> float:
    """Return a value in [-1, 1] that varies smoothly over ``period_s``."""
    knot, into = divmod(unix_s / period_s, 1.0)
    ends = uniform(seed, stream, np.array([int(knot), int(knot) + 1])) * 2 - 1
    return float(ends[0] + (ends[1] - ends[0]) * into)


def _require_aware(ts: datetime) -> None:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"naive datetime {ts.isoformat()}; simulated instants must be aware")


def _utc(ts: datetime) -> datetime:
    _require_aware(ts)
    return ts.astimezone(UTC)


def _split(ts: datetime) -> tuple[int, int, int]:
    """Return (UTC day index since 1970, second of day, microsecond) of an aware instant."""
    delta = _utc(ts) - _UNIX
    return delta.days, delta.seconds, delta.microseconds


def _doy(day_index: int) -> int:
    return (date(1970, 1, 1) + timedelta(days=day_index)).timetuple().tm_yday
