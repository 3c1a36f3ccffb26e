"""PostgreSQL's compact layout: values read back exactly, and an existing database upgrades in place.

Raw readings live in ``samples`` as whole numbers keyed by series, rollups likewise (see
``meterhub.store.postgres_compact``). Each test compares PostgreSQL with a SQLite file holding the
same readings. The upgrade tests build a database as meterhub kept it before
``0009_compact_pg_readings`` (raw rows, rollups, latest values and gaps as doubles), migrate it,
and compare every answer with a store that was written fresh.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest

from meterhub.analytics.calendar import local_boundaries
from meterhub.model import PHASE_TOTAL, READING_FIELDS, Meter, Reading
from meterhub.store.base import Store, SumField
from meterhub.store.coarse import local_midnights_ms
from meterhub.store.postgres import PostgresStore
from meterhub.store.postgres_schema import MIGRATIONS
from meterhub.store.rollup import Agg, RollupBuilder, Row, SeriesState
from meterhub.timeutil import to_ms
from tests.backends import Backend

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 3, 28, 20, tzinfo=UTC)  # the night Oslo's clocks go forward, and a month edge
OSLO = "Europe/Oslo"
FIELDS: tuple[SumField, ...] = ("energy_import_kwh", "energy_export_kwh", "covered_s", "count")
BEFORE = [name for name, _ in MIGRATIONS][
    [name for name, _ in MIGRATIONS].index("0009_compact_pg_readings") - 1
]
"""The last migration before the compact layout."""


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """Yield a migrated SQLite store and a migrated PostgreSQL store (its schema dropped after)."""
    lite, pg = Backend("sqlite", tmp_path), Backend("postgres", tmp_path)
    try:
        yield lite.open(), pg.open()
    finally:
        lite.close()
        pg.close()


def household(minutes: int, start: datetime = T0) -> list[Reading]:
    """Return a meter's minute readings: phase totals with every value, phases 1-3 every 5 minutes."""
    rng = np.random.default_rng(11)
    readings: list[Reading] = []
    register = 4321.5
    for k in range(minutes):
        if 300 <= k < 340:  # a 40-minute gap
            continue
        ts = start + timedelta(minutes=k)
        power = round(float(rng.normal(900.0, 400.0)), 1)
        register = round(register + max(power, 0.0) / 60_000, 3)
        volts = round(230 + float(rng.normal(0, 1.5)), 1)
        readings.append(Reading(
            "h", ts, voltage_v=volts, current_a=round(abs(power) / 230, 2),
            power_w=power, reactive_power_var=-120.5, power_factor=0.987, frequency_hz=50.01,
            energy_import_kwh=register, energy_export_kwh=None if k % 7 else 17.25,
        ))  # fmt: skip
        if k % 5 == 0:
            readings.extend(
                Reading("h", ts, phase, voltage_v=229.5 + phase, current_a=1.234, power_w=round(power / 3, 3))
                for phase in (1, 2, 3)
            )
    return readings


def beyond_four_bytes() -> list[Reading]:
    """Return readings whose values need the wide columns: megawatts, big and finely split registers."""
    return [
        Reading(
            "w",
            T0 + timedelta(minutes=k),
            power_w=2_500_000.125 * (k + 1) * (-1) ** k,
            reactive_power_var=-5_000_000.5,
            voltage_v=400.0,
            energy_import_kwh=3_000_000.123456 + k,
            energy_export_kwh=round(1.000001 * k, 6),
            reactive_import_kvarh=9_999_999_999.5,
        )
        for k in range(12)
    ]


def answers(store: Store, meter_id: str) -> dict[str, object]:
    """Return everything a user can ask of a meter's readings, as plain values."""
    start, end = T0 - timedelta(days=1), T0 + timedelta(days=3)
    hours = np.array([to_ms(T0 + k * timedelta(hours=1)) for k in range(40)], dtype=np.int64)
    days = local_boundaries(T0 - timedelta(days=1), T0 + timedelta(days=2), OSLO, "day")
    six = [T0 - timedelta(hours=2) + k * timedelta(hours=6) for k in range(8)]
    return {
        "readings": list(store.iter_readings([meter_id], start, end, None)),
        "phase 2": list(store.iter_readings([meter_id], start, end, 2)),
        "count": store.count_readings(meter_id),
        "latest": store.latest([meter_id], None),
        "gaps": store.gaps(meter_id, start, end),
        **{
            f"rollups {w} phase {p}": store.rollups(meter_id, p, start, end, w)
            for w in (900, 3600)
            for p in (0, 1)
        },
        "days": store.aggregate(meter_id, 0, days),
        "six hours": store.aggregate(meter_id, 0, six),
        "sums": {k: v.tolist() for k, v in store.period_sums(meter_id, 0, hours, FIELDS).items()},
        "power": [column.tolist() for column in store.period_power(meter_id, 0, hours)],
    }


