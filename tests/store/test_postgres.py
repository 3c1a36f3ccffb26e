"""What only the PostgreSQL backend has: URLs and errors, schemas, partitions, recovery, parity.

The Store contract itself is tested for both backends in test_contract.py.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from meterhub.errors import MigrationError, StoreError
from meterhub.model import Meter, Reading
from meterhub.store import open_store
from meterhub.store.base import Bucket, Store, WriteResult
from meterhub.store.postgres import PostgresStore, parse_url
from meterhub.store.postgres_schema import MIGRATIONS
from meterhub.store.sqlite import SQLiteStore

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 3, 31, 20, tzinfo=UTC)
"""Four hours before a month edge, so writes span two partitions."""


@pytest.fixture
def schema(postgres_url: str) -> Iterator[str]:
    """Yield the name of a schema that is dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def pg(postgres_url: str, schema: str) -> Iterator[PostgresStore]:
    """Yield a migrated store in a fresh schema."""
    store = PostgresStore(postgres_url, schema=schema)
    yield store
    store.close()


def _tables(url: str, schema: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    return {row[0] for row in rows}


def test_unreachable_server_is_one_line_without_the_password() -> None:
    with pytest.raises(StoreError) as raised:
        PostgresStore("postgresql://meter:hunter2@127.0.0.1:1/test")
    message = str(raised.value)
    assert message.startswith("cannot connect to PostgreSQL at postgresql://meter:***@127.0.0.1:1/test")
    assert "hunter2" not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://meter:hunter2@[::1/test",
        "postgresql://meter:hunter2@127.0.0.1/test?nonsense=1",
        "postgresql://127.0.0.1/test?password=hunter2&nonsense=1",
    ],
)
def test_bad_url_is_one_line_without_the_password(url: str) -> None:
    with pytest.raises(StoreError) as raised:
        PostgresStore(url)
    message = str(raised.value)
    assert message.startswith("bad PostgreSQL URL")
    assert "hunter2" not in message
    assert "\n" not in message


def test_parse_url_moves_schema_into_search_path() -> None:
    conninfo, schema, shown = parse_url("postgresql://u:pw@db.example:6543/meters?schema=hub")
    assert schema == "hub"
    assert "search_path=hub" in conninfo
    assert "connect_timeout" in conninfo
    assert shown == "postgresql://u:***@db.example:6543/meters"


def test_schema_from_url_via_open_store(postgres_url: str, schema: str) -> None:
    store = open_store(f"{postgres_url}?schema={schema}")
    try:
        assert isinstance(store, PostgresStore)
        store.add_meter(Meter("m", "file"))
        assert store.list_meters()[0].id == "m"
    finally:
        store.close()
    assert {
        "meters",
        "readings",
        "samples",
        "rollup_15m",
        "rollup_6h",
        "rollup_day",
        "latest",
        "gaps",
        "tokens",
        "quota_ledger",
        "intervals",
        "extras",
        "schema_migrations",
    } <= _tables(postgres_url, schema)
    assert "meters" not in _tables(postgres_url, "public")


def test_libpq_options_search_path_works_for_an_existing_schema(postgres_url: str, schema: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    store = PostgresStore(f"{postgres_url}?options=-csearch_path%3D{schema}")
    try:
        assert store.migrations_applied()[-1] == MIGRATIONS[-1][0]
    finally:
        store.close()
    assert "readings" in _tables(postgres_url, schema)


def test_readings_go_to_monthly_partitions(pg: PostgresStore, postgres_url: str, schema: str) -> None:
    pg.add_meter(Meter("m", "file", interval_s=3600))
    hours = [T0 + timedelta(hours=h) for h in range(8)]
    result = pg.write_readings([Reading("m", ts, power_w=1.0) for ts in hours])
    assert result == WriteResult(8, 0)
    with psycopg.connect(postgres_url, options=f"-c search_path={schema}") as conn:
        counts: dict[str, int] = dict(
            conn.execute("SELECT tableoid::regclass::text, count(*) FROM samples GROUP BY 1").fetchall()
        )
    # 20:00 .. 23:00 on 31 March, 00:00 .. 03:00 on 1 April.
    assert counts == {"samples_202603": 4, "samples_202604": 4}


def test_concurrent_first_opens_migrate_once(postgres_url: str, schema: str) -> None:
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_one() -> None:
        start.wait()
        try:
            stores.append(PostgresStore(postgres_url, schema=schema))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert stores[0].migrations_applied() == [name for name, _ in MIGRATIONS]
        assert "0009_compact_pg_readings" in stores[0].migrations_applied()
    finally:
        for store in stores:
            store.close()


def test_migrate_to_an_unknown_name_raises(postgres_url: str, schema: str) -> None:
    store = PostgresStore(postgres_url, schema=schema, migrate=False)
    try:
        with pytest.raises(MigrationError, match="0009_nonsense"):
            store.migrate_to("0009_nonsense")
        assert store.migrations_applied() == []
    finally:
        store.close()


def test_stale_latest_table_falls_back_to_rebuilding(
    pg: PostgresStore, postgres_url: str, schema: str
) -> None:
    pg.add_meter(Meter("m", "file", interval_s=60))
    rows = [
        Reading("m", T0 + timedelta(minutes=k), power_w=600.0, energy_import_kwh=k / 100) for k in range(6)
    ]
    pg.write_readings(rows[:4])
    with psycopg.connect(postgres_url, options=f"-c search_path={schema}", autocommit=True) as conn:
        conn.execute("DELETE FROM latest")  # as if raw rows had been loaded behind our back
    # The fast path would COPY rows that exist: the store must notice and rebuild instead.
    assert pg.write_readings(rows[2:]) == WriteResult(2, 2)
    (bucket,) = pg.rollups("m", 0, T0, T0 + timedelta(minutes=15), 900)
    assert bucket.count == 6
    assert bucket.energy_import_kwh == pytest.approx(0.05)
    assert bucket.covered_s == 300.0
    assert [r.ts for r in pg.latest()] == [rows[-1].ts]


def test_write_connection_recovers_after_being_killed(pg: PostgresStore, postgres_url: str) -> None:
    pg.add_meter(Meter("m", "file"))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pg._conn.info.backend_pid,))
    reading = Reading("m", T0, power_w=1.0)
    try:
        pg.write_readings([reading])
    except StoreError as exc:
        assert "\n" not in str(exc)
    assert pg.write_readings([reading]) in (WriteResult(1, 0), WriteResult(0, 1))
    assert pg.count_readings("m") == 1


