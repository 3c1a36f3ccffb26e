"""A table written to a pipe or a file is never cut to 80 columns."""

from __future__ import annotations

from tests.cli.conftest import Run

LONG_NAME = "Heat pump in the north barn behind the grain dryer, fed from sub-panel B"


def test_a_piped_table_keeps_every_cell_whole(run: Run) -> None:
    run("meters", "add", "barn-heat-pump", "--vendor", "file", "--tz", "Europe/Oslo", "--name", LONG_NAME)
    out = run("meters", "list").stdout
    assert LONG_NAME in out
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) > 80
