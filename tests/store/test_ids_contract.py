"""No store creates a meter, place or price series whose id breaks the one id rule (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from meterhub.errors import InputError
from meterhub.importer import import_file
from meterhub.model import Meter, Place, PricePoint
from meterhub.store.base import Store

BAD_IDS = ["ams\x00", "../../etc/passwd", "a" * 100_000, '=HYPERLINK("http://x")', "a b", ""]


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_the_store_refuses_ids_outside_the_rule(store: Store, bad_id: str) -> None:
    with pytest.raises(InputError, match=r"^meter id "):
        store.add_meter(Meter(bad_id, "file"))
    with pytest.raises(InputError, match=r"^place id "):
        store.add_place(Place(bad_id, "UTC"))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(InputError, match=r"^price series "):
        store.write_prices([PricePoint(at, at.replace(hour=1), 1.0, "EUR", series=bad_id)])
    assert store.list_meters() == [] and store.list_places() == [] and store.price_series() == []


def test_an_import_rejects_bad_ids_row_by_row(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text(
        "meter,ts,power_w\n"
        '"ams\x00",2026-01-01T00:00:00Z,1\n'
        "../../etc/passwd,2026-01-01T00:00:00Z,2\n"
        f"{'a' * 100_000},2026-01-01T00:00:00Z,3\n"
        "Grid-1:a_b.c,2026-01-01T00:00:00Z,-250.0\n"
    )
    report = import_file(store, path, None)
    assert (report.received, report.stored, report.rejected_count) == (4, 1, 3)
    assert [r.where for r in report.rejections] == ["line 2", "line 3", "line 4"]
    assert all(r.reason.startswith("bad meter id: meter id ") for r in report.rejections)
    assert [m.id for m in store.list_meters()] == ["Grid-1:a_b.c"]
