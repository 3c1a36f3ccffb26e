"""The command line in a new process: start-up alone, and a year of readings as CSV.

Both scenarios start a new Python process per call, as a user's shell does: the time counts
interpreter start-up, imports, opening the database and writing the answer.
"""

from __future__ import annotations

import csv
import io
import math
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from bench.fixtures import YEAR_METER, Context
from bench.harness import Goal, Result, interleaved, latency_result, repeated
from meterhub import __version__
from meterhub.history import choose_width_s
from meterhub.timeutil import to_ms

__all__ = ["cli_readings_cold", "cli_start"]

POINTS = 1500
QUICK_ROUNDS = 3
POWER_TOLERANCE_W = 0.005 + 1e-6
"""Largest difference allowed between our power per bucket and the reference's: machine formats
give power to the hundredth of a watt (``meterhub.precision``), the reference every digit."""

READINGS_SQL = (
    "SELECT :lo + ((ts - :lo) / :width) * :width AS bucket, count(*), avg(p) / 1e3, "
    "min(p) / 1e3, max(p) / 1e3, avg(v) / 1e3, avg(i) / 1e3, "
    "(max(ei) - min(ei)) / 1e6, (max(ee) - min(ee)) / 1e6 "
    "FROM readings WHERE meter = (SELECT pk FROM meters WHERE id = :meter) AND phase = 0 "
    "AND ts >= :lo AND ts < :hi GROUP BY bucket ORDER BY bucket"
)

REFERENCE_SCRIPT = f"""
import csv, sqlite3, sys
from datetime import UTC, datetime
path, meter, lo, hi, width = sys.argv[1:]
conn = sqlite3.connect(f"file:{{path}}?mode=ro", uri=True)
rows = conn.execute({READINGS_SQL!r}, {{"lo": int(lo), "hi": int(hi), "width": int(width), "meter": meter}})
out = csv.writer(sys.stdout, lineterminator="\\n")
out.writerow(("start", "count", "power_avg_w", "power_min_w", "power_max_w", "voltage_avg_v",
              "current_avg_a", "energy_import_kwh", "energy_export_kwh"))
for row in rows:
    out.writerow((datetime.fromtimestamp(row[0] / 1000, UTC).isoformat(), *row[1:]))
"""
"""The reference: a plain script doing the same GROUP BY over the store's raw readings table."""


def _run(args: Sequence[str]) -> str:
    completed = subprocess.run(args, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[:4])} ... exited {completed.returncode}: {completed.stderr[-500:]}"
        )
    return completed.stdout


def _timed_run(args: Sequence[str]) -> Callable[[], float]:
    def measure() -> float:
        started = time.perf_counter()
        _run(args)
        return time.perf_counter() - started

    return measure


class _Process:
    """One command run in a new process per call, keeping the CPU time each process used."""

    def __init__(self, args: Sequence[str]) -> None:
        self.args = args
        self.cpu_s: list[float] = []

    def __call__(self) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        _run(self.args)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu_s.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)


def _cpu_notes(ours: _Process, reference: _Process) -> str:
    """CPU time per process (user + system), steadier than wall time on a busy machine."""
    ours_ms, reference_ms = statistics.median(ours.cpu_s) * 1e3, statistics.median(reference.cpu_s) * 1e3
    return (
        f"CPU per process ours {ours_ms:.0f} ms, reference {reference_ms:.0f} ms "
        f"(ratio {ours_ms / max(reference_ms, 1e-9):.2f})"
    )


def _calls(ctx: Context, once_s: float) -> int:
    """Calls per timed block: about the run's target length, at least one, at most ten."""
    return max(1, min(10, round(ctx.sizes.target_s / max(once_s, 1e-6))))


