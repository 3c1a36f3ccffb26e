"""A reader that stops early (``meterhub export … | head -1``) ends the command quietly."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from meterhub.model import Meter, Reading
from meterhub.store import open_store


def test_a_closed_pipe_ends_the_command_without_an_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pipe.db'}"
    store = open_store(url)
    store.add_meter(Meter("p", "file"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    store.write_readings([Reading("p", start + timedelta(minutes=i), power_w=1.0) for i in range(50_000)])
    store.close()
    command = [sys.executable, "-m", "meterhub", "--database-url", url, "export"]
    with subprocess.Popen(
        [*command, "--start", "2026-01-01", "--end", "2026-03-01", "--format", "csv"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline().startswith(b"meter,ts,phase")
        process.stdout.close()  # the reader goes away long before 50,000 rows are written
        errors = process.stderr.read().decode()
        code = process.wait(timeout=120)
    assert errors == ""
    assert code == 141
