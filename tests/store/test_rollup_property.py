"""Rollups kept at ingest equal a brute-force recomputation from the raw rows, whatever arrives."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterhub.model import Meter, Reading
from meterhub.store.rollup import register_delta_kwh
from meterhub.store.sqlite import SQLiteStore

T0 = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
INTERVAL_S = 60
WIDTHS_S = (900, 3600)


@st.composite
def histories(draw: st.DrawFn) -> list[Reading]:
    """A series with random load, gaps, counter resets, meter swaps and missing fields."""
    steps = draw(st.integers(min_value=2, max_value=120))
    t = T0 + timedelta(seconds=draw(st.integers(0, 3599)))
    register = draw(st.floats(0, 50_000, allow_nan=False))
    readings: list[Reading] = []
    for _ in range(steps):
        power_w = draw(st.floats(-3000, 9000, allow_nan=False))
        event = draw(st.sampled_from(["normal"] * 12 + ["gap", "reset", "swap", "no_register"]))
        dt_s = draw(st.integers(1, 120)) if event != "gap" else draw(st.integers(121, 20_000))
        t += timedelta(seconds=dt_s)
        register += max(power_w, 0) / 1000 * dt_s / 3600
        if event == "reset":
            register = draw(st.floats(0, 0.01))
        elif event == "swap":
            register = draw(st.floats(0, 90_000, allow_nan=False))
        readings.append(
            Reading(
                "m",
                t,
                0,
                voltage_v=draw(st.floats(200, 250)),
                power_w=round(power_w, 3),
                energy_import_kwh=None if event == "no_register" else round(register, 6),
            )
        )
    return readings


def brute_force(rows: list[Reading], width_s: int) -> dict[datetime, dict[str, float]]:
    """Recompute bucket count, power stats and import energy straight from raw rows."""
    buckets: dict[datetime, dict[str, float]] = defaultdict(
        lambda: {"n": 0, "e": 0.0, "p_sum": 0.0, "p_min": 1e18, "p_max": -1e18}
    )
    width = timedelta(seconds=width_s)

    def floor(ts: datetime) -> datetime:
        return T0.replace(hour=0) + ((ts - T0.replace(hour=0)) // width) * width

    for r in rows:
        b = buckets[floor(r.ts)]
        b["n"] += 1
        assert r.power_w is not None
        b["p_sum"] += r.power_w
        b["p_min"] = min(b["p_min"], r.power_w)
        b["p_max"] = max(b["p_max"], r.power_w)
    with_register = [r for r in rows if r.energy_import_kwh is not None]
    for a, c in itertools.pairwise(with_register):
        assert a.energy_import_kwh is not None and c.energy_import_kwh is not None
        span = (c.ts - a.ts).total_seconds()
        energy = register_delta_kwh(
            a.energy_import_kwh, c.energy_import_kwh, int(span * 1000), a.power_w, c.power_w
        )
        start = floor(a.ts)
        while start < c.ts:
            overlap = (min(c.ts, start + width) - max(a.ts, start)).total_seconds()
            if overlap > 0:
                buckets[start]["e"] += energy * overlap / span
            start += width
    return buckets


def ingest_in_random_order(store: SQLiteStore, rows: list[Reading], seed: int) -> None:
    """Write rows in shuffled batches with duplicates mixed in."""
    shuffler = random.Random(seed)
    arrival = rows + shuffler.sample(rows, k=len(rows) // 3)
    shuffler.shuffle(arrival)
    position = 0
    while position < len(arrival):
        size = shuffler.randint(1, 40)
        store.write_readings(arrival[position : position + size])
        position += size


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=histories(), seed=st.integers(0, 2**32))
def test_rollups_equal_brute_force(
    tmp_path_factory: pytest.TempPathFactory, rows: list[Reading], seed: int
) -> None:
    path = Path(tmp_path_factory.mktemp("prop")) / "p.db"
    store = SQLiteStore(path)
    try:
        store.add_meter(Meter("m", "file", interval_s=INTERVAL_S))
        ingest_in_random_order(store, rows, seed)
        stored = list(store.iter_readings(["m"], T0, T0 + timedelta(days=30)))
        assert [r.ts for r in stored] == sorted({r.ts for r in rows})
        for width_s in WIDTHS_S:
            expected = brute_force(stored, width_s)
            actual = {
                b.start: b
                for b in store.rollups(
                    "m", 0, T0 - timedelta(hours=1), T0 + timedelta(days=30), width_s
                )
            }
            assert set(expected) <= set(actual)
            for start, bucket in actual.items():
                want = expected.get(start, {"n": 0, "e": 0.0})
                assert bucket.energy_import_kwh >= 0
                assert (
                    abs(bucket.energy_import_kwh - want["e"]) <= 1e-6 * max(1.0, want["e"]) + 1e-6
                )
                assert bucket.count == want["n"]
                if want["n"]:
                    assert bucket.power_min_w == want["p_min"]
                    assert bucket.power_max_w == want["p_max"]
                    assert bucket.power_avg_w is not None
                    assert abs(bucket.power_avg_w - want["p_sum"] / want["n"]) < 1e-6
        before = {
            w: store.rollups("m", 0, T0 - timedelta(hours=1), T0 + timedelta(days=30), w)
            for w in WIDTHS_S
        }
        gaps_before = store.gaps("m", T0 - timedelta(hours=1), T0 + timedelta(days=30))
        again = store.write_readings(rows)
        assert again.stored == 0
        assert again.duplicates == len(rows)
        for width_s in WIDTHS_S:
            assert (
                store.rollups("m", 0, T0 - timedelta(hours=1), T0 + timedelta(days=30), width_s)
                == before[width_s]
            )
        assert store.gaps("m", T0 - timedelta(hours=1), T0 + timedelta(days=30)) == gaps_before
        times = [r.ts for r in stored]
        expected_gaps = [
            (a, b)
            for a, b in itertools.pairwise(times)
            if (b - a).total_seconds() > 2 * INTERVAL_S
        ]
        assert [(g.start, g.end) for g in gaps_before] == expected_gaps
    finally:
        store.close()
