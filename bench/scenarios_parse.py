"""Vendor payloads to model readings: each vendor's decode and mapping against orjson plus float().

The payloads are what the simulators send, shaped by their own payload functions from the shared
physics at distinct instants, and each is mapped the way the user's command maps it:

* smart-MAC ``getdata`` answers, one per poll (three-line devices on current and newer firmware,
  single-line devices; raw line breaks included). The devices keep no history, so a poll is the
  only way their data arrives.
* IAMMETER ``meterdata2`` answers, one per poll (three-phase and single-phase meters).
* IAMMETER ``meterdatalist2`` answers as a backfill fetches them: one answer per window of
  :data:`WINDOW_UPLOADS` one-minute uploads of one meter, mapped as the connector maps a window.

Ours decodes and maps each answer to what the connector hands to ingest: a reading block
(:mod:`meterhub.readingblocks`: the answer's numbers and the plan of its shape, or a history
window's arrays), and the smart-MAC extras. Ingest builds the store's columns of a whole batch of
blocks at once, which costs less per reading than taking readings apart did; that is ingest's
work, not timed here. The reference parses the same bytes with ``orjson.loads`` (the smart-MAC
answers' raw line breaks escaped first, which orjson needs) and converts the same numeric fields
with ``float()``; it builds no reading and reads no IAMMETER time, which ours must. Every reading
is checked against the reference's numbers (and the history readings' times against the
uploads' own) before timing, the readings built from the blocks as ingest builds its columns; a
difference fails the scenario.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from bench.fixtures import Context
from bench.harness import Goal, Result, interleaved, require, throughput_result
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
WINDOW_UPLOADS = 500
"""Uploads per history answer (a backfill asks for whole days: up to 1,440 at one a minute)."""
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


def history_bodies(uploads: int) -> list[bytes]:
    """Return meterdatalist2 answers holding ``uploads`` uploads, :data:`WINDOW_UPLOADS` per answer.

    The windows take turns among two three-phase meters and a single-phase one.
    """
    households = (Household(SiteConfig(seed=21, phases=3, pv_peak_w=6000.0)),
                  Household(SiteConfig(seed=22, phases=3)),
                  Household(SiteConfig(seed=23, phases=1)))
    bodies = []
    for window, first in enumerate(range(0, uploads, WINDOW_UPLOADS)):
        household = households[window % len(households)]
        items = [iammeter_payloads.meterdatalist2_item(household.state_at(FIRST_INSTANT + index * STEP), ZONE)
                 for index in range(first, min(uploads, first + WINDOW_UPLOADS))]
        bodies.append(orjson.dumps(iammeter_payloads.success(items)))
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
    decode, meterdata_block = iammeter_mapping.decode, iammeter_mapping.meterdata_block
    return sum(len(meterdata_block(decode(body), "bench-iam")) for body in bodies)


def _reference_iammeter(bodies: list[bytes]) -> int:
    converted = 0
    for body in bodies:
        values = orjson.loads(body)["data"]["values"]
        converted += len([float(value) for row in values for value in row])
    return converted


def _ours_history(bodies: list[bytes]) -> int:
    decode, meterdatalist2_block = iammeter_mapping.decode, iammeter_mapping.meterdatalist2_block
    return sum(len(meterdatalist2_block(decode(body), "bench-iam")) for body in bodies)


def _reference_history(bodies: list[bytes]) -> int:
    converted = 0
    for body in bodies:
        for item in orjson.loads(body)["data"]:
            values = item["values"]
            rows = values if type(values[0]) is list else [values]
            converted += len([float(value) for row in rows for value in row])
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


def _history_wrong(body: bytes) -> str | None:
    """Return how our mapping of one history answer differs from the reference's parse, or None."""
    readings = iammeter_mapping.map_meterdatalist2(iammeter_mapping.decode(body), "bench-iam")
    at = 0
    for item in orjson.loads(body)["data"]:
        values = item["values"]
        rows = values if type(values[0]) is list else [values]
        count = 1 if len(rows) == 1 else len(rows) + 1
        mine = readings[at:at + count]
        at += count
        stamp = datetime.strptime(item["gmtTime"], "%Y/%m/%d %H:%M:%S").replace(tzinfo=UTC)
        if len(mine) != count or any(reading.ts != stamp for reading in mine):
            return f"upload at {item['gmtTime']}: {len(mine)} readings at {[r.ts for r in mine]}"
        for reading, row in zip(mine if count == 1 else mine[1:], rows, strict=True):
            got = (reading.voltage_v, reading.current_a, reading.power_w, reading.power_factor,
                   reading.energy_import_kwh, reading.energy_export_kwh)
            if not _same(got, tuple(float(value) for value in row)):
                return f"upload at {item['gmtTime']}: {got} against {row}"
    return None if at == len(readings) else f"{len(readings)} readings, {at} expected"


