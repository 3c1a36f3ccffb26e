"""The history users read (API, CLI) comes from the rollups as columns; the change count moves with writes."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from meterhub.errors import InputError
from meterhub.history import downsample, history_columns
from meterhub.model import Meter, Reading
from meterhub.store.base import Bucket, Store
from meterhub.timeutil import from_ms
from tests.backends import Backend

T10 = datetime(2026, 2, 10, 10, 0, tzinfo=UTC)
FIGURES = (
    "count", "power_avg_w", "power_min_w", "power_max_w", "voltage_avg_v", "voltage_min_v", "voltage_max_v",
    "current_avg_a", "energy_import_kwh", "energy_export_kwh", "covered_s",
)  # fmt: skip


def _reading(minute: int, power_w: float, import_kwh: float) -> Reading:
    return Reading("m1", T10 + timedelta(minutes=minute), 0, 230.0, power_w / 230, power_w,
                   None, None, None, import_kwh, 0.0, None, None)  # fmt: skip


def _seed(store: Store) -> None:
    """30 minutes at 100 W from 10:00, silence, then 10 minutes at 300 W from 11:00."""
    store.add_meter(Meter("m1", "file", phases=1, tz="Europe/Oslo", interval_s=60))
    first = [_reading(m, 100.0, 50.0 + m * 0.001) for m in range(30)]
    second = [_reading(60 + m, 300.0, 50.1 + m * 0.005) for m in range(10)]
    store.write_readings(first + second)


def test_hourly_history_as_columns(backend: Backend) -> None:
    store = backend.open()
    _seed(store)
    columns = history_columns(store, "m1", T10, T10 + timedelta(hours=2), bucket="1h")
    assert columns.starts_ms.tolist() == [1770717600000, 1770721200000]  # 10:00 and 11:00 UTC
    assert columns.ends_ms.tolist() == [1770721200000, 1770724800000]
    figures = columns.figures
    assert figures["count"].tolist() == [30.0, 10.0]
    assert figures["power_avg_w"].tolist() == [100.0, 300.0]
    assert figures["power_min_w"].tolist() == [100.0, 300.0]
    assert figures["voltage_avg_v"].tolist() == [230.0, 230.0]
    # Hour 10: 29 minutes of 0.001 kWh, and the 0.071 kWh (50.029 -> 50.1) of the silence from
    # 10:29 to 11:00, which lies wholly inside it. Hour 11: 9 x 0.005.
    expected_kwh = [0.029 + 0.071, 0.045]
    assert figures["energy_import_kwh"].tolist() == pytest.approx(expected_kwh, abs=2e-9)
    assert figures["covered_s"].tolist() == [29 * 60.0, 9 * 60.0]  # the silence is not covered
    assert figures["energy_export_kwh"].tolist() == [0.0, 0.0]


def test_empty_buckets_are_left_out_and_only_asked_fields_are_read(backend: Backend) -> None:
    store = backend.open()
    _seed(store)
    columns = history_columns(
        store, "m1", T10, T10 + timedelta(hours=2), bucket="15m", fields=("power_max_w",)
    )
    # 10:00, 10:15 and 11:00 hold readings; 10:30 and 10:45 only their share of the energy spread
    # over the silence (15 of its 31 minutes each); from 11:15 on, nothing.
    starts = [from_ms(ms).strftime("%H:%M") for ms in columns.starts_ms.tolist()]
    assert starts == ["10:00", "10:15", "10:30", "10:45", "11:00"]
    assert columns.figures["count"].tolist() == [15.0, 15.0, 0.0, 0.0, 10.0]
    spread_kwh = columns.figures["energy_import_kwh"].tolist()[2:4]
    assert spread_kwh == pytest.approx([0.071 * 15 / 31] * 2, abs=1e-9)
    max_w = columns.figures["power_max_w"].tolist()
    assert max_w[:2] == [100.0, 100.0] and math.isnan(max_w[2]) and math.isnan(max_w[3]) and max_w[4] == 300.0
    assert set(columns.figures) == {"count", "power_max_w", "energy_import_kwh", "energy_export_kwh"}


def _old_way(store: Store, edges: list[datetime]) -> list[tuple[object, ...]]:
    buckets = store.aggregate("m1", 0, edges, with_registers=False)
    return [_figures(b) for b in buckets if b.count > 0 or b.energy_import_kwh or b.energy_export_kwh]


def _figures(bucket: Bucket) -> tuple[object, ...]:
    return (bucket.start, bucket.end, *(getattr(bucket, name) for name in FIGURES))


@pytest.mark.parametrize(
    ("points", "bucket", "width_s"), [(None, "15m", 900), (7, None, 1800), (None, "1h", 3600)]
)
def test_downsample_equals_the_rollups_merged_one_bucket_at_a_time(
    backend: Backend, points: int | None, bucket: str | None, width_s: int
) -> None:
    store = backend.open()
    _seed(store)
    start, end = T10 - timedelta(minutes=20), T10 + timedelta(hours=3)
    got = [_figures(b) for b in downsample(store, "m1", start, end, points=points, bucket=bucket)]
    first = {900: "09:30", 1800: "09:30", 3600: "09:00"}[width_s]  # start 09:40 rounded down to the width
    edge = datetime.fromisoformat(f"2026-02-10T{first}:00+00:00")
    edges = [edge]
    while edge < end:
        edge += timedelta(seconds=width_s)
        edges.append(edge)
    assert got == _old_way(store, edges)
    assert len(got) >= 2


def test_local_days_and_bad_fields(backend: Backend) -> None:
    store = backend.open()
    _seed(store)
    days = history_columns(store, "m1", T10 - timedelta(days=1), T10 + timedelta(days=1), bucket="1d")
    assert [from_ms(ms).isoformat() for ms in days.starts_ms.tolist()] == ["2026-02-09T23:00:00+00:00"]
    assert days.figures["count"].tolist() == [40.0]
    with pytest.raises(InputError, match="unknown field"):
        history_columns(store, "m1", T10, T10 + timedelta(hours=1), fields=("power_w",))


def test_the_change_count_moves_with_every_write_by_any_store(backend: Backend) -> None:
    store = backend.open()
    other = backend.open(migrate=False)
    store.add_meter(Meter("m1", "file", phases=1, tz="UTC", interval_s=60))
    before = store.change_count()
    assert store.change_count() == before
    store.write_readings([_reading(0, 1.0, 1.0)])
    after_own = store.change_count()
    assert after_own != before
    other.write_readings([_reading(1, 1.0, 1.0)])
    assert store.change_count() != after_own
