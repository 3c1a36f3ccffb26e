"""results.json in the documented shape, and the table printed at the end of a run."""

from __future__ import annotations

import json
import platform
import sqlite3
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.harness import Result

__all__ = ["print_table", "results_document", "write_results"]


def results_document(results: list[Result], rounds: int) -> dict[str, object]:
    """Return the results.json document."""
    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "rounds": rounds,
        "scenarios": [result.as_json() for result in results],
    }


def write_results(path: Path, results: list[Result], rounds: int) -> None:
    """Write results.json atomically."""
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(results_document(results, rounds), indent=2) + "\n")
    partial.replace(path)


def _figure(value: float, unit: str) -> str:
    if unit == "rows/s":
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 100 else f"{value:,.1f}"


def print_table(console: Console, results: list[Result], title: str) -> None:
    """Print one row per scenario, then what each reference is and what was checked."""
    table = Table(title=title)
    left = {"scenario", "unit", "goal", "result"}
    for column in ("scenario", "unit", "ours", "reference", "ratio", "min-max", "goal", "result"):
        table.add_column(column, justify="left" if column in left else "right")
    for r in results:
        verdict = "[green]pass[/]" if r.passed else "[bold red]MISS[/]"
        table.add_row(
            r.name, r.unit, _figure(r.value, r.unit), _figure(r.reference, r.unit),
            f"{r.ratio:.3g}", f"{r.ratio_min:.3g}-{r.ratio_max:.3g}", r.goal, verdict,
        )
    console.print(table)
    for r in results:
        console.print(f"[bold]{r.name}[/]: reference is {r.reference_is}.", highlight=False)
        if r.check:
            console.print(f"  checked: {r.check}", highlight=False)
        if r.notes:
            console.print(f"  notes: {r.notes}", highlight=False)
