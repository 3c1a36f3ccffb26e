"""The SQLite store's list of meter ids: what ingest checks readings against."""

from __future__ import annotations

from pathlib import Path

from meterhub.ingest import Ingestor
from meterhub.model import Meter, Reading
from meterhub.store.sqlite import SQLiteStore
from tests.store.test_rollup_property import T0


def test_meter_ids_follow_added_and_removed_meters(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hub.db")
    try:
        assert store.meter_ids() == []
        for meter_id in ("b", "a", "c"):
            store.add_meter(Meter(meter_id, "file"))
        assert sorted(store.meter_ids()) == ["a", "b", "c"] == [m.id for m in store.list_meters()]
        store.remove_meter("b")
        assert sorted(store.meter_ids()) == ["a", "c"]
    finally:
        store.close()


def test_ingest_takes_a_meter_added_after_its_first_batch(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hub.db")
    try:
        store.add_meter(Meter("a", "file"))
        ingestor = Ingestor(store)
        assert ingestor.ingest([Reading("a", T0, power_w=1.0)]).stored == 1
        store.add_meter(Meter("z", "file"))
        report = ingestor.ingest([Reading("z", T0, power_w=2.0)])
        assert report.stored == 1 and not report.rejected_count
    finally:
        store.close()