def test_closed_store_refuses_writes(postgres_url: str, schema: str) -> None:
    store = PostgresStore(postgres_url, schema=schema)
    store.close()
    store.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        store.add_meter(Meter("m", "file"))


# --- parity with SQLite --------------------------------------------------------------------


def _workload(seed: int) -> list[list[Reading]]:
    """Return batches of a three-phase meter's readings: jitter, gaps, resets, late rows."""
    rng = random.Random(seed)
    readings: list[Reading] = []
    t = T0
    registers = [1000.0, 300.0, 300.0, 400.0]
    for _ in range(700):
        step_s = rng.choice([55, 60, 60, 60, 65, 60, 400]) + rng.randint(0, 999) / 1000
        t += timedelta(seconds=step_s)
        for phase in range(4):
            power = round(rng.uniform(-2000, 6000), 3)
            registers[phase] += max(power, 0) / 1000 * 60 / 3600
            if rng.random() < 0.01:
                registers[phase] = round(rng.uniform(0, 0.01), 6)  # reset
            readings.append(
                Reading(
                    "m",
                    t,
                    phase,
                    voltage_v=None if rng.random() < 0.05 else round(rng.uniform(220, 245), 1),
                    current_a=round(abs(power) / 230, 3),
                    power_w=None if rng.random() < 0.05 else power,
                    energy_import_kwh=round(registers[phase], 6),
                    energy_export_kwh=round(1.0 + t.timestamp() % 7 / 100, 6),
                )
            )
    # Late rows only in the first third: later buckets are built by fast-path merges alone.
    held_back = [r for r in readings[: len(readings) // 3] if rng.random() < 0.1]
    kept = [r for r in readings if r not in held_back]
    batches: list[list[Reading]] = []
    while kept:
        size = rng.randint(1, 200)
        batches.append(kept[:size])
        kept = kept[size:]
    rng.shuffle(held_back)
    batches.extend(held_back[i : i + 25] for i in range(0, len(held_back), 25))
    batches.append(readings[100:160])  # re-sent: all duplicates
    return batches


def _assert_same_buckets(got: list[Bucket], want: list[Bucket]) -> None:
    assert len(got) == len(want)
    for mine, theirs in zip(got, want, strict=True):
        for name in Bucket._fields:
            a, b = getattr(mine, name), getattr(theirs, name)
            if isinstance(b, float):
                assert a == pytest.approx(b, rel=1e-6, abs=1e-6), (mine.start, name)
            else:
                assert a == b, (mine.start, name)


def test_same_results_as_sqlite(pg: PostgresStore, tmp_path: Path) -> None:
    lite = SQLiteStore(tmp_path / "parity.db")
    try:
        stores: list[Store] = [lite, pg]
        for store in stores:
            store.add_meter(Meter("m", "file", phases=3, tz="Europe/Oslo", interval_s=60))
        for batch in _workload(seed=20260331):
            assert pg.write_readings(batch) == lite.write_readings(batch)
        end = T0 + timedelta(days=2)
        assert pg.count_readings() == lite.count_readings() > 2000
        assert list(pg.iter_readings(None, T0, end)) == list(lite.iter_readings(None, T0, end))
        assert pg.latest(phase=None) == lite.latest(phase=None)
        assert pg.gaps("m", T0, end) == lite.gaps("m", T0, end) != []
        for phase in range(4):
            for width_s in (900, 3600):
                _assert_same_buckets(
                    pg.rollups("m", phase, T0, end, width_s), lite.rollups("m", phase, T0, end, width_s)
                )
            _assert_same_buckets(
                pg.downsample_raw("m", phase, T0, end, 300), lite.downsample_raw("m", phase, T0, end, 300)
            )
        oslo = ZoneInfo("Europe/Oslo")
        days = [datetime(2026, 3, d, tzinfo=oslo).astimezone(UTC) for d in (31,)] + [
            datetime(2026, 4, d, tzinfo=oslo).astimezone(UTC) for d in (1, 2)
        ]
        _assert_same_buckets(pg.aggregate("m", 0, days), lite.aggregate("m", 0, days))
    finally:
        lite.close()


def test_bad_schema_name_is_refused() -> None:
    with pytest.raises(StoreError, match="schema name"):
        PostgresStore("postgresql://postgres@127.0.0.1:1/test?schema=x;drop")
