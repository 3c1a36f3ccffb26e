"""PostgreSQL schema: named migrations recorded in ``schema_migrations``, and monthly partitions.

The migrations mirror SQLite's, name for name (``0001_core`` to ``0007_extra_rollups``). An
older database is migrated in place, never recreated; the migrations that add rollups and gaps
fill them, and the latest-value table, from the rows already there.

Values are stored in their canonical units as ``double precision``, times as epoch milliseconds
(``bigint``). ``readings`` is range-partitioned on ``ts`` by UTC calendar month; partitions are
named ``readings_YYYYMM`` and created on demand before a write needs them.

From ``0009_compact_pg_readings`` on, raw readings and rollups are whole numbers keyed by series
in ``samples`` (partitions ``samples_YYYYMM``) and the rollup tables, and ``readings`` is a view;
see :mod:`meterhub.store.postgres_compact`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from meterhub.errors import MigrationError
from meterhub.model import READING_FIELDS
from meterhub.store.accounts import ACCOUNTS_DDL
from meterhub.store.catalog import CATALOG_DDL
from meterhub.store.postgres_leases import migrate_work_leases
from meterhub.store.sqlite_schema import EXTRA_BUCKET_MS
from meterhub.timeutil import from_ms, to_ms

__all__ = [
    "MIGRATIONS",
    "ROLLUP_COLUMNS",
    "ROLLUP_TYPES",
    "Conn",
    "PartitionCache",
    "advisory_key",
    "applied_migrations",
    "apply_migrations",
    "ensure_partitions",
    "month_bounds_ms",
    "partition_name",
]

Conn = psycopg.Connection[TupleRow]
"""A connection whose rows are plain tuples."""

_VALUE_COLUMNS = ", ".join(f"{name} double precision" for name in READING_FIELDS)
_REGISTER_STATE_COLUMNS = (
    "imp_ts bigint, imp_kwh double precision, imp_power_w double precision, "
    "exp_ts bigint, exp_kwh double precision, exp_power_w double precision"
)


def advisory_key(*parts: str) -> int:
    """Return a signed 32-bit advisory-lock key derived from ``parts``."""
    value = zlib.crc32(":".join(parts).encode())
    return value - (1 << 32) if value >= 1 << 31 else value


def _run(conn: Conn, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _m0001_core(conn: Conn) -> None:
    _run(conn, f"""
        CREATE TABLE meters (
            pk integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id text NOT NULL UNIQUE,
            vendor text NOT NULL,
            phases integer NOT NULL,
            tz text NOT NULL,
            interval_s integer NOT NULL,
            name text NOT NULL DEFAULT '',
            options jsonb NOT NULL DEFAULT '{{}}',
            created_ms bigint NOT NULL
        );
        CREATE TABLE readings (
            meter integer NOT NULL, phase smallint NOT NULL, ts bigint NOT NULL,
            {_VALUE_COLUMNS},
            PRIMARY KEY (meter, ts, phase)
        ) PARTITION BY RANGE (ts);
        CREATE TABLE latest (
            meter integer NOT NULL, phase smallint NOT NULL, ts bigint NOT NULL,
            {_VALUE_COLUMNS},
            {_REGISTER_STATE_COLUMNS},
            PRIMARY KEY (meter, phase)
        );
    """)


ROLLUP_COLUMNS: tuple[str, ...] = (
    "meter", "phase", "bucket", "n",
    "power_n", "power_sum_w", "power_min_w", "power_max_w",
    "voltage_n", "voltage_sum_v", "voltage_min_v", "voltage_max_v",
    "current_n", "current_sum_a",
    "first_ts", "first_import_kwh", "first_export_kwh",
    "last_ts", "last_import_kwh", "last_export_kwh",
    "energy_import_kwh", "energy_export_kwh", "covered_ms",
)
"""Rollup-table columns; every bucket time is epoch ms, every value in canonical units."""

ROLLUP_TYPES: tuple[str, ...] = (
    "integer", "smallint", "bigint", "integer",
    "integer", "double precision", "double precision", "double precision",
    "integer", "double precision", "double precision", "double precision",
    "integer", "double precision",
    "bigint", "double precision", "double precision",
    "bigint", "double precision", "double precision",
    "double precision", "double precision", "bigint",
)
_ROLLUP_NOT_NULL = {"meter", "phase", "bucket", "n", "power_n", "power_sum_w", "voltage_n",
                    "voltage_sum_v", "current_n", "current_sum_a", "energy_import_kwh",
                    "energy_export_kwh", "covered_ms"}


def _rollup_table_sql(name: str) -> str:
    columns = ", ".join(
        f"{column} {kind}{' NOT NULL' if column in _ROLLUP_NOT_NULL else ''}"
        for column, kind in zip(ROLLUP_COLUMNS, ROLLUP_TYPES, strict=True)
    )
    return f"CREATE TABLE {name} ({columns}, PRIMARY KEY (meter, phase, bucket));"


def _m0002_rollups_and_gaps(conn: Conn) -> None:
    from meterhub.store.postgres_rollups import rebuild_all

    _run(conn, _rollup_table_sql("rollup_15m") + _rollup_table_sql("rollup_1h") + """
        CREATE TABLE gaps (
            meter integer NOT NULL, start_ms bigint NOT NULL, end_ms bigint NOT NULL,
            PRIMARY KEY (meter, start_ms)
        );
    """)
    rebuild_all(conn)


def _m0003_kv_intervals_extras(conn: Conn) -> None:
    _run(conn, """
        CREATE TABLE tokens (
            scope text NOT NULL, key text NOT NULL, value text NOT NULL, expires_ms bigint,
            PRIMARY KEY (scope, key)
        );
        CREATE TABLE quota_ledger (key text NOT NULL, ts_ms bigint NOT NULL);
        CREATE INDEX quota_ledger_key_ts ON quota_ledger (key, ts_ms);
        CREATE TABLE intervals (
            meter integer NOT NULL, source text NOT NULL, start_ms bigint NOT NULL,
            end_ms bigint NOT NULL, import_kwh double precision, export_kwh double precision,
            PRIMARY KEY (meter, source, start_ms)
        );
        CREATE INDEX intervals_meter_start ON intervals (meter, start_ms);
        CREATE TABLE extras (
            meter integer NOT NULL, name text NOT NULL, ts bigint NOT NULL,
            value double precision NOT NULL,
            PRIMARY KEY (meter, name, ts)
        );
    """)


def _m0004_places_prices_health(conn: Conn) -> None:
    for statement in CATALOG_DDL:
        conn.execute(statement)


def _m0005_users_keys_shares(conn: Conn) -> None:
    for statement in ACCOUNTS_DDL:
        conn.execute(statement)


def _m0006_coarse_rollups(conn: Conn) -> None:
    # As SQLite's: 6-hour UTC buckets and the meter's local days, filled from the 15-minute rows.
    from meterhub.store.postgres_rollups import COARSE_TABLES, rebuild_coarse

    _run(conn, "".join(_rollup_table_sql(table) for table in COARSE_TABLES))
    for pk, tz in conn.execute("SELECT pk, tz FROM meters ORDER BY pk").fetchall():
        rebuild_coarse(conn, int(pk), str(tz))


def _m0007_extra_rollups(conn: Conn) -> None:
    # As SQLite's: 15-minute buckets of extras, kept by triggers (a duplicate inserts no row, so
    # it fires nothing), and dropped with their meter.
    bucket = f"ts - mod(mod(ts, {EXTRA_BUCKET_MS}) + {EXTRA_BUCKET_MS}, {EXTRA_BUCKET_MS})"
    conn.execute(
        "CREATE TABLE extras_15m (meter integer NOT NULL, name text NOT NULL, bucket bigint NOT NULL, "
        "n integer NOT NULL, total double precision NOT NULL, low double precision NOT NULL, "
        "high double precision NOT NULL, PRIMARY KEY (meter, name, bucket))"
    )
    conn.execute(
        f"INSERT INTO extras_15m SELECT meter, name, {bucket}, count(*), sum(value), min(value), "
        f"max(value) FROM extras GROUP BY meter, name, {bucket}"
    )
    conn.execute(
        "CREATE FUNCTION extras_15m_add() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"INSERT INTO extras_15m VALUES (NEW.meter, NEW.name, {bucket.replace('ts', 'NEW.ts')}, 1, "
        "NEW.value, NEW.value, NEW.value) ON CONFLICT (meter, name, bucket) DO UPDATE SET "
        "n = extras_15m.n + 1, total = extras_15m.total + EXCLUDED.total, "
        "low = LEAST(extras_15m.low, EXCLUDED.low), high = GREATEST(extras_15m.high, EXCLUDED.high); "
        "RETURN NULL; END $$"
    )
    conn.execute(
        "CREATE TRIGGER extras_15m_add AFTER INSERT ON extras FOR EACH ROW EXECUTE FUNCTION extras_15m_add()"
    )
    conn.execute(
        "CREATE FUNCTION extras_15m_forget() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "DELETE FROM extras_15m WHERE meter = OLD.pk; RETURN NULL; END $$"
    )
    conn.execute(
        "CREATE TRIGGER extras_15m_forget AFTER DELETE ON meters FOR EACH ROW "
        "EXECUTE FUNCTION extras_15m_forget()"
    )


def _m0009_compact_pg_readings(conn: Conn) -> None:
    # Raw readings to series-keyed whole numbers in ``samples`` (a ``readings`` view shows them
    # as before), rollups likewise; see meterhub.store.postgres_compact.
    from meterhub.store.postgres_compact import migrate_0009_compact

    migrate_0009_compact(conn)


def _m0010_compact_rollups(conn: Conn) -> None:
    """Nothing to do on PostgreSQL: the name keeps both backends' migration lists alike.

    On SQLite this migration narrows the rollup tables (no first/last reading columns, counts
    equal to ``n`` stored as NULL) and turns the hourly table into a view over the 15-minute
    one; PostgreSQL's rollup tables keep their own layout.
    """
    del conn


MIGRATIONS: tuple[tuple[str, Callable[[Conn], None]], ...] = (
    ("0001_core", _m0001_core),
    ("0002_rollups_and_gaps", _m0002_rollups_and_gaps),
    ("0003_kv_intervals_extras", _m0003_kv_intervals_extras),
    ("0004_places_prices_health", _m0004_places_prices_health),
    ("0005_users_keys_shares", _m0005_users_keys_shares),
    ("0006_coarse_rollups", _m0006_coarse_rollups),
    ("0007_extra_rollups", _m0007_extra_rollups),
    ("0008_work_leases", migrate_work_leases),
    ("0009_compact_pg_readings", _m0009_compact_pg_readings),
    ("0010_compact_rollups", _m0010_compact_rollups),
)


def applied_migrations(conn: Conn) -> list[str]:
    """Return the applied migration names, oldest first."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    rows = conn.execute('SELECT name FROM schema_migrations ORDER BY name COLLATE "C"').fetchall()
    return [str(row[0]) for row in rows]