def assert_same(got: dict[str, object], want: dict[str, object]) -> None:
    """Raw readings, latest values and gaps equal; rollup figures equal to 1e-9."""
    for key in ("readings", "phase 2", "count", "latest", "gaps"):
        assert got[key] == want[key], key
    for key in want:
        if key not in ("readings", "phase 2", "count", "latest", "gaps"):
            got_numbers, want_numbers = _plain(got[key]), _plain(want[key])
            assert len(got_numbers) == len(want_numbers), key
            assert got_numbers == pytest.approx(want_numbers, rel=1e-9, abs=1e-9, nan_ok=True), key


def _plain(value: object) -> list[float]:
    """Return buckets and arrays flattened to numbers (times as epoch ms, None as NaN) for approx."""
    if isinstance(value, dict):
        return [number for key in sorted(value) for number in _plain(value[key])]
    if isinstance(value, list | tuple):
        return [number for item in value for number in _plain(item)]
    if isinstance(value, datetime):
        return [float(to_ms(value))]
    if value is None:
        return [float("nan")]
    if isinstance(value, str):
        return []
    if hasattr(value, "__dataclass_fields__"):
        return _plain([getattr(value, name) for name in value.__dataclass_fields__])
    assert isinstance(value, int | float)
    return [float(value)]


