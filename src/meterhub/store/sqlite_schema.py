"""SQLite schema migrations: named, ordered, recorded in ``schema_migrations``.

An older database is migrated in place, never recreated; a migration that adds derived tables
also fills them from the raw rows already there.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

from meterhub.errors import MigrationError
from meterhub.store.accounts import ACCOUNTS_DDL
from meterhub.store.catalog import CATALOG_DDL
from meterhub.store.coarse import COARSE_COLUMN_ORDER, compact_rollups, refresh_meter_days
from meterhub.store.sqlite_codec import ROLLUP_COLUMNS
from meterhub.store.sqlite_leases import migrate_work_leases

__all__ = ["EXTRA_BUCKET_MS", "MIGRATIONS", "applied_migrations", "apply_migrations"]

_READING_VALUE_COLUMNS = (
    "v INTEGER, i INTEGER, p INTEGER, q INTEGER, pf INTEGER, f INTEGER, "
    "ei INTEGER, ee INTEGER, qi INTEGER, qe INTEGER"
)


def _script(conn: sqlite3.Connection, sql: str) -> None:
    # executescript() would commit the migration's open transaction; run statements one by one.
    for statement in sql.split(";"):
        if statement.strip():
            conn.execute(statement)


def _m0001_core(conn: sqlite3.Connection) -> None:
    _script(
        conn,
        f"""
        CREATE TABLE meters (
            pk INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            vendor TEXT NOT NULL,
            phases INTEGER NOT NULL,
            tz TEXT NOT NULL,
            interval_s INTEGER NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            options TEXT NOT NULL DEFAULT '{{}}',
            created_ms INTEGER NOT NULL
        );
        CREATE TABLE readings (
            meter INTEGER NOT NULL, ts INTEGER NOT NULL, phase INTEGER NOT NULL,
            {_READING_VALUE_COLUMNS},
            PRIMARY KEY (meter, ts, phase)
        ) WITHOUT ROWID;
        CREATE TABLE latest (
            meter INTEGER NOT NULL, phase INTEGER NOT NULL, ts INTEGER NOT NULL,
            {_READING_VALUE_COLUMNS},
            imp_ts INTEGER, imp_kwh REAL, imp_power_w REAL,
            exp_ts INTEGER, exp_kwh REAL, exp_power_w REAL,
            PRIMARY KEY (meter, phase)
        ) WITHOUT ROWID;
    """,
    )


def _rollup_table_sql(name: str, order: tuple[str, ...] = ROLLUP_COLUMNS) -> str:
    value_columns = ", ".join(f"{c} INTEGER" for c in order[3:])
    return (
        f"CREATE TABLE {name} (meter INTEGER NOT NULL, phase INTEGER NOT NULL, "
        f"bucket INTEGER NOT NULL, {value_columns}, PRIMARY KEY (meter, phase, bucket)) "
        "WITHOUT ROWID;"
    )


def _m0002_rollups_and_gaps(conn: sqlite3.Connection) -> None:
    from meterhub.store.sqlite_writer import rebuild_all

    _script(
        conn,
        _rollup_table_sql("rollup_15m")
        + _rollup_table_sql("rollup_1h")
        + """
        CREATE TABLE gaps (
            meter INTEGER NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL,
            PRIMARY KEY (meter, start_ms)
        ) WITHOUT ROWID;
        """,
    )
    rebuild_all(conn, coarse=False)


def _m0003_kv_intervals_extras(conn: sqlite3.Connection) -> None:
    _script(
        conn,
        """
        CREATE TABLE tokens (
            scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires_ms INTEGER,
            PRIMARY KEY (scope, key)
        ) WITHOUT ROWID;
        CREATE TABLE quota_ledger (key TEXT NOT NULL, ts_ms INTEGER NOT NULL);
        CREATE INDEX quota_ledger_key_ts ON quota_ledger (key, ts_ms);
        CREATE TABLE intervals (
            meter INTEGER NOT NULL, source TEXT NOT NULL, start_ms INTEGER NOT NULL,
            end_ms INTEGER NOT NULL, import_kwh REAL, export_kwh REAL,
            PRIMARY KEY (meter, source, start_ms)
        ) WITHOUT ROWID;
        CREATE INDEX intervals_meter_start ON intervals (meter, start_ms);
        CREATE TABLE extras (
            meter INTEGER NOT NULL, name TEXT NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
            PRIMARY KEY (meter, name, ts)
        ) WITHOUT ROWID;
    """,
    )


def _m0004_places_prices_health(conn: sqlite3.Connection) -> None:
    for statement in CATALOG_DDL:
        conn.execute(statement)


def _m0005_users_keys_shares(conn: sqlite3.Connection) -> None:
    for statement in ACCOUNTS_DDL:
        conn.execute(statement)


def _m0006_coarse_rollups(conn: sqlite3.Connection) -> None:
    _script(
        conn,
        _rollup_table_sql("rollup_6h", COARSE_COLUMN_ORDER)
        + _rollup_table_sql("rollup_day", COARSE_COLUMN_ORDER),
    )
    for pk, tz in conn.execute("SELECT pk, tz FROM meters").fetchall():
        refresh_meter_days(conn, pk, tz)


EXTRA_BUCKET_MS = 900_000
"""Extras are rolled up in UTC-aligned 15-minute buckets, so a year of a series is one short scan."""


def _m0007_extra_rollups(conn: sqlite3.Connection) -> None:
    # Kept by triggers: an extra newly inserted (not one ignored as a duplicate) joins its bucket,
    # and a removed meter's buckets go with it.
    bucket = f"ts - ((ts % {EXTRA_BUCKET_MS}) + {EXTRA_BUCKET_MS}) % {EXTRA_BUCKET_MS}"
    conn.execute(
        "CREATE TABLE extras_15m (meter INTEGER NOT NULL, name TEXT NOT NULL, bucket INTEGER NOT NULL, "
        "n INTEGER NOT NULL, total REAL NOT NULL, low REAL NOT NULL, high REAL NOT NULL, "
        "PRIMARY KEY (meter, name, bucket)) WITHOUT ROWID"
    )
    conn.execute(
        f"INSERT INTO extras_15m SELECT meter, name, {bucket}, count(*), sum(value), min(value), "
        f"max(value) FROM extras GROUP BY meter, name, {bucket}"
    )
    conn.execute(
        "CREATE TRIGGER extras_15m_add AFTER INSERT ON extras BEGIN "
        f"INSERT INTO extras_15m VALUES (NEW.meter, NEW.name, {bucket.replace('ts', 'NEW.ts')}, 1, "
        "NEW.value, NEW.value, NEW.value) ON CONFLICT (meter, name, bucket) DO UPDATE SET "
        "n = n + 1, total = total + excluded.total, low = min(low, excluded.low), "
        "high = max(high, excluded.high); END"
    )
    conn.execute(
        "CREATE TRIGGER extras_15m_forget AFTER DELETE ON meters BEGIN "
        "DELETE FROM extras_15m WHERE meter = OLD.pk; END"
    )


def _m0009_compact_pg_readings(conn: sqlite3.Connection) -> None:
    """Nothing to do on SQLite: the name keeps both backends' migration lists alike.

    On PostgreSQL this migration moves raw readings and rollups to whole numbers keyed by series;
    SQLite has stored them as whole numbers since ``0001_core``.
    """
    del conn


MIGRATIONS: tuple[tuple[str, Callable[[sqlite3.Connection], None]], ...] = (
    ("0001_core", _m0001_core),
    ("0002_rollups_and_gaps", _m0002_rollups_and_gaps),
    ("0003_kv_intervals_extras", _m0003_kv_intervals_extras),
    ("0004_places_prices_health", _m0004_places_prices_health),
    ("0005_users_keys_shares", _m0005_users_keys_shares),
    ("0006_coarse_rollups", _m0006_coarse_rollups),
    ("0007_extra_rollups", _m0007_extra_rollups),
    ("0008_work_leases", migrate_work_leases),
    ("0009_compact_pg_readings", _m0009_compact_pg_readings),
    ("0010_compact_rollups", compact_rollups),
)


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    """Return the applied migration names, oldest first."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    return [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]