def apply_migrations(conn: Conn, lock_key: int, upto: str | None = None) -> list[str]:
    """Apply pending migrations (up to and including ``upto``), each in its own transaction.

    A transaction-level advisory lock makes concurrent processes apply each migration once.
    """
    known = [name for name, _ in MIGRATIONS]
    if upto is not None and upto not in known:
        raise MigrationError(f"unknown migration {upto!r}; known: {', '.join(known)}")
    applied: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (lock_key,))
        done = set(applied_migrations(conn))
    unknown = sorted(done - set(known))
    if unknown:
        raise MigrationError(
            f"the database has migrations this meterhub does not know ({', '.join(unknown)}); "
            "upgrade meterhub"
        )
    for name, migration in MIGRATIONS:
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (lock_key,))
                if name not in set(applied_migrations(conn)):
                    migration(conn)
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
                    applied.append(name)
        except psycopg.Error as exc:
            raise MigrationError(f"migration {name} failed: {_first_line(exc)}") from exc
        if name == upto:
            break
    return applied


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def month_bounds_ms(ts_ms: int) -> tuple[int, int]:
    """Return the epoch-ms bounds [start, end) of the UTC calendar month holding ``ts_ms``."""
    start = from_ms(ts_ms).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if start.month == 12:
        end = start.replace(year=start.year + 1, month=1)
    else:
        end = start.replace(month=start.month + 1)
    return to_ms(start), to_ms(end)


