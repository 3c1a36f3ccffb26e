"""Polled data goes through the same validation as every other source."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from meterhub.ingest import Ingestor
from meterhub.model import Meter, Reading
from meterhub.poller.sink import Sink
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.base import Fetched
from tests.test_interval_limits import HOUR, NOW
from tests.test_interval_limits import record as interval_record


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "meterhub.db")
    store.add_meter(Meter("m", "iammeter", interval_s=60))
    yield store
    store.close()


@pytest.mark.anyio
async def test_the_sink_rejects_impossible_values_and_stores_the_rest(store: SQLiteStore) -> None:
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    readings = [
        Reading("m", t0, power_w=100.0, energy_import_kwh=5.0),
        Reading("m", t0 + timedelta(minutes=1), power_w=100.0, energy_import_kwh=1e300),
        Reading("m", t0 + timedelta(minutes=2), power_w=100.0, frequency_hz=1e300),
        Reading("m", datetime(1999, 12, 31, tzinfo=UTC), power_w=100.0),
        Reading("m", t0 + timedelta(minutes=3), power_w=100.0, energy_import_kwh=5.01),
    ]
    sink = Sink(store, Ingestor(store))
    await sink.write(Fetched(readings=readings))
    assert (sink.totals.readings, sink.totals.rejected) == (2, 3)
    assert store.count_readings("m") == 2


@pytest.mark.anyio
async def test_the_sink_stores_good_interval_records_and_rejects_the_rest(store: SQLiteStore) -> None:
    records = [
        interval_record(NOW - 3 * HOUR, 1.5),
        interval_record(NOW - 2 * HOUR, -7.0),
        interval_record(NOW - 2 * HOUR + timedelta(minutes=15), 1e300),
        interval_record(NOW - HOUR, 0.25, 0.5),
    ]
    sink = Sink(store, Ingestor(store, now=lambda: NOW))
    await sink.write(Fetched(intervals=records))
    assert (sink.totals.intervals, sink.totals.rejected) == (2, 2)
    stored = store.intervals("m", NOW - 4 * HOUR, NOW)
    assert [(r.start, r.import_kwh, r.export_kwh) for r in stored] == [
        (NOW - 3 * HOUR, 1.5, 0.0),
        (NOW - HOUR, 0.25, 0.5),
    ]