def apply_migrations(conn: sqlite3.Connection, upto: str | None = None) -> list[str]:
    """Apply pending migrations (up to and including ``upto``), each in its own transaction."""
    done = set(applied_migrations(conn))
    if upto is not None and upto not in {name for name, _ in MIGRATIONS}:
        raise MigrationError(f"unknown migration {upto!r}")
    if upto is not None and upto in done:
        return []
    known = {name for name, _ in MIGRATIONS}
    unknown = sorted(done - known)
    if unknown:
        raise MigrationError(
            f"the database has migrations this meterhub does not know ({', '.join(unknown)}); "
            "upgrade meterhub"
        )
    applied: list[str] = []
    for name, migration in MIGRATIONS:
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            migration(conn)
            conn.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                (name, datetime.now(UTC).isoformat()),
            )
            conn.execute("COMMIT")
        except Exception as exc:
            conn.execute("ROLLBACK")
            raise MigrationError(f"migration {name} failed: {exc}") from exc
        applied.append(name)
        if name == upto:
            break
    refresh_statistics(conn)
    return applied


ANALYSIS_LIMIT_ROWS = 1000
"""Rows ANALYZE samples per index: enough for the planner, a few milliseconds on any file size
(3 million readings: 6 ms, against 0.75 s unlimited)."""


def refresh_statistics(conn: sqlite3.Connection) -> None:
    """Keep the query planner's statistics right without anyone asking.

    Without statistics SQLite can plan a join of the latest values against the meters as a full
    scan (seconds instead of a fraction of a millisecond), and statistics taken of an empty file
    mislead it once the file is full. So every opening (after its migrations) and every big
    import analyses the tables again, sampling at most :data:`ANALYSIS_LIMIT_ROWS` rows per index.
    """
    conn.execute(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT_ROWS}")
    conn.execute("ANALYZE")
