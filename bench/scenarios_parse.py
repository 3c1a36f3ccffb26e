"""Vendor payloads to model readings: each vendor's decode and mapping against orjson plus float().

The payloads are what the simulators send, shaped by their own payload functions from the shared
physics at distinct instants: smart-MAC ``getdata`` answers (three-line devices on current and
newer firmware, single-line devices; raw line breaks included) and IAMMETER ``meterdata2``
answers (three-phase and single-phase meters). Ours decodes and maps each one to readings (phase 0
and per phase) and extras. The reference parses the same bytes with ``orjson.loads`` (the
smart-MAC answers' raw line breaks escaped first, which orjson needs) and converts the same
numeric fields with ``float()``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from bench.fixtures import Context
from bench.harness import Goal, Result, interleaved, throughput_result
from meterhub.vendors.iammeter import mapping as iammeter_mapping
from meterhub.vendors.iammeter import payloads as iammeter_payloads
from meterhub.vendors.physics import Household, SiteConfig
from meterhub.vendors.smartmac import mapping as smartmac_mapping
from meterhub.vendors.smartmac import payloads as smartmac_payloads

__all__ = ["parse_payloads"]

GOAL = Goal(">=", 0.6)
PAYLOADS_FULL = 10_000
"""Payloads per vendor in a full run."""
PAYLOADS_QUICK = 2_000
FIRST_INSTANT = datetime(2025, 6, 2, 4, 0, tzinfo=UTC)
STEP = timedelta(seconds=61)
ZONE = ZoneInfo("Europe/Oslo")

# The fields the smart-MAC mapping reads, for the reference to convert too.
_SMARTMAC_KEYS = frozenset(
    [f"{key}{line}" for field in smartmac_mapping.PHASE_FIELDS for key, _ in field.terms
     for line in smartmac_mapping.LINES]
    + [key for field in smartmac_mapping.TOTAL_FIELDS for key, _ in field.terms]
    + [key for key, _ in smartmac_mapping.EXTRA_FIELDS]
)


def smartmac_bodies(count: int) -> list[bytes]:
    """Return ``count`` device answers: half three-line, a quarter newer firmware, a quarter one line."""
    shapes = ((1, 3, False), (2, 3, True), (1, 3, False), (3, 1, False))
    households = {(seed, phases): Household(SiteConfig(seed=seed, phases=phases, pv_peak_w=4000.0))
                  for seed, phases, _ in shapes}
    bodies = []
    for index in range(count):
        seed, phases, newer = shapes[index % len(shapes)]
        at = FIRST_INSTANT + index * STEP
        state = households[(seed, phases)].state_at(at)
        answer = smartmac_payloads.getdata_payload(str(1728053249 + seed), state, at, index % 7 == 0,
                                                   newer_firmware=newer, power_limit_w=3500)
        bodies.append(smartmac_payloads.render_json(answer))
    return bodies


def iammeter_bodies(count: int) -> list[bytes]:
    """Return ``count`` meterdata2 answers: two thirds three-phase meters, one third single-phase."""
    households = (Household(SiteConfig(seed=11, phases=3, pv_peak_w=6000.0)),
                  Household(SiteConfig(seed=12, phases=3)),
                  Household(SiteConfig(seed=13, phases=1)))
    bodies = []
    for index in range(count):
        state = households[index % len(households)].state_at(FIRST_INSTANT + index * STEP)
        data = iammeter_payloads.meterdata_payload(state, ZONE, advanced=True)
        bodies.append(orjson.dumps(iammeter_payloads.success(data)))
    return bodies


def _ours_smartmac(bodies: list[bytes]) -> int:
    decode, map_getdata = smartmac_mapping.decode, smartmac_mapping.map_getdata
    return sum(len(map_getdata(decode(body), "bench-sm").readings) for body in bodies)


def _reference_smartmac(bodies: list[bytes]) -> int:
    keys = _SMARTMAC_KEYS
    converted = 0
    for body in bodies:
        answer = orjson.loads(body.replace(b"\r", b"\\r").replace(b"\n", b"\\n"))
        values = [float(answer["time"])]
        values += [float(entry["value"]) for key, entry in answer["data"].items() if key in keys]
        converted += len(values)
    return converted


def _ours_iammeter(bodies: list[bytes]) -> int:
    decode, map_meterdata = iammeter_mapping.decode, iammeter_mapping.map_meterdata
    return sum(len(map_meterdata(decode(body), "bench-iam")) for body in bodies)


def _reference_iammeter(bodies: list[bytes]) -> int:
    converted = 0
    for body in bodies:
        values = orjson.loads(body)["data"]["values"]
        converted += len([float(value) for row in values for value in row])
    return converted


_REL_TOL = 1e-12
"""Largest relative difference between our value and the reference's (Wh to kWh may round differently)."""


def _same(ours: tuple[float | None, ...], reference: tuple[float | None, ...]) -> bool:
    return len(ours) == len(reference) and all(
        a == b if a is None or b is None else math.isclose(a, b, rel_tol=_REL_TOL)
        for a, b in zip(ours, reference, strict=True)
    )


