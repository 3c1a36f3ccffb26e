"""Run the real CLI in-process against a real SQLite file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from meterhub.cli import main

Run = Callable[..., Result]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def run(db_url: str) -> Run:
    """Invoke ``meterhub ARGS`` and return the result (stdout and stderr kept apart)."""

    def invoke(*args: str, ok: bool = True) -> Result:
        result = CliRunner().invoke(main, ["--database-url", db_url, *args])
        if ok:
            assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result

    return invoke
