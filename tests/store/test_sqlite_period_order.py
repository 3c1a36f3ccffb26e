"""Period reads concatenate rollup rows straight from SQLite's key-order scan; the rows must come
in bucket order, as the ordered query gives them, whatever the meters, phases and gaps around."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import numpy as np

from meterhub.model import Meter, Reading
from meterhub.store.sqlite import SQLiteStore
from meterhub.store.sqlite_periods import _FIGURE_NEEDS, FIGURE_FIELDS, _sql
from meterhub.timeutil import to_ms
from tests.store.test_rollup_property import T0


def test_the_scan_order_is_the_bucket_order(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    store = SQLiteStore(path)
    try:
        for meter_id in ("b", "a"):
            store.add_meter(Meter(meter_id, "file", phases=3, interval_s=60))
        minutes = [k for k in range(0, 3 * 24 * 60, 7) if not 600 <= k < 1500]  # a gap of 15 h
        # Newest first, both meters interleaved: the insertion order is not the key order.
        store.write_readings([
            Reading(meter_id, T0 + timedelta(minutes=k), phase, power_w=100.0 + k + phase,
                    voltage_v=None if k % 5 else 230.0, energy_import_kwh=k / 100)
            for k in reversed(minutes) for meter_id in ("a", "b") for phase in (0, 1, 2)
        ])
        columns = tuple(dict.fromkeys(c for name in FIGURE_FIELDS for c in _FIGURE_NEEDS[name]))
        lo, hi = to_ms(T0) - 3_600_000, to_ms(T0 + timedelta(days=4))
        with closing(sqlite3.connect(path)) as conn:
            (pk,) = conn.execute("SELECT pk FROM meters WHERE id = 'a'").fetchone()
            for table in ("rollup_15m", "rollup_6h", "rollup_day"):
                for phase in (0, 2):
                    args = (pk, phase, lo, hi)
                    flat = conn.execute(_sql(table, columns, ordered=False), args).fetchone()
                    ordered = conn.execute(_sql(table, columns, ordered=True), args).fetchone()
                    assert flat == ordered
                    buckets = np.array(flat[1].split(","), dtype=np.int64)
                    assert flat[0] > 1 and (np.diff(buckets) > 0).all()
    finally:
        store.close()
