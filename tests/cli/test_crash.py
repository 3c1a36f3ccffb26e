"""An import killed with SIGKILL loses nothing it reported as stored, and a rerun completes it."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from meterhub.store.sqlite import SQLiteStore

ROWS = 200_000
BATCH = 5_000
CHECKPOINT = re.compile(rb"committed: read=(\d+) stored=(\d+)")


def write_big_csv(path: Path) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with path.open("w") as out:
        out.write("meter,ts,phase,voltage_v,power_w,energy_import_kwh\n")
        register = 100.0
        for k in range(ROWS):
            meter = f"m{k % 4}"
            ts = start + timedelta(seconds=60 * (k // 4))
            power = 500 + (k * 37) % 2000
            register += power / 60_000
            out.write(f"{meter},{ts.isoformat()},0,{230 + k % 7 / 10},{power},{register:.6f}\n")


def test_sigkill_mid_import_loses_nothing_reported(tmp_path: Path) -> None:
    csv_path = tmp_path / "big.csv"
    write_big_csv(csv_path)
    db = tmp_path / "crash.db"
    env = {**os.environ, "METERHUB_DATABASE_URL": f"sqlite:///{db}"}
    command = [
        sys.executable,
        "-m",
        "meterhub",
        "import",
        str(csv_path),
        "--batch-rows",
        str(BATCH),
    ]
    reported_read = reported_stored = 0
    checkpoints = 0
    with subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as process:
        assert process.stderr is not None
        for line in process.stderr:
            match = CHECKPOINT.search(line)
            if match:
                reported_read, reported_stored = int(match.group(1)), int(match.group(2))
                checkpoints += 1
                if checkpoints == 3:
                    process.send_signal(signal.SIGKILL)
                    break
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the import finished before it could be killed"
    assert reported_stored == 3 * BATCH

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = SQLiteStore(db)
    try:
        stored_now = store.count_readings()
        assert stored_now >= reported_stored
        # Every row among the first `reported_read` lines of the file is there.
        start = datetime(2025, 1, 1, tzinfo=UTC)
        last_ts = start + timedelta(seconds=60 * ((reported_read - 1) // 4))
        for meter in ("m0", "m1", "m2", "m3"):
            times = [
                r.ts for r in store.iter_readings([meter], start, last_ts + timedelta(seconds=1))
            ]
            assert times == sorted(set(times))
            assert len(times) == (reported_read - int(meter[1]) + 3) // 4
    finally:
        store.close()

    rerun = subprocess.run(command, env=env, capture_output=True, timeout=300, check=True)
    summary = rerun.stdout.decode()
    assert f"rows read: {ROWS}" in summary
    store = SQLiteStore(db)
    try:
        assert store.count_readings() == ROWS
        stored_again = int(re.search(r"stored: (\d+)", summary).group(1))
        duplicates = int(re.search(r"duplicates: (\d+)", summary).group(1))
        assert stored_again + duplicates == ROWS
        assert stored_again == ROWS - stored_now
    finally:
        store.close()
