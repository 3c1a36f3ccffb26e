"""Timing and results: interleaved rounds of ours against a reference, median ratio and range."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "AnswerMismatch",
    "Goal",
    "Measure",
    "Result",
    "calls_for",
    "interleaved",
    "latency_result",
    "repeated",
    "require",
    "throughput_result",
]

class AnswerMismatch(AssertionError):
    """Our answer and the reference's differ beyond the stated tolerance: the scenario fails."""


def require(agree: bool, what: str) -> None:
    """Fail the scenario with ``what`` (the check and what was seen) unless the answers agree."""
    if not agree:
        raise AnswerMismatch(what)


Measure = Callable[[], float]
"""Runs one measurement and returns the seconds of its timed part (setup excluded)."""

_MAX_CALLS = 100_000


@dataclass(frozen=True, slots=True)
class Goal:
    """A bound on a scenario's figure, such as ratio ``<= 3``."""

    op: Literal["<=", ">="]
    limit: float
    suffix: str = ""

    def text(self) -> str:
        """Return the goal as it reads in the table and results.json."""
        return f"{self.op} {self.limit:g}{' ' + self.suffix if self.suffix else ''}"

    def met(self, figure: float) -> bool:
        """Tell whether ``figure`` meets the goal."""
        return figure <= self.limit if self.op == "<=" else figure >= self.limit


@dataclass(frozen=True, slots=True)
class Result:
    """One scenario's outcome: our figure, the reference's, and the median ratio with its range."""

    name: str
    unit: str
    value: float
    reference: float
    reference_is: str
    ratio: float
    goal: str
    passed: bool
    ratio_min: float
    ratio_max: float
    check: str = ""
    """What the harness verified about the answers (printed, not written to results.json)."""
    notes: str = ""
    """Further figures of the scenario, such as CPU time per call (printed, not written)."""

    def as_json(self) -> dict[str, object]:
        """Return the entry exactly as results.json holds it."""
        return {
            "name": self.name,
            "unit": self.unit,
            "value": _figure(self.value, self.unit),
            "reference": _figure(self.reference, self.unit),
            "reference_is": self.reference_is,
            "ratio": _sig(self.ratio),
            "goal": self.goal,
            "pass": self.passed,
            "min": _sig(self.ratio_min),
            "max": _sig(self.ratio_max),
        }


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def _figure(x: float, unit: str) -> float | int:
    return round(x) if unit == "rows/s" else _sig(x)


def _timed(measure: Measure) -> float:
    gc.collect()
    return measure()


def interleaved(ours: Measure, reference: Measure, rounds: int) -> tuple[list[float], list[float]]:
    """Run ours and the reference alternately, swapping who goes first each round."""
    ours_s: list[float] = []
    reference_s: list[float] = []
    for round_index in range(rounds):
        if round_index % 2 == 0:
            ours_s.append(_timed(ours))
            reference_s.append(_timed(reference))
        else:
            reference_s.append(_timed(reference))
            ours_s.append(_timed(ours))
    return ours_s, reference_s


def repeated(fn: Callable[[], object], calls: int) -> Measure:
    """Return a measure that times ``calls`` calls of ``fn`` and gives seconds per call."""

    def measure() -> float:
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - started) / calls

    return measure


def calls_for(fn: Callable[[], object], target_s: float) -> int:
    """Warm ``fn`` up and return how many calls take about ``target_s``."""
    fn()
    once_s = repeated(fn, 1)()
    return max(1, min(_MAX_CALLS, round(target_s / max(once_s, 1e-9))))


def throughput_result(
    name: str, rows: int, ours_s: list[float], reference_s: list[float], reference_is: str,
    goal: Goal, check: str = "",
) -> Result:
    """Return a rows/s result; the ratio is our rate over the reference's, round by round."""
    ratios = [ref / ours for ours, ref in zip(ours_s, reference_s, strict=True)]
    ratio = statistics.median(ratios)
    return Result(
        name, "rows/s", rows / statistics.median(ours_s), rows / statistics.median(reference_s),
        reference_is, ratio, goal.text(), goal.met(ratio), min(ratios), max(ratios), check,
    )


def latency_result(
    name: str, ours_s: list[float], reference_s: list[float], reference_is: str, goal: Goal,
    check: str = "",
) -> Result:
    """Return a milliseconds result; the ratio is our time over the reference's, round by round."""
    ratios = [ours / ref for ours, ref in zip(ours_s, reference_s, strict=True)]
    ratio = statistics.median(ratios)
    return Result(
        name, "ms", statistics.median(ours_s) * 1e3, statistics.median(reference_s) * 1e3,
        reference_is, ratio, goal.text(), goal.met(ratio), min(ratios), max(ratios), check,
    )