def _sql(backend: Backend, query: str, args: Sequence[object] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(backend.postgres_url, options=f"-c search_path={backend.schema}") as conn:
        return conn.execute(query, args).fetchall()  # type: ignore[arg-type]


def test_values_read_back_exactly_in_narrow_and_wide_columns(
    pair: tuple[Store, Store], tmp_path: Path
) -> None:
    lite, pg = pair
    meter = Meter("w", "file", tz=OSLO, interval_s=60)
    readings = beyond_four_bytes()
    for store in pair:
        store.add_meter(meter)
        assert store.write_readings(readings).stored == len(readings)
    assert list(pg.iter_readings(["w"], T0, T0 + timedelta(hours=1))) == readings
    assert_same(answers(pg, "w"), answers(lite, "w"))
    assert isinstance(pg, PostgresStore)
    backend = Backend("postgres", tmp_path)
    backend.schema = str(pg.schema)
    # Every power and reactive power beyond 2,147 kW, every register off whole Wh or beyond
    # 2,147,483 kWh went wide; the voltages stayed narrow.
    (row,) = _sql(
        backend,
        "SELECT count(p_wide), count(p), count(q_wide), count(ei_wide), count(ee_wide), "
        "count(ee), count(qi_wide), count(v), count(v_wide) FROM samples",
    )
    assert row == (12, 0, 12, 12, 11, 1, 12, 12, 0)


def test_readings_view_shows_the_rows_as_before(pair: tuple[Store, Store], tmp_path: Path) -> None:
    _, pg = pair
    assert isinstance(pg, PostgresStore)
    pg.add_meter(Meter("h", "file", phases=3, tz=OSLO, interval_s=60))
    readings = household(120)
    pg.write_readings(readings)
    backend = Backend("postgres", tmp_path)
    backend.schema = str(pg.schema)
    rows = _sql(
        backend,
        f"SELECT phase, ts, {', '.join(READING_FIELDS)} FROM readings "
        "WHERE meter = (SELECT pk FROM meters WHERE id = 'h') ORDER BY ts, phase",
    )
    shown = [
        Reading("h", datetime.fromtimestamp(int(str(r[1])) / 1000, UTC), int(str(r[0])), *r[2:])  # type: ignore[arg-type]
        for r in rows
    ]
    assert shown == readings


def test_a_new_database_matches_sqlite_everywhere(pair: tuple[Store, Store]) -> None:
    lite, pg = pair
    readings = household(2000)
    late = [r for r in readings if 1000 <= (r.ts - T0) / timedelta(minutes=1) < 1010]
    for store in pair:
        store.add_meter(Meter("h", "file", phases=3, tz=OSLO, interval_s=60))
        store.write_readings([r for r in readings if r not in late])
        store.write_readings(late)  # behind the series' newest: the rebuilding path
    assert_same(answers(pg, "h"), answers(lite, "h"))
    assert pg.remove_meter("h") == lite.remove_meter("h") == len(readings)
    assert pg.count_readings() == 0


# --- an existing database -------------------------------------------------------------------

_OLD_ROLLUP = (
    "meter, phase, bucket, n, power_n, power_sum_w, power_min_w, power_max_w, voltage_n, voltage_sum_v, "
    "voltage_min_v, voltage_max_v, current_n, current_sum_a, first_ts, first_import_kwh, first_export_kwh, "
    "last_ts, last_import_kwh, last_export_kwh, energy_import_kwh, energy_export_kwh, covered_ms"
)


def _old_row(pk: int, phase: int, agg: Agg) -> tuple[object, ...]:
    return (pk, phase, agg.bucket_ms, agg.n, agg.p_n, agg.p_sum, agg.p_min, agg.p_max, agg.v_n, agg.v_sum,
            agg.v_min, agg.v_max, agg.i_n, agg.i_sum, agg.first_ms, agg.first_imp, agg.first_exp, agg.last_ms,
            agg.last_imp, agg.last_exp, agg.e_imp, agg.e_exp, agg.covered_ms)  # fmt: skip


def _old_database(backend: Backend, readings: Sequence[Reading], with_rollups: bool) -> PostgresStore:
    """Return a store left at the migration before the compact layout, holding ``readings`` as
    meterhub kept them then: raw rows and (``with_rollups``) rollups, latest values and gaps."""
    old = backend.open(migrate=False)
    assert isinstance(old, PostgresStore)
    old.migrate_to(BEFORE)
    old.add_meter(Meter("h", "file", phases=3, tz=OSLO, interval_s=60))
    backend.insert_raw("h", readings)
    if not with_rollups:
        return old
    ((pk,),) = _sql(backend, "SELECT pk FROM meters WHERE id = 'h'")
    rows: dict[str, list[tuple[object, ...]]] = {
        "rollup_15m": [],
        "rollup_1h": [],
        "rollup_6h": [],
        "rollup_day": [],
    }
    latest: list[tuple[object, ...]] = []
    gaps: list[tuple[int, int]] = []
    midnights = local_midnights_ms(OSLO, to_ms(readings[0].ts), to_ms(readings[-1].ts))
    for phase in range(4):
        series = [r for r in readings if r.phase == phase]
        builder = RollupBuilder(widths_ms=(900_000, 3_600_000, 21_600_000))
        fed = [Row(to_ms(r.ts), r.power_w, r.voltage_v, r.current_a, r.energy_import_kwh, r.energy_export_kwh)
               for r in series]  # fmt: skip
        builder.feed(SeriesState(), fed, 120_000, phase == PHASE_TOTAL)
        aggs, found = builder.take()
        gaps.extend(found)
        days: dict[int, Agg] = {}
        for (width, bucket), agg in sorted(aggs.items()):
            table = {900_000: "rollup_15m", 3_600_000: "rollup_1h", 21_600_000: "rollup_6h"}[width]
            rows[table].append(_old_row(pk, phase, agg))
            if width == 900_000:
                day = int(midnights[np.searchsorted(midnights, bucket, "right") - 1])
                days.setdefault(day, Agg(day)).merge(agg)
        rows["rollup_day"].extend(_old_row(pk, phase, agg) for agg in days.values())
        newest = series[-1]
        imp = [r for r in series if r.energy_import_kwh is not None]
        exp = [r for r in series if r.energy_export_kwh is not None]
        imp_state = (to_ms(imp[-1].ts), imp[-1].energy_import_kwh, imp[-1].power_w) if imp else (None,) * 3
        exp_state = (to_ms(exp[-1].ts), exp[-1].energy_export_kwh, exp[-1].power_w) if exp else (None,) * 3
        latest.append((pk, phase, to_ms(newest.ts), *newest.values(), *imp_state, *exp_state))
    with psycopg.connect(backend.postgres_url, options=f"-c search_path={backend.schema}") as conn:
        for table, table_rows in rows.items():
            marks = ", ".join(["%s"] * 23)
            conn.cursor().executemany(f"INSERT INTO {table} ({_OLD_ROLLUP}) VALUES ({marks})", table_rows)
        conn.cursor().executemany(f"INSERT INTO latest VALUES ({', '.join(['%s'] * 19)})", latest)
        conn.cursor().executemany("INSERT INTO gaps VALUES (%s, %s, %s)", [(pk, a, b) for a, b in gaps])
    return old


@pytest.mark.parametrize("with_rollups", [True, False], ids=["filled", "raw-rows-only"])
def test_an_existing_database_upgrades_in_place(tmp_path: Path, with_rollups: bool) -> None:
    readings = household(2000)
    old_backend, fresh_backend = Backend("postgres", tmp_path), Backend("sqlite", tmp_path)
    try:
        old = _old_database(old_backend, readings, with_rollups)
        shown = (
            f"SELECT meter, phase, ts, {', '.join(READING_FIELDS)} FROM readings ORDER BY meter, ts, phase"
        )
        before = _sql(old_backend, shown)
        applied = old.migrate()
        assert "0009_compact_pg_readings" in applied
        fresh = fresh_backend.open()
        fresh.add_meter(Meter("h", "file", phases=3, tz=OSLO, interval_s=60))
        fresh.write_readings(readings)
        assert_same(answers(old, "h"), answers(fresh, "h"))
        # The view shows the same rows the old table held; the old tables are gone.
        assert _sql(old_backend, shown) == before
        relations = {
            str(r[0])
            for r in _sql(
                old_backend,
                "SELECT relname FROM pg_class WHERE relnamespace = to_regnamespace(current_schema())::oid",
            )
        }
        assert not {name for name in relations if name.endswith("_0008") or name.startswith("readings_")}
        assert {
            "samples",
            "rollup_15m",
            "rollup_6h",
            "rollup_day",
        } <= relations and "rollup_1h" not in relations
        # The upgraded database continues its series.
        more = [Reading("h", readings[-1].ts + timedelta(minutes=k), power_w=500.0,
                        energy_import_kwh=5000.0 + k) for k in range(1, 30)]  # fmt: skip
        for store in (old, fresh):
            store.write_readings(more)
        assert_same(answers(old, "h"), answers(fresh, "h"))
    finally:
        old_backend.close()
        fresh_backend.close()