def _smartmac_wrong(body: bytes) -> str | None:
    """Return how our mapping of one answer differs from the reference's parse, or None."""
    answer = orjson.loads(body.replace(b"\r", b"\\r").replace(b"\n", b"\\n"))
    data = answer["data"]

    def number(key: str, factor: float = 1.0) -> float | None:
        return float(data[key]["value"]) * factor if key in data else None

    snapshot = smartmac_mapping.map_getdata(smartmac_mapping.decode(body), "bench-sm")
    lines = [line for line in smartmac_mapping.LINES if f"V{line}" in data]
    phases = snapshot.readings if len(lines) == 1 else snapshot.readings[1:]
    if len(snapshot.readings) != (1 if len(lines) == 1 else len(lines) + 1):
        return f"{len(snapshot.readings)} readings from {len(lines)} lines"
    at = datetime.fromtimestamp(float(answer["time"]), UTC)
    for reading, line in zip(phases, lines, strict=True):
        imported, reverse = number(f"W{line}"), number(f"rW{line}")
        expected = (
            number(f"V{line}"), number(f"A{line}"),
            imported if reverse is None or imported is None else imported - reverse,
            number(f"PF{line}"), number(f"Fr{line}"),
            number(f"Wh{line}", 1e-3), number(f"rWh{line}", 1e-3),
        )
        got = (reading.voltage_v, reading.current_a, reading.power_w, reading.power_factor,
               reading.frequency_hz, reading.energy_import_kwh, reading.energy_export_kwh)
        if reading.ts != at or not _same(got, expected):
            return f"line {line}: {got} at {reading.ts} against {expected} at {at}"
    return None


def _iammeter_wrong(body: bytes) -> str | None:
    """Return how our mapping of one answer differs from the reference's parse, or None."""
    values = orjson.loads(body)["data"]["values"]
    rows = values if type(values[0]) is list else [values]
    readings = iammeter_mapping.map_meterdata(iammeter_mapping.decode(body), "bench-iam")
    phases = readings if len(rows) == 1 else readings[1:]
    if len(readings) != (1 if len(rows) == 1 else len(rows) + 1):
        return f"{len(readings)} readings from {len(rows)} rows"
    for reading, row in zip(phases, rows, strict=True):
        got = (reading.voltage_v, reading.current_a, reading.power_w, reading.power_factor,
               reading.energy_import_kwh, reading.energy_export_kwh)
        if not _same(got, tuple(float(value) for value in row)):
            return f"{got} against {row}"
    return None


def check_answers(smartmac: list[bytes], iammeter: list[bytes]) -> None:
    """Raise unless every phase reading carries the reference's numbers for its line or row."""
    for vendor, bodies, wrong in (("smart-MAC", smartmac, _smartmac_wrong),
                                  ("IAMMETER", iammeter, _iammeter_wrong)):
        for index, body in enumerate(bodies):
            problem = wrong(body)
            if problem is not None:
                raise RuntimeError(f"parse_payloads: {vendor} payload {index} maps wrongly: {problem}")


def _both(smartmac: Callable[[], int], iammeter: Callable[[], int],
          split_s: list[tuple[float, float]]) -> Callable[[], float]:
    """Return a measure timing both vendors' batches, noting each one's share in ``split_s``."""

    def measure() -> float:
        started = time.perf_counter()
        smartmac()
        halfway = time.perf_counter()
        iammeter()
        done = time.perf_counter()
        split_s.append((halfway - started, done - halfway))
        return done - started

    return measure


def parse_payloads(ctx: Context) -> list[Result]:
    """Time decode and mapping of both vendors' payloads against orjson plus float()."""
    count = PAYLOADS_QUICK if ctx.quick else PAYLOADS_FULL
    smartmac, iammeter = smartmac_bodies(count), iammeter_bodies(count)
    check_answers(smartmac, iammeter)
    readings = _ours_smartmac(smartmac) + _ours_iammeter(iammeter)  # also warms both paths up
    _reference_smartmac(smartmac)
    _reference_iammeter(iammeter)
    ours_split: list[tuple[float, float]] = []
    reference_split: list[tuple[float, float]] = []
    ours_s, reference_s = interleaved(
        _both(lambda: _ours_smartmac(smartmac), lambda: _ours_iammeter(iammeter), ours_split),
        _both(lambda: _reference_smartmac(smartmac), lambda: _reference_iammeter(iammeter), reference_split),
        ctx.rounds,
    )
    pairs = list(zip(ours_split, reference_split, strict=True))
    per_vendor = [statistics.median(ref[index] / ours[index] for ours, ref in pairs) for index in (0, 1)]
    check = (f"{2 * count} payloads -> {readings} readings, every phase reading equal to the reference's "
             f"numbers (relative tolerance {_REL_TOL:g}); ratio smart-MAC {per_vendor[0]:.2f}, "
             f"IAMMETER {per_vendor[1]:.2f}")
    return [throughput_result(
        "parse_payloads", 2 * count, ours_s, reference_s,
        "orjson.loads plus float() of the same fields (smart-MAC line breaks escaped)", GOAL, check,
    )]
