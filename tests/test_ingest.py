"""The ingest pipeline: every rejected row has its reason; the rest of the batch is stored."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from meterhub.ingest import Ingestor, validate_reading
from meterhub.model import Meter, Reading
from meterhub.store.sqlite import SQLiteStore

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LATEST = NOW + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"power_w": math.nan}, "value is NaN or infinite"),
        ({"energy_import_kwh": math.inf}, "value is NaN or infinite"),
        ({"voltage_v": -0.1}, "voltage -0.1 V outside 0..1000 V"),
        ({"voltage_v": 1000.5}, "voltage 1000.5 V outside 0..1000 V"),
        ({"power_w": -10_000_001.0}, "power -10000001.0 W beyond ±10 MW"),
        ({"power_factor": -1.01}, "power factor -1.01 outside -1..1"),
        ({"ts": NOW + timedelta(minutes=5, seconds=1)}, "is more than 5 minutes in the future"),
        ({"ts": datetime(2026, 6, 1, 12, 0)}, "timestamp has no time zone"),
        ({"phase": 4}, "phase 4 is not 0..3"),
        ({"power_w": None}, "reading carries no value"),
    ],
)
def test_each_bad_value_has_its_reason(changes: dict[str, object], reason: str) -> None:
    fields: dict[str, object] = {"meter": "m", "ts": NOW, "power_w": 100.0, **changes}
    assert reason in (validate_reading(Reading(**fields), LATEST) or "")


@pytest.mark.parametrize(
    "changes",
    [
        {"voltage_v": 0.0},
        {"voltage_v": 1000.0},
        {"power_w": -10_000_000.0},
        {"power_factor": -1.0},
        {"power_factor": 1.0},
        {"ts": NOW + timedelta(minutes=5)},
        {"phase": 3},
    ],
)
def test_edge_values_are_accepted(changes: dict[str, object]) -> None:
    fields: dict[str, object] = {"meter": "m", "ts": NOW, "power_w": 100.0, **changes}
    assert validate_reading(Reading(**fields), LATEST) is None


def test_rejected_rows_never_block_their_batch(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "i.db")
    try:
        store.add_meter(Meter("m", "file"))
        rows = [Reading("m", NOW - timedelta(minutes=10 - k), power_w=100.0 * k) for k in range(10)]
        rows[3] = Reading("m", rows[3].ts, power_w=math.nan)
        rows[7] = Reading("ghost", rows[7].ts, power_w=1.0)
        batches: list[int] = []
        report = Ingestor(store, batch_size=4, now=lambda: NOW).ingest(
            rows, on_batch=lambda r: batches.append(r.stored)
        )
        assert (report.received, report.stored, report.rejected_count) == (10, 8, 2)
        assert [r.reason for r in report.rejections] == [
            "value is NaN or infinite",
            "unknown meter 'ghost'",
        ]
        assert batches == [4, 8]
        assert store.count_readings("m") == 8
        again = Ingestor(store, now=lambda: NOW).ingest(rows)
        assert (again.stored, again.duplicates, again.rejected_count) == (0, 8, 2)
    finally:
        store.close()