def partition_name(month_start_ms: int) -> str:
    """Return the name of the readings partition of the month starting at ``month_start_ms``."""
    start = from_ms(month_start_ms)
    return f"readings_{start.year:04d}{start.month:02d}"


class PartitionCache:
    """The months this process knows to have a readings partition."""

    def __init__(self) -> None:
        self.months: set[int] = set()

    def missing(self, ts_values: Iterable[int]) -> list[tuple[int, int]]:
        """Return the month bounds of ``ts_values`` not known to have a partition yet."""
        bounds: dict[int, tuple[int, int]] = {}
        start = end = 0
        for ts_ms in ts_values:
            if start <= ts_ms < end:  # rows come in runs within one month: skip the calendar
                continue
            start, end = month_bounds_ms(ts_ms)
            if start not in self.months:
                bounds[start] = (start, end)
        return [bounds[key] for key in sorted(bounds)]


def ensure_partitions(conn: Conn, ts_values: Iterable[int], cache: PartitionCache | None = None,
                      lock_key: int = 0) -> None:
    """Create the monthly readings partitions ``ts_values`` fall in; run outside a transaction."""
    cache = cache if cache is not None else PartitionCache()
    missing = cache.missing(ts_values)
    if not missing:
        return
    # One short transaction of its own: CREATE ... PARTITION OF locks the parent table.
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, 1)", (lock_key,))
        for start, end in missing:
            conn.execute(sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF readings FOR VALUES FROM ({}) TO ({})"
            ).format(sql.Identifier(partition_name(start)), sql.Literal(start), sql.Literal(end)))
    cache.months.update(start for start, _ in missing)
