"""Each quantity rounded to its meaningful precision, by the unit its name ends in.

Every machine format (JSON, CSV, XML, YAML, NDJSON; API answers, CLI output and exports) and every
table goes through :func:`round_value` or :func:`rounded`, so ``11.849999999999998`` never
appears and a table shows what JSON holds. The precisions keep every digit the vendors send
(IAMMETER: 0.1 V, 0.01 A, 1 W, 0.01 kWh, 0.01 Hz; AMS readers: 0.01 V, 0.01 A, 0.001 kWh;
smart-MAC and Intellimeter registers to the Wh) and the hundredths of a watt of averaged power:

=====================================  ===========  =======================================
names ending in                        rounded to   quantity
=====================================  ===========  =======================================
``_w``, ``_var``                       0.01         power, reactive power
``_kwh``, ``_kvarh``                   0.001        energy and registers (1 Wh)
``_v``                                 0.01         voltage
``_a``                                 0.001        current (1 mA)
``_hz``                                0.01         frequency
``power_factor``                       0.001        power factor
``_ratio``                             0.0001       shares such as self-sufficiency, 0..1
``_pct``                               0.01         percentages
``_s``, ``_min``                       0.001        durations
``_per_kwh``, ``price``, ``_cost``,    0.00001      prices and money (currency units)
``_credit``, ``fees``
``_c``                                 0.01         temperature (°C)
``_dbm``                               0.1          signal strength (dBm)
=====================================  ===========  =======================================

A register read in a raw reading (readings exports, latest readings) keeps its own precision as
the store keeps it, :data:`REGISTER_DECIMALS` (0.000001 kWh, a mWh), so an export imports back
unchanged; energy worked out over a period (a sum) keeps the Wh. Other numbers (counts, phases,
ids) are left as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

__all__ = ["REGISTER_DECIMALS", "decimals_of", "round_to", "round_value", "rounded"]

REGISTER_DECIMALS = 6
"""Decimals of a register in a raw reading (kWh or kvarh): the store keeps milli-watt-hours."""

_SUFFIXES: tuple[tuple[str, int], ...] = (
    ("power_factor", 3),
    ("_per_kwh", 5),
    ("_kwh", 3),
    ("_kvarh", 3),
    ("_var", 2),
    ("_w", 2),
    ("_v", 2),
    ("_a", 3),
    ("_hz", 2),
    ("_ratio", 4),
    ("_pct", 2),
    ("_s", 3),
    ("_min", 3),
    ("price", 5),
    ("_cost", 5),
    ("_credit", 5),
    ("fees", 5),
    ("_c", 2),
    ("_dbm", 1),
)
"""Name endings and the decimals they keep, the more specific first."""


@lru_cache(maxsize=1024)
def decimals_of(name: str) -> int | None:
    """Return how many decimals a value named ``name`` keeps, or None when it is not a quantity."""
    for suffix, decimals in _SUFFIXES:
        if name == suffix.lstrip("_") or name.endswith(suffix):
            return decimals
    return None


def round_to(value: float, decimals: int) -> float:
    """Return ``value`` rounded to ``decimals`` places, as ``numpy.round`` does for arrays.

    The nearest whole number of units (halves to even) divided back gives the double nearest the
    decimal, which prints in the fewest digits; -0.0 becomes 0.0. Not finite: returned unchanged.
    """
    if not math.isfinite(value):
        return value
    scale = 10.0**decimals
    return round(value * scale) / scale + 0.0


def round_value(name: str, value: Any) -> Any:
    """Return ``value`` rounded for its name; anything but a float is returned unchanged."""
    if type(value) is not float:
        return value
    decimals = decimals_of(name)
    return value if decimals is None else round_to(value, decimals)


def rounded(value: Any, name: str = "") -> Any:
    """Return plain JSON data with every float rounded by the name of the key it sits under.

    A list takes the name of its key, so ``thresholds_kwh: [5.0, ...]`` rounds as energy.
    """
    if type(value) is float:
        return round_value(name, value)
    if isinstance(value, Mapping):
        return {key: rounded(child, str(key)) for key, child in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(child, name) for child in value]
    return value