def cli_start(ctx: Context) -> list[Result]:
    """Time ``meterhub --version`` in a new process against ``python -c "import click"``."""
    ours_args = [sys.executable, "-m", "meterhub", "--version"]
    reference_args = [sys.executable, "-c", "import click"]
    answer = _run(ours_args)
    expected = f"meterhub, version {__version__}\n"
    if answer != expected:
        raise RuntimeError(f"meterhub --version printed {answer!r}, not {expected!r}")
    if _run(reference_args) != "":
        raise RuntimeError("python -c 'import click' printed something")

    ours, reference = _Process(ours_args), _Process(reference_args)
    calls = _calls(ctx, _timed_run(ours_args)())
    ours_s, reference_s = interleaved(repeated(ours, calls), repeated(reference, calls), ctx.rounds)
    result = latency_result(
        "cli_start",
        ours_s,
        reference_s,
        f"{sys.executable} -c 'import click' in a new process; {calls} process(es) per round",
        Goal("<=", 3),
        f"printed {answer.strip()!r} as expected",
    )
    return [replace(result, notes=_cpu_notes(ours, reference))]


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _compare(ours: list[list[str]], reference: list[list[str]]) -> str:
    """Compare the two CSV answers bucket by bucket; raise on any difference beyond tolerance."""
    if not ours or not reference or ours[0] != reference[0]:
        raise RuntimeError(f"the headers differ: ours {ours[:1]}, the reference's {reference[:1]}")
    # Ours may add a bucket with no reading (count 0) whose energy a gap pro-rates into it.
    with_power = [row for row in ours[1:] if int(row[1]) > 0]
    energy_only = len(ours) - 1 - len(with_power)
    if len(with_power) != len(reference) - 1:
        raise RuntimeError(
            f"{len(with_power)} buckets with readings in ours, {len(reference) - 1} in the reference's"
        )
    worst_w = 0.0
    for got, want in zip(with_power, reference[1:], strict=True):
        if got[0] != want[0] or got[1] != want[1]:
            raise RuntimeError(f"bucket {got[:2]} differs from the reference's {want[:2]}")
        for column in (2, 3, 4):
            difference = abs(float(got[column]) - float(want[column]))
            if not math.isfinite(difference) or difference > POWER_TOLERANCE_W:
                raise RuntimeError(
                    f"{ours[0][column]} of bucket {got[0]} is {got[column]}, the reference's {want[column]}"
                )
            worst_w = max(worst_w, difference)
    return (
        f"{len(with_power)} buckets, starts, counts and avg/min/max power equal to the reference's "
        f"(largest difference {worst_w:.2g} W, tolerance {POWER_TOLERANCE_W:g} W); "
        f"{energy_only} bucket(s) with pro-rated energy and no reading besides"
    )


def cli_readings_cold(ctx: Context) -> list[Result]:
    """Time ``meterhub readings`` of the year at 1,500 points as CSV, each call a new process."""
    year = ctx.year
    start, end = year.utc_start, year.utc_end
    width_s = choose_width_s(start, end, POINTS)
    ours_args = [
        sys.executable,
        "-m",
        "meterhub",
        "--database-url",
        f"sqlite:///{year.path}",
        "readings",
        YEAR_METER,
        "--start",
        start.isoformat(),
        "--end",
        end.isoformat(),
        "--points",
        str(POINTS),
        "--format",
        "csv",
    ]
    reference_args = [
        sys.executable,
        "-c",
        REFERENCE_SCRIPT,
        str(year.path),
        YEAR_METER,
        str(to_ms(start)),
        str(to_ms(end)),
        str(width_s * 1000),
    ]
    check = _compare(_csv_rows(_run(ours_args)), _csv_rows(_run(reference_args)))
    calls = _calls(ctx, _timed_run(ours_args)())
    # A quick run keeps to three rounds: each call is a new process of a few hundred ms.
    rounds = min(ctx.rounds, QUICK_ROUNDS) if ctx.quick else ctx.rounds
    ours, reference = _Process(ours_args), _Process(reference_args)
    ours_s, reference_s = interleaved(repeated(ours, calls), repeated(reference, calls), rounds)
    result = latency_result(
        "cli_readings_cold",
        ours_s,
        reference_s,
        f"a Python script in a new process: sqlite3 GROUP BY of the same {year.series.ts_ms.size:,} "
        f"raw rows into {width_s // 3600} h buckets, written with csv; "
        f"{calls} process(es) per round, {rounds} rounds",
        Goal("<=", 1),
        check,
    )
    return [replace(result, notes=_cpu_notes(ours, reference))]
