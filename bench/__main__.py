"""Command line: ``python -m bench [--quick] [--only NAME,...] [--rounds N] [--output PATH]``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from bench.fixtures import Context
from bench.harness import AnswerMismatch, Result
from bench.report import print_table, write_results
from bench.scenarios import SCENARIOS, scenario_names

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"
DEFAULT_ROUNDS = 7


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller data; under a minute")
    parser.add_argument("--only", default="", help="comma-separated scenario names to run")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="interleaved rounds")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results.json path")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected scenarios, write results.json, print the table; 0 unless one crashed or was wrong."""
    parser = _parser()
    args = parser.parse_args(argv)
    known = scenario_names()
    selected = [name.strip() for name in args.only.split(",") if name.strip()] or known
    unknown = sorted(set(selected) - set(known))
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; known: {', '.join(known)}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    console = Console()
    if not console.is_terminal:
        console = Console(width=150)
    results: list[Result] = []
    crashed: list[str] = []
    ctx = Context(quick=args.quick, rounds=args.rounds)
    started = time.perf_counter()
    try:
        for scenario in SCENARIOS:
            wanted = [name for name in scenario.names if name in selected]
            if not wanted:
                continue
            began = time.perf_counter()
            ctx.wanted = frozenset(wanted)
            try:
                with console.status(f"running {', '.join(wanted)}"):
                    results.extend(r for r in scenario.run(ctx) if r.name in wanted)
            except AnswerMismatch as exc:
                console.print(f"[bold red]{', '.join(wanted)}: wrong answer:[/] {exc}", highlight=False)
                crashed.extend(wanted)
                continue
            except Exception:
                console.print_exception()
                crashed.extend(wanted)
                continue
            elapsed_s = time.perf_counter() - began
            console.print(f"{', '.join(wanted)}: {elapsed_s:.1f} s", highlight=False)
    finally:
        ctx.close()
    write_results(args.output, results, args.rounds)
    kind = "quick" if args.quick else "full"
    print_table(console, results, f"meterhub bench ({kind}, {args.rounds} rounds, "
                                  f"{time.perf_counter() - started:.0f} s)")
    console.print(f"wrote {args.output}", highlight=False)
    if crashed:
        console.print(f"[bold red]the harness failed (crash or wrong answer) in: {', '.join(crashed)}[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
