"""The vectorised ingest fast path computes exactly what the row-by-row builder computes."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from meterhub.store.fastpath import SeriesBatch, rollup_batch
from meterhub.store.rollup import RegisterState, RollupBuilder, Row, SeriesState

NAN = math.nan


@st.composite
def batches(draw: st.DrawFn) -> tuple[dict[int, list[Row]], dict[int, SeriesState], dict[int, int]]:
    series: dict[int, list[Row]] = {}
    states: dict[int, SeriesState] = {}
    gaps: dict[int, int] = {}
    for key in range(draw(st.integers(1, 5))):
        t = draw(st.integers(1_700_000_000_000, 1_700_000_900_000))
        if draw(st.booleans()):
            states[key] = SeriesState(
                t,
                RegisterState(t, draw(st.floats(0, 100)), draw(st.none() | st.floats(-500, 500))),
                None
                if draw(st.booleans())
                else RegisterState(t - 1000, draw(st.floats(0, 10)), None),
            )
        rows = []
        register = draw(st.floats(0, 200))
        for _ in range(draw(st.integers(1, 30))):
            t += draw(st.sampled_from([1, 60_000, 61_234, 900_000, 5_000_000]))
            register = draw(st.sampled_from([register + 0.01, register + 3, 0.001, 5000.0]))
            rows.append(
                Row(
                    t,
                    draw(st.none() | st.floats(-5000, 5000)),
                    draw(st.none() | st.floats(200, 250)),
                    draw(st.none() | st.floats(0, 30)),
                    draw(st.none() | st.just(register)),
                    draw(st.none() | st.floats(0, 10)),
                )
            )
        series[key] = rows
        gaps[key] = draw(st.sampled_from([120_000, 2_000_000]))
    return series, states, gaps


def _column(rows: list[Row], field: str) -> list[float]:
    return [NAN if getattr(r, field) is None else getattr(r, field) for r in rows]


@settings(max_examples=200, deadline=None)
@given(data=batches())
def test_fastpath_equals_builder(
    data: tuple[dict[int, list[Row]], dict[int, SeriesState], dict[int, int]],
) -> None:
    series, states, gaps = data
    expected_aggs = {}
    expected_gaps = []
    expected_states = {}
    for key, rows in series.items():
        builder = RollupBuilder()
        expected_states[key] = builder.feed(
            states.get(key, SeriesState()), rows, gaps[key], key % 2 == 0
        )
        aggs, found = builder.take()
        expected_aggs.update({(w, key, b): agg for (w, b), agg in aggs.items()})
        expected_gaps += [(key, a, b) for a, b in found]
    flat = [(key, row) for key, rows in series.items() for row in rows]
    batch = SeriesBatch(
        keys=np.array([k for k, _ in flat], dtype=np.int64),
        ts_ms=np.array([r.ts_ms for _, r in flat], dtype=np.int64),
        power_w=np.array(_column([r for _, r in flat], "power_w")),
        voltage_v=np.array(_column([r for _, r in flat], "voltage_v")),
        current_a=np.array(_column([r for _, r in flat], "current_a")),
        import_kwh=np.array(_column([r for _, r in flat], "import_kwh")),
        export_kwh=np.array(_column([r for _, r in flat], "export_kwh")),
        gap_ms=np.array([gaps[k] for k, _ in flat], dtype=np.int64),
        track_gaps=np.array([k % 2 == 0 for k, _ in flat]),
    )
    rollups, found_gaps, new_states = rollup_batch(batch, states)
    assert sorted(found_gaps) == sorted(expected_gaps)
    assert new_states == expected_states
    got = {}
    for index in range(len(rollups.keys)):
        got[
            (int(rollups.width_ms[index]), int(rollups.keys[index]), int(rollups.bucket_ms[index]))
        ] = index
    assert set(got) == set(expected_aggs)
    for key, agg in expected_aggs.items():
        k = got[key]

        def same(ours: float, theirs: float | None) -> bool:
            if theirs is None:
                return bool(np.isnan(ours))
            return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-9)

        assert rollups.n[k] == agg.n and rollups.p_n[k] == agg.p_n and rollups.v_n[k] == agg.v_n
        assert rollups.i_n[k] == agg.i_n and rollups.covered_ms[k] == agg.covered_ms
        for name in (
            "p_sum",
            "p_min",
            "p_max",
            "v_sum",
            "v_min",
            "v_max",
            "i_sum",
            "first_ms",
            "first_imp",
            "first_exp",
            "last_ms",
            "last_imp",
            "last_exp",
            "e_imp",
            "e_exp",
        ):
            assert same(float(getattr(rollups, name)[k]), getattr(agg, name)), (name, key)
