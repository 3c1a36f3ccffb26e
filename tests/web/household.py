"""A synthetic household for dashboard tests: power through the day, and registers that add up.

Deterministic (a seeded generator): a base load, a fridge cycling, cooking peaks morning and
evening, and solar export around noon, so charts look like a home's and energy is checkable.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta

from meterhub.model import Reading

__all__ = ["household_power_w", "household_readings"]


def household_power_w(ts: datetime, rng: random.Random) -> float:
    """Return the net power at an instant (export below zero)."""
    hour = ts.hour + ts.minute / 60
    base = 180 + 90 * (math.sin(ts.minute / 9.5) > 0.4)  # the fridge
    meals = 1800 * math.exp(-(((hour - 7.5) / 0.6) ** 2)) + 2600 * math.exp(-(((hour - 18.5) / 1.1) ** 2))
    solar = 2400 * max(0.0, math.sin(math.pi * (hour - 7) / 10)) if 7 <= hour <= 17 else 0.0
    return base + meals - solar * (0.6 + 0.4 * math.cos(ts.timetuple().tm_yday / 58)) + rng.gauss(0, 40)


def household_readings(
    meter: str, start: datetime, end: datetime, step: timedelta, seed: int = 7, phases: int = 1
) -> Iterator[Reading]:
    """Yield readings every ``step`` over [start, end), registers integrating the power."""
    rng = random.Random(seed)
    imported = exported = 1000.0
    ts = start
    hours = step.total_seconds() / 3600
    while ts < end:
        power = household_power_w(ts, rng)
        if power >= 0:
            imported += power * hours / 1000
        else:
            exported += -power * hours / 1000
        yield Reading(meter, ts, 0, 231.0 + rng.gauss(0, 1), abs(power) / 231, power, None, None, 50.0,
                      imported, exported)  # fmt: skip
        for phase in range(1, phases + 1 if phases > 1 else 1):
            share = power / phases
            yield Reading(meter, ts, phase, 230.0 + phase + rng.gauss(0, 1), abs(share) / 230, share)
        ts += step
