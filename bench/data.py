"""Realistic 1-phase household readings, generated with numpy so any size is quick to make.

Power follows a daily shape (morning and evening peaks, appliance spikes, winter heating) minus
rooftop PV on some meters; voltage sags with load around 230 V; the import and export registers
are the integral of power, so energy figures computed from them are meaningful.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from meterhub.model import Reading
from meterhub.timeutil import from_ms

__all__ = ["Channels", "Household", "gap_mask", "household_channels"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000
_MID_JANUARY_DAY = 20_103
"""Epoch day of 2025-01-15, the coldest and darkest part of the year in the model."""


@dataclass(frozen=True, slots=True)
class Household:
    """Per-meter parameters; arrays broadcast against the time axis (last axis)."""

    base_w: FloatArray
    pv_peak_w: FloatArray
    import0_kwh: FloatArray
    export0_kwh: FloatArray


@dataclass(frozen=True, slots=True)
class Channels:
    """One array per measured quantity, the same shape as the timestamps, rounded like a meter."""

    ts_ms: IntArray
    voltage_v: FloatArray
    current_a: FloatArray
    power_w: FloatArray
    power_factor: FloatArray
    frequency_hz: FloatArray
    import_kwh: FloatArray
    export_kwh: FloatArray

    def take(self, keep: npt.NDArray[np.bool_]) -> Channels:
        """Return the rows where ``keep`` is true (1-D channels only)."""
        return Channels(*(getattr(self, name)[keep] for name in self.__slots__))

    def readings(self, meter_id: str) -> Iterator[Reading]:
        """Yield the rows of 1-D channels as phase-0 model readings of ``meter_id``."""
        columns = zip(
            self.ts_ms.tolist(), self.voltage_v.tolist(), self.current_a.tolist(),
            self.power_w.tolist(), self.power_factor.tolist(), self.frequency_hz.tolist(),
            self.import_kwh.tolist(), self.export_kwh.tolist(), strict=True,
        )
        for ts_ms, v, i, p, pf, f, imp, exp in columns:
            yield Reading(meter_id, from_ms(ts_ms), 0, v, i, p, None, pf, f, imp, exp)


def _offsets_ms(ts_ms: IntArray, zone: ZoneInfo) -> IntArray:
    hours, inverse = np.unique(ts_ms.ravel() // _HOUR_MS, return_inverse=True)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    instants = (epoch + timedelta(hours=int(h)) for h in hours)
    offsets = np.array([
        (instant.astimezone(zone).utcoffset() or timedelta()) // timedelta(milliseconds=1)
        for instant in instants
    ], dtype=np.int64)
    return offsets[inverse].reshape(ts_ms.shape)


def _daily_draw(local_ms: IntArray, rng: np.random.Generator, low: float, high: float
                ) -> FloatArray:
    days, inverse = np.unique(local_ms.ravel() // _DAY_MS, return_inverse=True)
    return rng.uniform(low, high, days.size)[inverse].reshape(local_ms.shape)


def _load_w(hour: FloatArray, season: FloatArray, house: Household,
            rng: np.random.Generator) -> FloatArray:
    heating = 1.0 + 0.3 * (season + 1.0)
    morning = 700.0 * np.exp(-(((hour - 7.3) / 0.9) ** 2))
    evening = 1500.0 * np.exp(-(((hour - 18.5) / 1.6) ** 2))
    peaks = morning + evening
    events = np.where(rng.random(hour.shape) < 0.015, rng.uniform(800.0, 2500.0, hour.shape), 0.0)
    spikes = events + np.roll(events, 1, axis=-1) + np.roll(events, 2, axis=-1)
    noise = rng.lognormal(0.0, 0.08, hour.shape)
    load: FloatArray = (house.base_w * heating + peaks + spikes) * noise
    return load


def _pv_w(hour: FloatArray, season: FloatArray, offset_h: FloatArray, local_ms: IntArray,
          house: Household, rng: np.random.Generator) -> FloatArray:
    day_length_h = 12.3 - 6.0 * season
    solar_noon_h = 11.3 + offset_h
    phase = (hour - (solar_noon_h - day_length_h / 2)) / day_length_h
    elevation = np.clip(np.sin(np.pi * phase), 0.0, None) ** 1.3
    elevation = np.where((phase > 0) & (phase < 1), elevation, 0.0)
    clouds = _daily_draw(local_ms, rng, 0.25, 1.0)
    pv: FloatArray = house.pv_peak_w * (0.55 - 0.45 * season) * elevation * clouds
    return pv


def _register(start_kwh: FloatArray, power_w: FloatArray, ts_ms: IntArray) -> FloatArray:
    step_kwh = power_w[..., :-1] * np.diff(ts_ms, axis=-1) / _HOUR_MS / 1000.0
    zero = np.zeros((*step_kwh.shape[:-1], 1))
    steps = np.concatenate([zero, np.cumsum(step_kwh, axis=-1)], axis=-1)
    register: FloatArray = np.round(start_kwh + steps, 3)
    return register


def household_channels(ts_ms: IntArray, tz: str, house: Household, seed: int) -> Channels:
    """Return rounded readings at ``ts_ms`` (any shape, time on the last axis) for households."""
    rng = np.random.default_rng(seed)
    offset_ms = _offsets_ms(ts_ms, ZoneInfo(tz))
    local_ms = ts_ms + offset_ms
    hour = (local_ms % _DAY_MS) / _HOUR_MS
    season = np.cos(2 * np.pi * (local_ms // _DAY_MS - _MID_JANUARY_DAY) / 365.25)
    load = _load_w(hour, season, house, rng)
    pv = _pv_w(hour, season, offset_ms / _HOUR_MS, local_ms, house, rng)
    power = np.round(load - pv, 1)
    daily_swing_v = 2.0 * np.sin(2 * np.pi * hour / 24)
    sag_v = 0.3 * power / 1e3
    voltage = np.round(230.0 + daily_swing_v + rng.normal(0.0, 0.7, hour.shape) - sag_v, 1)
    pf_noise = rng.normal(0.0, 0.015, hour.shape)
    pf_raw = 0.9 + 0.06 * np.tanh(np.abs(power) / 2e3) + pf_noise
    pf = np.round(np.minimum(np.maximum(pf_raw, 0.3), 1.0), 3).astype(np.float64)
    frequency = np.round(50.0 + rng.normal(0.0, 0.015, hour.shape), 2)
    current = np.round(np.abs(power) / (voltage * pf), 2)
    return Channels(
        ts_ms, voltage, current, power, pf, frequency,
        _register(house.import0_kwh, np.clip(power, 0.0, None), ts_ms),
        _register(house.export0_kwh, np.clip(-power, 0.0, None), ts_ms),
    )


def gap_mask(rows: int, gaps: int, seed: int, min_missing: int = 3, max_missing: int = 240
             ) -> npt.NDArray[np.bool_]:
    """Return a keep-mask with ``gaps`` silent stretches, one inside each of equal segments."""
    rng = np.random.default_rng(seed)
    keep = np.ones(rows, dtype=np.bool_)
    segment = rows // gaps
    for k in range(gaps):
        missing = int(rng.integers(min_missing, min(max_missing, segment // 3) + 1))
        start = k * segment + int(rng.integers(segment // 3, segment - missing - 1))
        keep[start:start + missing] = False
    return keep
