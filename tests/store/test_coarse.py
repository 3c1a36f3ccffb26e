"""The coarse rollups (6-hour UTC buckets and the meter's local days) agree with the 15-minute ones.

SQLite keeps ``rollup_6h`` and ``rollup_day`` at ingest; ``period_sums`` and ``period_power`` read
the coarsest table that tiles the periods. Every expectation here comes from somewhere else: the
15-minute rollups, the calendar module's local edges, or a plain-Python merge of 15-minute rows.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterhub.analytics.calendar import local_boundaries, local_midnight
from meterhub.errors import InputError, UnknownMeterError
from meterhub.model import Meter, Reading
from meterhub.store.base import Bucket, Store, SumField
from meterhub.store.coarse import refresh_meter_days
from meterhub.store.sqlite import SQLiteStore
from meterhub.store.sqlite_codec import ROLLUP_READ_SQL, STORED_ROLLUP_COLUMNS, encode_reading
from meterhub.timeutil import from_ms, to_ms
from tests.store.test_rollup_property import T0, histories, ingest_in_random_order

Ints = npt.NDArray[np.int64]
Row = tuple[int | float | None, ...]

FIELDS: tuple[SumField, ...] = ("energy_import_kwh", "energy_export_kwh", "covered_s", "count")
ZONES = ["UTC", "Europe/Oslo", "Asia/Kathmandu", "America/St_Johns", "Australia/Lord_Howe"]
SIX_HOURS = timedelta(hours=6)
SIX_HOURS_MS = 21_600_000
QUARTER_MS = 900_000
FAR = timedelta(days=400)

# Where a history may be moved so it crosses other clock changes than Oslo's in March.
SHIFTS = [
    timedelta(0),  # Europe/Oslo springs forward at 01:00 UTC on 29 March
    datetime(2026, 10, 24, 22, tzinfo=UTC) - T0,  # Oslo falls back at 01:00 UTC on 25 October
    datetime(2026, 3, 8, 2, tzinfo=UTC) - T0,  # St John's springs forward at 05:30 UTC on 8 March
    datetime(2026, 4, 4, 12, tzinfo=UTC) - T0,  # Lord Howe falls back 30 min at 15:00 UTC on 4 April
]

_SUMMED = ("n", "p_n", "p_sum", "v_n", "v_sum", "i_n", "i_sum", "e_imp", "e_exp", "covered_ms")


# --- helpers -------------------------------------------------------------------------------


def ms(times: Sequence[datetime]) -> Ints:
    return np.array([to_ms(t) for t in times], dtype=np.int64)


def table_rows(path: Path, table: str) -> list[Row]:
    """Return every row of a rollup table (counts whole), read with a plain connection, in key order."""
    select = ", ".join(ROLLUP_READ_SQL[c] for c in STORED_ROLLUP_COLUMNS)
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(f"SELECT {select} FROM {table} ORDER BY meter, phase, bucket").fetchall()


def oracle_coarse(fine: Sequence[Row], coarse_of: Callable[[int], int]) -> list[Row]:
    """Merge 15-minute rows into coarse buckets in plain Python: sums, min, max."""
    groups: dict[tuple[int, int, int], list[dict[str, int | float | None]]] = {}
    for row in fine:
        named = dict(zip(STORED_ROLLUP_COLUMNS, row, strict=True))
        meter, phase, bucket = (int(named[c] or 0) for c in ("meter", "phase", "bucket"))
        groups.setdefault((meter, phase, coarse_of(bucket)), []).append(named)
    merged_rows: list[Row] = []
    for (meter, phase, coarse), rows in sorted(groups.items()):
        rows.sort(key=lambda r: int(r["bucket"] or 0))
        merged: dict[str, int | float | None] = {"meter": meter, "phase": phase, "bucket": coarse}
        for column in _SUMMED:
            merged[column] = sum(r[column] or 0 for r in rows)
        for column, pick in (("p_min", min), ("v_min", min), ("p_max", max), ("v_max", max)):
            present = [v for r in rows if (v := r[column]) is not None]
            merged[column] = pick(present) if present else None
        merged_rows.append(tuple(merged[c] for c in STORED_ROLLUP_COLUMNS))
    return merged_rows


def day_of(tz: str) -> Callable[[int], int]:
    """Return a function mapping a 15-minute bucket to the local midnight that begins its day."""
    zone = ZoneInfo(tz)
    return lambda bucket_ms: to_ms(local_midnight(from_ms(bucket_ms).astimezone(zone).date(), zone))


def six_hour_of(bucket_ms: int) -> int:
    return bucket_ms - bucket_ms % SIX_HOURS_MS


def check_coarse_tables(path: Path, tz: str) -> None:
    """Assert both coarse tables equal a plain-Python merge of the stored 15-minute rows."""
    fine = table_rows(path, "rollup_15m")
    assert table_rows(path, "rollup_6h") == oracle_coarse(fine, six_hour_of)
    assert table_rows(path, "rollup_day") == oracle_coarse(fine, day_of(tz))


ROLLUP_TABLES = ("rollup_15m", "rollup_6h", "rollup_day")


def check_compact_layout(path: Path) -> None:
    """Assert the rollup tables have the compact columns, no whole counts stored, and hours a view."""
    with closing(sqlite3.connect(path)) as conn:
        for table in ROLLUP_TABLES:
            columns = tuple(r[1] for r in conn.execute(f"PRAGMA table_info({table})"))
            assert columns == STORED_ROLLUP_COLUMNS
            stored_whole = conn.execute(
                f"SELECT count(*) FROM {table} WHERE p_n = n OR v_n = n OR i_n = n"
            ).fetchone()[0]
            assert stored_whole == 0
        kinds = dict(conn.execute("SELECT name, type FROM sqlite_master WHERE name LIKE 'rollup_%'"))
        assert kinds["rollup_1h"] == "view"
        hours = conn.execute("SELECT count(*), sum(n) FROM rollup_1h").fetchone()
        quarters = conn.execute(
            "SELECT count(DISTINCT meter || ' ' || phase || ' ' || (bucket - bucket % 3600000)), sum(n) "
            "FROM rollup_15m"
        ).fetchone()
        assert hours == quarters


def fine_buckets(store: Store, meter_id: str) -> list[Bucket]:
    return store.rollups(meter_id, 0, T0 - FAR, T0 + FAR, 900)


def fine_sums(fine: Sequence[Bucket], bounds: Ints) -> dict[str, npt.NDArray[np.float64]]:
    """Sum 15-minute buckets into the periods their start lies in."""
    periods = len(bounds) - 1
    starts = ms([b.start for b in fine])
    index = np.searchsorted(bounds, starts, "right") - 1
    inside = (index >= 0) & (index < periods)
    out: dict[str, npt.NDArray[np.float64]] = {}
    for field in FIELDS:
        values = np.array([float(getattr(b, field)) for b in fine], dtype=np.float64)
        out[field] = np.bincount(index[inside], weights=values[inside], minlength=periods).astype(np.float64)
    return out


PowerRow = tuple[int, float | None, float | None, float | None]


def fine_power(fine: Sequence[Bucket], bounds: Ints) -> list[PowerRow]:
    """Return (count, avg, min, max) per period from 15-minute buckets whose readings all have power."""
    index = np.searchsorted(bounds, ms([b.start for b in fine]), "right") - 1
    per_period: list[list[Bucket]] = [[] for _ in range(len(bounds) - 1)]
    for k, bucket in zip(index.tolist(), fine, strict=True):
        if 0 <= k < len(per_period) and bucket.count:
            per_period[k].append(bucket)
    out: list[PowerRow] = []
    for inside in per_period:
        count = sum(b.count for b in inside)
        if not count:
            out.append((0, None, None, None))
            continue
        total = sum((b.power_avg_w or 0.0) * b.count for b in inside)
        out.append(
            (
                count,
                total / count,
                min(b.power_min_w for b in inside if b.power_min_w is not None),
                max(b.power_max_w for b in inside if b.power_max_w is not None),
            )
        )
    return out


def same(got: float, want: float | None, rel: float = 1e-9) -> bool:
    """Tell whether an array value (NaN for none) matches a bucket value (None for none)."""
    if want is None:
        return math.isnan(got)
    return not math.isnan(got) and math.isclose(got, want, rel_tol=rel, abs_tol=1e-9)


def assert_sums_match_fine(
    store: Store, meter_id: str, bounds: Ints
) -> dict[SumField, npt.NDArray[np.float64]]:
    got = store.period_sums(meter_id, 0, bounds, FIELDS)
    want = fine_sums(fine_buckets(store, meter_id), bounds)
    for field in FIELDS:
        assert len(got[field]) == len(bounds) - 1, field
        tolerance = 1e-9 if field.startswith("energy") else 0.0
        np.testing.assert_allclose(got[field], want[field], rtol=0, atol=tolerance, err_msg=field)
    return got


# --- 1. property: ingest in any order equals the 15-minute sums and a full rebuild ----------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=histories(),
    seed=st.integers(0, 2**32),
    tz=st.sampled_from(ZONES),
    shift=st.sampled_from(SHIFTS),
)
def test_coarse_rollups_equal_fine_sums_and_a_rebuild(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[Reading],
    seed: int,
    tz: str,
    shift: timedelta,
) -> None:
    path = tmp_path_factory.mktemp("coarse") / "c.db"
    rows = [r._replace(ts=r.ts + shift) for r in rows]
    store = SQLiteStore(path)
    try:
        store.add_meter(Meter("m", "file", tz=tz, interval_s=60))
        ingest_in_random_order(store, rows, seed)
        fine = fine_buckets(store, "m")
        assert fine
        first, last = fine[0].start, fine[-1].end
        # (a) the meter's local days, from the calendar module.
        days = ms(local_boundaries(first, last, tz, "day"))
        assert days[0] <= to_ms(first) and days[-1] >= to_ms(last)
        day_sums = assert_sums_match_fine(store, "m", days)
        # (b) UTC-aligned 6-hour periods.
        lo = to_ms(first) - to_ms(first) % SIX_HOURS_MS
        six = np.arange(lo, to_ms(last) + SIX_HOURS_MS, SIX_HOURS_MS, dtype=np.int64)
        six_sums = assert_sums_match_fine(store, "m", six)
        # (d) energy is never negative, per period or per stored coarse row.
        for sums in (day_sums, six_sums):
            assert (sums["energy_import_kwh"] >= 0).all()
            assert (sums["energy_export_kwh"] >= 0).all()
        # Every reading is counted once, in one day and in one 6-hour period.
        assert day_sums["count"].sum() == six_sums["count"].sum() == len({r.ts for r in rows})
    finally:
        store.close()
    # (c) rows merged batch by batch equal rows rebuilt from the 15-minute table ...
    ingested = {table: table_rows(path, table) for table in ("rollup_6h", "rollup_day")}
    energy_columns = [STORED_ROLLUP_COLUMNS.index(c) for c in ("e_imp", "e_exp")]
    for table_contents in ingested.values():
        assert all((r[c] or 0) >= 0 for r in table_contents for c in energy_columns)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM rollup_6h")
        conn.execute("DELETE FROM rollup_day")
        for pk, zone in conn.execute("SELECT pk, tz FROM meters").fetchall():
            refresh_meter_days(conn, pk, zone)
        conn.execute("COMMIT")
    rebuilt = {table: table_rows(path, table) for table in ("rollup_6h", "rollup_day")}
    assert rebuilt == ingested
    # ... and a merge done in plain Python, bucketed by the calendar module's midnights.
    check_coarse_tables(path, tz)


# --- 2. period_sums / period_power equal aggregate on calendar periods ----------------------

OSLO = ZoneInfo("Europe/Oslo")


def oslo(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=OSLO)


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _dst_year_rows(meter_id: str, registers: bool) -> list[Reading]:
    """5-minute readings around both Oslo clock changes, with a gap of more than a day.

    Stretches: 27 Mar 20:00 UTC - 30 Mar 10:00 UTC, 1 Apr 14:00 - 2 Apr 12:00 (so Oslo's
    31 March has no reading at all), and 24 Oct 18:00 - 26 Oct 06:00. Power varies with k.
    Without registers no energy is spread over the gaps, so whole days have no rollup row.
    """
    stretches = [
        (_utc(2026, 3, 27, 20), _utc(2026, 3, 30, 10)),
        (_utc(2026, 4, 1, 14), _utc(2026, 4, 2, 12)),
        (_utc(2026, 10, 24, 18), _utc(2026, 10, 26, 6)),
    ]
    rows: list[Reading] = []
    register = 1000.0
    for lo, hi in stretches:
        register += 50.0  # energy metered while nothing was read
        t = lo
        k = 0
        while t < hi:
            power_w = 200.0 + (k * 137) % 3000 - (700.0 if k % 11 == 0 else 0.0)
            register += max(power_w, 0.0) / 1000 * 300 / 3600
            rows.append(
                Reading(
                    meter_id,
                    t,
                    voltage_v=229.0 + k % 5,
                    power_w=power_w,
                    energy_import_kwh=round(register, 6) if registers else None,
                    energy_export_kwh=round(k * 0.001, 6) if registers else None,
                )
            )
            t += timedelta(minutes=5)
            k += 1
    return rows


def _period_cases() -> dict[str, list[datetime]]:
    march_days = local_boundaries(oslo(2026, 3, 27), oslo(2026, 4, 3), "Europe/Oslo", "day")
    october_days = local_boundaries(oslo(2026, 10, 23), oslo(2026, 10, 28), "Europe/Oslo", "day")
    return {
        "march_days": march_days,
        "october_days": october_days,
        "months": local_boundaries(oslo(2026, 2, 1), oslo(2026, 12, 1), "Europe/Oslo", "month"),
        "uneven_days": [march_days[k] for k in (0, 1, 3, 6, 7)],
        "six_hours": [_utc(2026, 3, 27, 12) + k * SIX_HOURS for k in range(26)]
        + [_utc(2026, 10, 24, 12) + k * SIX_HOURS for k in range(8)],
        "twelve_hours": [_utc(2026, 3, 28) + k * 2 * SIX_HOURS for k in range(12)],
        "hours_spring": local_boundaries(_utc(2026, 3, 28, 20), _utc(2026, 3, 29, 6), OSLO, "hour"),
        "hours_autumn": local_boundaries(_utc(2026, 10, 24, 20), _utc(2026, 10, 25, 6), OSLO, "hour"),
        "quarters": local_boundaries(_utc(2026, 10, 24, 23), _utc(2026, 10, 25, 3), "Europe/Oslo", "15m"),
        "gap_days": local_boundaries(oslo(2026, 3, 30), oslo(2026, 4, 3), "Europe/Oslo", "day"),
        "before_any_data": local_boundaries(oslo(2026, 1, 1), oslo(2026, 1, 5), "Europe/Oslo", "day"),
    }


def _check_periods(
    store: Store, meter_id: str, fine: Sequence[Bucket], name: str, edges: list[datetime]
) -> None:
    """Assert period_sums and period_power equal aggregate and the 15-minute rollups."""
    bounds = ms(edges)
    buckets = store.aggregate(meter_id, 0, edges, with_registers=False)
    sums = store.period_sums(meter_id, 0, bounds, FIELDS)
    power = store.period_power(meter_id, 0, bounds)
    want_sums = fine_sums(fine, bounds)
    want_power = fine_power(fine, bounds)
    assert len(buckets) == len(edges) - 1, name
    assert all(len(column) == len(buckets) for column in (*sums.values(), *power)), name
    for k, bucket in enumerate(buckets):
        where = f"{meter_id} {name}[{k}] {bucket.start.isoformat()}"
        assert (bucket.start, bucket.end) == (edges[k], edges[k + 1]), where
        for field in FIELDS:
            value = float(sums[field][k])
            assert value == pytest.approx(float(getattr(bucket, field)), rel=0, abs=1e-9), where
            assert value == pytest.approx(float(want_sums[field][k]), rel=0, abs=1e-9), where
        assert int(power.count[k]) == bucket.count == want_power[k][0], where
        for got, from_aggregate, from_fine in zip(
            (power.power_avg_w[k], power.power_min_w[k], power.power_max_w[k]),
            (bucket.power_avg_w, bucket.power_min_w, bucket.power_max_w),
            want_power[k][1:],
            strict=True,
        ):
            assert same(float(got), from_aggregate), where
            assert same(float(got), from_fine), where


@pytest.mark.parametrize("registers", [True, False], ids=["registers", "power_only"])
def test_period_figures_equal_aggregate_on_calendar_periods(store: Store, registers: bool) -> None:
    store.add_meter(Meter("d", "file", tz="Europe/Oslo", interval_s=300))
    rows = _dst_year_rows("d", registers)
    for start in range(0, len(rows), 500):
        store.write_readings(rows[start : start + 500])
    cases = _period_cases()
    # The clock changes make a 23-hour day in March and a 25-hour one in October.
    spring, autumn = cases["march_days"][2:4], cases["october_days"][2:4]
    assert spring == [_utc(2026, 3, 28, 23), _utc(2026, 3, 29, 22)]
    assert autumn == [_utc(2026, 10, 24, 22), _utc(2026, 10, 25, 23)]
    fine = fine_buckets(store, "d")
    for name, edges in cases.items():
        _check_periods(store, "d", fine, name, edges)
    # The whole of Oslo's 31 March lies in the gap: no reading, nothing covered; the energy
    # metered across the gap is spread over it when there are registers.
    gap = store.period_sums("d", 0, ms(cases["gap_days"]), FIELDS)
    assert gap["count"][1] == 0 and gap["covered_s"][1] == 0
    assert bool(gap["energy_import_kwh"][1] > 0) == registers
    assert math.isnan(store.period_power("d", 0, ms(cases["gap_days"])).power_avg_w[1])
    # The 23- and 25-hour days are read whole: 12 readings an hour, every second covered.
    days = store.period_sums("d", 0, ms(cases["march_days"]), FIELDS)
    assert days["count"][2] == 23 * 12 and days["covered_s"][2] == 23 * 3600
    autumn_days = store.period_sums("d", 0, ms(cases["october_days"]), FIELDS)
    assert autumn_days["count"][2] == 25 * 12 and autumn_days["covered_s"][2] == 25 * 3600
    months = store.period_sums("d", 0, ms(cases["months"]), FIELDS)
    assert months["count"].sum() == len(rows)
    empty = store.period_sums("d", 0, ms(cases["before_any_data"]), FIELDS)
    assert all((empty[field] == 0).all() for field in FIELDS)


# --- 3. a new zone moves the day rows --------------------------------------------------------


def _quarter_rows(start: datetime, end: datetime) -> list[Reading]:
    count = int((end - start) / timedelta(minutes=15))
    return [
        Reading(
            "z",
            start + k * timedelta(minutes=15),
            power_w=100.0 + k % 40 * 25,
            energy_import_kwh=round(10 + k * 0.05, 6),
        )
        for k in range(count)
    ]


def _day_buckets(path: Path) -> list[int]:
    return [int(r[2] or 0) for r in table_rows(path, "rollup_day")]


def _expected_day_buckets(path: Path, tz: str) -> list[int]:
    to_day = day_of(tz)
    return sorted({to_day(int(r[2] or 0)) for r in table_rows(path, "rollup_15m")})


def test_changing_the_zone_moves_the_day_rows(tmp_path: Path) -> None:
    path = tmp_path / "z.db"
    store = SQLiteStore(path)
    try:
        store.add_meter(Meter("z", "file", tz="UTC", interval_s=900))
        # 3 - 7 April 2026: Lord Howe falls back from +11 to +10:30 on the 5th (a 24.5-hour day).
        store.write_readings(_quarter_rows(_utc(2026, 4, 3), _utc(2026, 4, 7)))
        utc_days = _day_buckets(path)
        assert utc_days == [to_ms(_utc(2026, 4, d)) for d in range(3, 7)]
        six_before = table_rows(path, "rollup_6h")

        store.update_meter(Meter("z", "file", tz="Australia/Lord_Howe", interval_s=900))
        zone = ZoneInfo("Australia/Lord_Howe")
        lord_howe_days = [to_ms(datetime(2026, 4, d, tzinfo=zone)) for d in range(3, 8)]
        assert _day_buckets(path) == _expected_day_buckets(path, "Australia/Lord_Howe") == lord_howe_days
        assert table_rows(path, "rollup_6h") == six_before  # UTC buckets do not follow the zone
        check_coarse_tables(path, "Australia/Lord_Howe")
        edges = local_boundaries(_utc(2026, 4, 3), _utc(2026, 4, 7), "Australia/Lord_Howe", "day")
        assert edges[3] - edges[2] == timedelta(hours=24, minutes=30)
        sums = assert_sums_match_fine(store, "z", ms(edges))
        assert sums["count"][2] == 98  # 24.5 hours of quarter-hour readings

        # Readings after the change, new and late, land in the new zone's days.
        store.write_readings(_quarter_rows(_utc(2026, 4, 7), _utc(2026, 4, 8)))
        on_the_4th = _quarter_rows(_utc(2026, 4, 4), _utc(2026, 4, 5))
        late = [r._replace(ts=r.ts + timedelta(minutes=7)) for r in on_the_4th]
        store.write_readings(late[::9])
        check_coarse_tables(path, "Australia/Lord_Howe")
        assert _day_buckets(path) == _expected_day_buckets(path, "Australia/Lord_Howe")

        # Once more, to a zone whose midnights are at :15 UTC.
        store.update_meter(Meter("z", "file", tz="Asia/Kathmandu", interval_s=900))
        kathmandu_days = _day_buckets(path)
        assert kathmandu_days == _expected_day_buckets(path, "Asia/Kathmandu")
        assert all(b % 3_600_000 == 15 * 60_000 for b in kathmandu_days)
        check_coarse_tables(path, "Asia/Kathmandu")
        edges = local_boundaries(_utc(2026, 4, 2), _utc(2026, 4, 9), "Asia/Kathmandu", "day")
        assert_sums_match_fine(store, "z", ms(edges))
    finally:
        store.close()


# --- 4. a database from before the coarse tables ---------------------------------------------


def _migration_rows() -> list[Reading]:
    start = _utc(2026, 3, 27, 18)
    return [
        Reading(
            "m",
            start + k * timedelta(minutes=5),
            power_w=300.0 + (k * 53) % 1500,
            energy_import_kwh=round(5 + k * 0.04, 6),
        )
        for k in range(3 * 288)
        if not 300 <= k < 420  # a ten-hour gap
    ]


def test_migration_fills_the_coarse_tables(tmp_path: Path) -> None:
    meter = Meter("m", "file", tz="Europe/Oslo", interval_s=300)
    rows = _migration_rows()
    old_path = tmp_path / "old.db"
    old = SQLiteStore(old_path, migrate=False)
    fresh = SQLiteStore(tmp_path / "fresh.db")
    try:
        # An older meterhub wrote the readings; migrations up to 0005 built the fine rollups.
        old.migrate_to("0001_core")
        old.add_meter(meter)
        with closing(sqlite3.connect(old_path)) as conn, conn:
            (pk,) = conn.execute("SELECT pk FROM meters WHERE id = 'm'").fetchone()
            conn.executemany(
                "INSERT INTO readings (meter, phase, ts, v, i, p, q, pf, f, ei, ee, qi, qe) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [encode_reading(pk, r, to_ms(r.ts)) for r in rows],
            )
        assert old.migrate_to("0005_users_keys_shares")[-1] == "0005_users_keys_shares"
        with closing(sqlite3.connect(old_path)) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "rollup_15m" in tables and not {"rollup_6h", "rollup_day"} & tables
        assert table_rows(old_path, "rollup_15m")

        assert old.migrate_to("0007_extra_rollups") == ["0006_coarse_rollups", "0007_extra_rollups"]
        assert table_rows(old_path, "rollup_6h") and table_rows(old_path, "rollup_day")
        check_coarse_tables(old_path, "Europe/Oslo")
        with closing(sqlite3.connect(old_path)) as conn, conn:
            for table in ROLLUP_TABLES:  # as an older meterhub kept them: whole counts, edge readings
                conn.execute(
                    f"UPDATE {table} SET p_n = coalesce(p_n, n), v_n = coalesce(v_n, n), "
                    "i_n = coalesce(i_n, n), first_off = 0, first_ei = 1, last_off = 0, last_ei = 2"
                )
            assert conn.execute("SELECT count(*) FROM rollup_15m WHERE p_n = n").fetchone()[0] > 0
        before_compaction = {table: table_rows(old_path, table) for table in ROLLUP_TABLES}

        assert old.migrate()[-1] == "0010_compact_rollups"
        check_compact_layout(old_path)
        assert {table: table_rows(old_path, table) for table in ROLLUP_TABLES} == before_compaction

        fresh.add_meter(meter)
        fresh.write_readings(rows)
        days = ms(local_boundaries(_utc(2026, 3, 27), _utc(2026, 3, 31), "Europe/Oslo", "day"))
        six = ms([_utc(2026, 3, 27) + k * SIX_HOURS for k in range(17)])
        for bounds in (days, six):
            migrated = assert_sums_match_fine(old, "m", bounds)
            written = fresh.period_sums("m", 0, bounds, FIELDS)
            for field in FIELDS:
                np.testing.assert_allclose(migrated[field], written[field], rtol=0, atol=1e-9)
            assert written["count"].sum() == len(rows)
            old_power, new_power = old.period_power("m", 0, bounds), fresh.period_power("m", 0, bounds)
            for a, b in zip(old_power, new_power, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-12)
        # The migrated database continues its series into the coarse tables.
        more = [
            Reading("m", rows[-1].ts + k * timedelta(minutes=5), power_w=500.0, energy_import_kwh=200.0 + k)
            for k in range(1, 30)
        ]
        old.write_readings(more)
        check_coarse_tables(old_path, "Europe/Oslo")
    finally:
        old.close()
        fresh.close()


# --- 5. bad boundaries ---------------------------------------------------------------------


def test_period_figures_reject_bad_boundaries(store: Store) -> None:
    store.add_meter(Meter("m", "file", tz="Europe/Oslo"))
    store.write_readings([Reading("m", _utc(2026, 3, 2, 0, m), power_w=10.0) for m in range(0, 60, 5)])
    start = to_ms(_utc(2026, 3, 2))
    bad: list[npt.NDArray[np.int64]] = [
        np.array([start, start + 5 * 60_000], dtype=np.int64),  # not on a 15-minute edge
        np.array([start + 1, start + QUARTER_MS], dtype=np.int64),
        np.array([start + QUARTER_MS, start], dtype=np.int64),  # decreasing
        np.array([start, start + QUARTER_MS, start + QUARTER_MS], dtype=np.int64),  # repeated
        np.array([[start, start + QUARTER_MS]], dtype=np.int64),  # 2-D
        np.zeros(0, dtype=np.int64),  # no boundary at all
    ]
    for bounds in bad:
        with pytest.raises(InputError):
            store.period_sums("m", 0, bounds, FIELDS)
        with pytest.raises(InputError):
            store.period_power("m", 0, bounds)
    single = np.array([start], dtype=np.int64)
    sums = store.period_sums("m", 0, single, FIELDS)
    assert set(sums) == set(FIELDS) and all(len(v) == 0 for v in sums.values())
    power = store.period_power("m", 0, single)
    assert all(len(column) == 0 for column in power)
    good = np.array([start, start + 4 * QUARTER_MS], dtype=np.int64)
    assert store.period_sums("m", 0, good, ["count"])["count"].tolist() == [12.0]
    with pytest.raises(UnknownMeterError):
        store.period_sums("ghost", 0, good, FIELDS)
    with pytest.raises(UnknownMeterError):
        store.period_power("ghost", 0, good)
