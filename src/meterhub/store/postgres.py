"""The PostgreSQL backend: psycopg 3, COPY for bulk writes, monthly partitions of raw rows.

``PostgresStore(url)`` takes a libpq URL (``postgresql://user:password@host:5432/dbname``). To
keep meterhub's tables in a schema of their own (tests use one fresh schema each), pass
``schema="name"`` or add ``?schema=name`` to the URL: the schema is created if missing and put
first on ``search_path``. libpq's own ``?options=-csearch_path%3Dname`` works too, but then the
schema must exist already.

Writes go through one connection guarded by a lock (the writer), reads through a pool. Every
write transaction takes transaction-level advisory locks on the meters it touches, and
``quota_acquire`` one on its key, so several processes can share the database safely.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from meterhub.errors import ConflictError, StoreError, UnknownMeterError
from meterhub.ids import check_id
from meterhub.model import Extra, IntervalEnergy, Meter, Reading, utc_now
from meterhub.redact import redact_text, redact_url
from meterhub.store.accounts import AccountsMixin
from meterhub.store.base import WriteResult
from meterhub.store.catalog import CatalogMixin
from meterhub.store.postgres_compact import (
    QUARTER_TABLE,
    delete_series_sql,
    ensure_sample_partitions,
    series_range,
)
from meterhub.store.postgres_reads import PostgresReads, one_line
from meterhub.store.postgres_rollups import COARSE_TABLES, rebuild_coarse
from meterhub.store.postgres_schema import (
    Conn,
    PartitionCache,
    advisory_key,
    applied_migrations,
    apply_migrations,
)
from meterhub.store.postgres_text import TEXT_CHECKED_ADAPTERS
from meterhub.store.postgres_writer import lock_meters, write_readings_tx
from meterhub.store.text import reject_nul_in_meter
from meterhub.timeutil import to_ms

__all__ = ["PostgresStore", "parse_url"]

T = TypeVar("T")
_SCHEMA_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_CONNECT_TIMEOUT_S = 10


def parse_url(url: str, schema: str | None = None) -> tuple[str, str | None, str]:
    """Return (libpq conninfo, schema, the URL without its password) of a PostgreSQL URL."""
    shown = redact_url(url)
    # URL parse errors quote the URL, password and all: they are not chained (``from None``).
    try:
        split = urlsplit(url)
        password = split.password
    except ValueError as exc:
        raise StoreError(f"bad PostgreSQL URL {shown}: {redact_text(one_line(exc))}") from None
    query = parse_qsl(split.query, keep_blank_values=True)
    chosen = schema or next((v for k, v in reversed(query) if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"], quote_via=quote)
    base = urlunsplit(split._replace(query=rest))
    try:
        params = conninfo_to_dict(base)
    except psycopg.Error as exc:
        raise StoreError(f"bad PostgreSQL URL {shown}: {redact_text(one_line(exc), [password])}") from None
    if chosen is not None:
        if not _SCHEMA_RE.match(chosen):
            raise StoreError(f"bad PostgreSQL schema name {chosen!r}; use letters, digits and _")
        params["options"] = f"{params.get('options') or ''} -c search_path={chosen}".strip()
    params.setdefault("connect_timeout", _CONNECT_TIMEOUT_S)
    return make_conninfo("", **params), chosen, redact_url(base)


class PostgresStore(AccountsMixin, CatalogMixin, PostgresReads):
    """meterhub's server store: PostgreSQL through psycopg 3.

    ``url`` is kept without its password, so it can be shown; ``schema`` is the one chosen by
    keyword or URL, or None for the server's default ``search_path``.
    """

    def __init__(
        self, url: str, *, migrate: bool = True, schema: str | None = None, pool_size: int = 8
    ) -> None:
        self._conninfo, self.schema, self.url = parse_url(url, schema)
        password = conninfo_to_dict(self._conninfo).get("password")
        self._password = None if password is None else str(password)
        self._write_lock = threading.Lock()
        self._writes = 0
        self._closed = False
        self._partitions = PartitionCache()
        self._conn = self._connect()
        try:
            current = self._prepare_schema(self._conn)
            self._lock_key = advisory_key("meterhub", current)
            self._meter_locks = advisory_key("meterhub", current, "meters")
            self._quota_locks = advisory_key("meterhub", current, "quota")
            pool: ConnectionPool[Conn] = ConnectionPool(
                self._conninfo, min_size=1, max_size=pool_size,
                kwargs={"autocommit": True, "context": TEXT_CHECKED_ADAPTERS},
                open=True, name="meterhub-reads", timeout=30,
            )
        except BaseException:
            self._conn.close()
            raise
        super().__init__(pool)
        if migrate:
            try:
                self.migrate()
            except BaseException:
                self.close()
                raise

    def _connect(self) -> Conn:
        try:
            return psycopg.connect(self._conninfo, autocommit=True, context=TEXT_CHECKED_ADAPTERS)
        except psycopg.Error as exc:
            message = redact_text(one_line(exc), [self._password])
            raise StoreError(f"cannot connect to PostgreSQL at {self.url}: {message}") from exc

    def _prepare_schema(self, conn: Conn) -> str:
        try:
            if self.schema is not None:
                with conn.transaction():
                    # IF NOT EXISTS alone races when several processes open a new schema at once.
                    conn.execute("SELECT pg_advisory_xact_lock(%s, 2)",
                                 (advisory_key("meterhub", self.schema),))
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            row = conn.execute("SELECT current_schema()").fetchone()
        except psycopg.Error as exc:
            raise StoreError(f"cannot use schema {self.schema!r}: {redact_text(one_line(exc))}") from exc
        if row is None or row[0] is None:
            raise StoreError("no schema on search_path exists; create it or pass schema=")
        return str(row[0])

    @contextmanager
    def _writing(self) -> Iterator[Conn]:
        with self._write_lock:
            if self._closed:
                raise StoreError("the database is closed")
            if self._conn.closed or self._conn.broken:
                self._conn = self._connect()
            try:
                yield self._conn
            except psycopg.Error as exc:
                raise StoreError(f"database write failed: {redact_text(one_line(exc))}") from exc
            finally:
                self._writes += 1

    def _transaction(self, fn: Callable[[Conn], T]) -> T:
        with self._writing() as conn, conn.transaction():
            return fn(conn)

    _PLACEHOLDER = "%s"

    def _catalog_write(self, fn: Callable[[Conn], T]) -> T:
        return self._transaction(fn)

    def _catalog_read(self, fn: Callable[[Conn], T]) -> T:
        with self._read() as conn:
            return fn(conn)

    # --- schema -------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied."""
        with self._writing() as conn:
            return apply_migrations(conn, self._lock_key)

    def migrations_applied(self) -> list[str]:
        """Return the names of applied migrations, oldest first (read-only)."""
        return self._transaction(applied_migrations)

    def migrate_to(self, name: str) -> list[str]:
        """Apply migrations up to and including ``name`` (used to build older databases)."""
        with self._writing() as conn:
            return apply_migrations(conn, self._lock_key, upto=name)

    def refresh_statistics(self) -> None:
        """Analyse the reading tables now rather than when autovacuum gets to them."""
        with self._writing() as conn:
            conn.execute("ANALYZE meters, latest, samples")

    def close(self) -> None:
        """Finish pending writes and release every connection."""
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            self._conn.close()
        self._pool.close()

    def change_count(self) -> int:
        """Return this process's writes plus the server's WAL insert position in bytes.

        The first changes as soon as a write of this store returns; the second whenever anyone
        writes to the cluster (any database, so it may change without a change here).
        """
        with self._read() as conn:
            row = conn.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn").fetchone()
        return self._writes + (0 if row is None else int(row[0]))

    # --- meters -------------------------------------------------------------------------
    def add_meter(self, meter: Meter) -> None:
        """Add a meter; raise InputError for an id outside the id rule, ConflictError if it exists."""
        check_id(meter.id)
        reject_nul_in_meter(meter)

        def add(conn: Conn) -> None:
            cursor = conn.execute(
                "INSERT INTO meters (id, vendor, phases, tz, interval_s, name, options, "
                "created_ms) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                (*_meter_values(meter), to_ms(utc_now())),
            )
            if cursor.rowcount == 0:
                raise ConflictError(f"meter {meter.id!r} exists already")

        self._transaction(add)

    def update_meter(self, meter: Meter) -> None:
        """Replace a meter's settings; raise UnknownMeterError if it does not exist."""
        reject_nul_in_meter(meter)

        def update(conn: Conn) -> None:
            lock_meters(conn, self._meter_locks, [meter.id])
            before = conn.execute("SELECT pk, tz FROM meters WHERE id = %s", (meter.id,)).fetchone()
            if before is None:
                raise UnknownMeterError(meter.id)
            conn.execute(
                "UPDATE meters SET vendor = %s, phases = %s, tz = %s, interval_s = %s, name = %s, "
                "options = %s WHERE id = %s", (*_meter_values(meter)[1:], meter.id)
            )
            if before[1] != meter.tz:
                # Local days follow the meter's zone.
                rebuild_coarse(conn, int(before[0]), meter.tz, ("rollup_day",))

        self._transaction(update)

    def remove_meter(self, meter_id: str) -> int:
        """Remove a meter and all its data; return the number of raw rows removed."""

        def remove(conn: Conn) -> int:
            lock_meters(conn, self._meter_locks, [meter_id])
            row = conn.execute("SELECT pk FROM meters WHERE id = %s", (meter_id,)).fetchone()
            if row is None:
                raise UnknownMeterError(meter_id)
            series = series_range(int(row[0]))
            removed = conn.execute(delete_series_sql("samples"), series).rowcount
            for table in (QUARTER_TABLE, *COARSE_TABLES):
                conn.execute(delete_series_sql(table), series)
            for table in ("latest", "gaps", "intervals", "extras"):
                conn.execute(f"DELETE FROM {table} WHERE meter = %s", row)
            conn.execute("DELETE FROM meters WHERE pk = %s", row)
            self._forget_meter(conn, meter_id)
            self._forget_shares(conn, "meter", meter_id)
            return removed

        return self._transaction(remove)

    # --- writes -------------------------------------------------------------------------
    def write_readings(self, readings: Sequence[Reading]) -> WriteResult:
        """Store validated readings of known meters in one transaction, idempotently."""
        if not readings:
            return WriteResult(0, 0)
        ts_values = [to_ms(reading.ts) for reading in readings]
        try:
            return self._write_batch(readings, ts_values, all_late=False)
        except StoreError as exc:
            if not isinstance(exc.__cause__, pg_errors.UniqueViolation | pg_errors.CheckViolation):
                raise
        # Raw rows lie beyond what `latest` records, or a partition was dropped: rebuild around
        # every row instead of trusting the fast path.
        self._partitions.months.clear()
        return self._write_batch(readings, ts_values, all_late=True)

    def _write_batch(
        self, readings: Sequence[Reading], ts_values: list[int], all_late: bool
    ) -> WriteResult:
        with self._writing() as conn:
            ensure_sample_partitions(conn, ts_values, self._partitions, self._lock_key)
            with conn.transaction():
                return write_readings_tx(conn, self._meter_locks, readings, ts_values, all_late)

    def write_intervals(self, records: Sequence[IntervalEnergy]) -> WriteResult:
        """Store interval-energy records keyed (meter, source, start), idempotently.

        A record whose values differ from the stored one replaces it (a vendor's correction of
        a day delivered late) and counts as stored; the same values again count as duplicates.
        """

        def write(conn: Conn) -> WriteResult:
            pks = _pks(conn, [r.meter for r in records])
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO intervals AS i (meter, source, start_ms, end_ms, import_kwh, "
                    "export_kwh) VALUES (%s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (meter, source, start_ms) DO UPDATE SET end_ms = excluded.end_ms, "
                    "import_kwh = excluded.import_kwh, export_kwh = excluded.export_kwh "
                    "WHERE (i.end_ms, i.import_kwh, i.export_kwh) IS DISTINCT FROM "
                    "(excluded.end_ms, excluded.import_kwh, excluded.export_kwh)",
                    [(pks[r.meter], r.source, to_ms(r.start), to_ms(r.end), r.import_kwh,
                      r.export_kwh) for r in records],
                )
                stored = max(cursor.rowcount, 0)
            return WriteResult(stored, len(records) - stored)

        return self._transaction(write) if records else WriteResult(0, 0)

    def write_extras(self, extras: Sequence[Extra]) -> WriteResult:
        """Store device extras keyed (meter, name, ts), idempotently."""

        def write(conn: Conn) -> WriteResult:
            pks = _pks(conn, [e.meter for e in extras])
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO extras (meter, name, ts, value) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    [(pks[e.meter], e.name, to_ms(e.ts), float(e.value)) for e in extras],
                )
                stored = max(cursor.rowcount, 0)
            return WriteResult(stored, len(extras) - stored)

        return self._transaction(write) if extras else WriteResult(0, 0)

    # --- key-value ----------------------------------------------------------------------
    def token_set(self, scope: str, key: str, value: str, expires: datetime | None) -> None:
        """Store or replace a token."""
        self._transaction(lambda conn: conn.execute(
            "INSERT INTO tokens (scope, key, value, expires_ms) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (scope, key) DO UPDATE SET value = EXCLUDED.value, "
            "expires_ms = EXCLUDED.expires_ms",
            (scope, key, value, None if expires is None else to_ms(expires)),
        ))

    def token_delete(self, scope: str, key: str) -> None:
        """Forget a token."""
        self._transaction(lambda conn: conn.execute(
            "DELETE FROM tokens WHERE scope = %s AND key = %s", (scope, key)
        ))

    def quota_acquire(self, key: str, limit: int, window_s: int, now: datetime) -> bool:
        """Record one call under ``key`` if fewer than ``limit`` fall in the window; else False."""
        now_ms = to_ms(now)

        def acquire(conn: Conn) -> bool:
            # Serialises every process acquiring this key until the transaction ends.
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", (self._quota_locks, advisory_key(key))
            )
            # Entries older than a day serve no documented window; drop them as we go.
            conn.execute("DELETE FROM quota_ledger WHERE key = %s AND ts_ms <= %s",
                         (key, now_ms - max(window_s, 86_400) * 1000))
            row = conn.execute(
                "SELECT count(*) FROM quota_ledger WHERE key = %s AND ts_ms > %s",
                (key, now_ms - window_s * 1000),
            ).fetchone()
            if row is not None and int(row[0]) >= limit:
                return False
            conn.execute("INSERT INTO quota_ledger (key, ts_ms) VALUES (%s, %s)", (key, now_ms))
            return True

        return self._transaction(acquire)


def _pks(conn: Conn, meter_ids: list[str]) -> dict[str, int]:
    wanted = list(dict.fromkeys(meter_ids))
    rows = conn.execute("SELECT id, pk FROM meters WHERE id = ANY(%s)", (wanted,)).fetchall()
    pks = {str(row[0]): int(row[1]) for row in rows}
    for meter_id in wanted:
        if meter_id not in pks:
            raise UnknownMeterError(meter_id)
    return pks


def _meter_values(meter: Meter) -> tuple[str | int | Jsonb, ...]:
    options = Jsonb(dict(meter.options))
    return (meter.id, meter.vendor, meter.phases, meter.tz, meter.interval_s, meter.name, options)