def check_answers(smartmac: list[bytes], iammeter: list[bytes], history: list[bytes]) -> None:
    """Fail unless every phase reading carries the reference's numbers for its line or row."""
    for what, bodies, wrong in (("smart-MAC payload", smartmac, _smartmac_wrong),
                                ("IAMMETER payload", iammeter, _iammeter_wrong),
                                ("IAMMETER history answer", history, _history_wrong)):
        for index, body in enumerate(bodies):
            problem = wrong(body)
            require(problem is None, f"parse_payloads: {what} {index} maps wrongly: {problem}")


def _all(parts: tuple[Callable[[], int], ...], split_s: list[tuple[float, ...]]) -> Callable[[], float]:
    """Return a measure timing every part in turn, noting each one's time in ``split_s``."""

    def measure() -> float:
        marks = [time.perf_counter()]
        for part in parts:
            part()
            marks.append(time.perf_counter())
        split_s.append(tuple(after - before for before, after in itertools.pairwise(marks)))
        return marks[-1] - marks[0]

    return measure


_PARTS = ("smart-MAC polls", "IAMMETER polls", "IAMMETER backfill windows")


def parse_payloads(ctx: Context) -> list[Result]:
    """Time decode and mapping of both vendors' payloads against orjson plus float()."""
    count = PAYLOADS_QUICK if ctx.quick else PAYLOADS_FULL
    smartmac, iammeter, history = smartmac_bodies(count), iammeter_bodies(count), history_bodies(count)
    check_answers(smartmac, iammeter, history)
    ours_parts = (lambda: _ours_smartmac(smartmac), lambda: _ours_iammeter(iammeter),
                  lambda: _ours_history(history))
    reference_parts = (lambda: _reference_smartmac(smartmac), lambda: _reference_iammeter(iammeter),
                       lambda: _reference_history(history))
    readings = sum(part() for part in ours_parts)  # also warms every path up
    for part in reference_parts:
        part()
    ours_split: list[tuple[float, ...]] = []
    reference_split: list[tuple[float, ...]] = []
    ours_s, reference_s = interleaved(_all(ours_parts, ours_split), _all(reference_parts, reference_split),
                                      ctx.rounds)
    pairs = list(zip(ours_split, reference_split, strict=True))
    per_part = [statistics.median(ref[index] / ours[index] for ours, ref in pairs) for index in range(3)]
    ratios = ", ".join(f"{name} {ratio:.2f}" for name, ratio in zip(_PARTS, per_part, strict=True))
    check = (f"{2 * count} poll answers and {count} uploads in {len(history)} history answers -> "
             f"{readings} readings, every phase reading equal to the reference's numbers (relative "
             f"tolerance {_REL_TOL:g}) and history times to the uploads'; ratio {ratios}")
    return [throughput_result(
        "parse_payloads", 3 * count, ours_s, reference_s,
        "orjson.loads plus float() of the same fields (smart-MAC line breaks escaped)", GOAL, check,
    )]
