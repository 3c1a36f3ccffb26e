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
