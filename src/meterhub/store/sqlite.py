"""The embedded SQLite backend: one file, WAL, every write through one writer thread."""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from meterhub.errors import ConflictError, StoreError, UnknownMeterError
from meterhub.ids import check_id
from meterhub.model import Extra, IntervalEnergy, Meter, Reading, utc_now
from meterhub.store.accounts import AccountsMixin
from meterhub.store.base import ReadingColumns, WriteResult
from meterhub.store.catalog import CatalogMixin
from meterhub.store.coarse import COARSE_TABLES, refresh_meter_days
from meterhub.store.sqlite_columns import write_columns_retrying
from meterhub.store.sqlite_reads import SQLiteReads
from meterhub.store.sqlite_schema import applied_migrations, apply_migrations, refresh_statistics
from meterhub.store.sqlite_writer import WriterContext, write_readings_tx
from meterhub.store.text import reject_nul_in_meter
from meterhub.timeutil import to_ms

__all__ = ["SQLiteStore", "connect"]

T = TypeVar("T")
_STOP = object()


def connect(path: str) -> sqlite3.Connection:
    """Open a connection in autocommit mode with the pragmas meterhub relies on."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open SQLite database {path}: {exc}") from exc
    return conn


class _Writer(threading.Thread):
    """The one thread that writes; callers hand it functions of the connection."""

    def __init__(self, path: str) -> None:
        super().__init__(name="meterhub-sqlite-writer", daemon=True)
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._path = path
        self._ready: Future[None] = Future()
        self.ctx = WriterContext()

    def run(self) -> None:
        try:
            conn = connect(self._path)
        except StoreError as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        try:
            while (job := self._jobs.get()) is not _STOP:
                fn, future = job
                try:
                    future.set_result(fn(conn))
                except BaseException as exc:  # handed to the caller, who re-raises it
                    future.set_exception(exc)
        finally:
            conn.close()

    def start_and_wait(self) -> None:
        """Start the thread and raise if its connection cannot be opened."""
        self.start()
        self._ready.result()

    def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the writer thread and return its result."""
        if not self.is_alive():
            raise StoreError("the database is closed")
        future: Future[T] = Future()
        self._jobs.put((fn, future))
        return future.result()

    def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` inside BEGIN IMMEDIATE ... COMMIT on the writer thread."""

        def run(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                self.ctx.forget()
                self.ctx.data_version = None
                raise
            self.ctx.data_version = conn.execute("PRAGMA data_version").fetchone()[0]
            return result

        try:
            return self.call(run)
        except sqlite3.Error as exc:
            raise StoreError(f"database write failed: {exc}") from exc

    def stop(self) -> None:
        """Let queued jobs finish, then close the connection."""
        if self.is_alive():
            self._jobs.put(_STOP)
            self.join()


class SQLiteStore(AccountsMixin, CatalogMixin, SQLiteReads):
    """meterhub's embedded store: a single SQLite file in WAL mode."""

    def __init__(self, path: str | Path, *, migrate: bool = True) -> None:
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        if self.path != ":memory:":
            parent = Path(self.path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreError(
                    f"cannot open SQLite database {self.path}: folder {parent} does not exist"
                )
        self._writer = _Writer(self.path)
        self._writer.start_and_wait()
        super().__init__(lambda: connect(self.path))
        self._watch: sqlite3.Connection | None = None
        self._watch_lock = threading.Lock()
        if migrate:
            self.migrate()

    def _catalog_write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self._writer.transaction(fn)

    def _catalog_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return fn(self._read())

    # --- schema -------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied."""
        return self._writer.call(apply_migrations)

    def migrations_applied(self) -> list[str]:
        """Return the names of applied migrations, oldest first (read-only)."""
        return self._writer.call(applied_migrations)

    def migrate_to(self, name: str) -> list[str]:
        """Apply migrations up to and including ``name`` (used to build older databases)."""
        return self._writer.call(lambda conn: apply_migrations(conn, upto=name))

    def refresh_statistics(self) -> None:
        """Analyse the tables again, sampled (see :func:`sqlite_schema.refresh_statistics`)."""
        self._writer.call(refresh_statistics)

    def close(self) -> None:
        """Finish pending writes and release every connection."""
        self._writer.stop()
        self._close_reads()
        with self._watch_lock:
            if self._watch is not None:
                self._watch.close()
                self._watch = None

    def change_count(self) -> int:
        """Return the database's data version as one connection of its own sees it.

        SQLite changes it whenever another connection commits: this store's writer thread as
        well as any other process, so every write since the last call shows.
        """
        with self._watch_lock:
            if self._watch is None:
                self._watch = connect(self.path)
            try:
                return int(self._watch.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the database's data version: {exc}") from exc

    # --- meters -------------------------------------------------------------------------
    def add_meter(self, meter: Meter) -> None:
        """Add a meter; raise InputError for an id outside the id rule, ConflictError if it exists."""
        check_id(meter.id)
        reject_nul_in_meter(meter)

        def add(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO meters (id, vendor, phases, tz, interval_s, name, options, created_ms) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (*_meter_values(meter), to_ms(utc_now())),
                )
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"meter {meter.id!r} exists already") from exc

        self._writer.transaction(add)

    def update_meter(self, meter: Meter) -> None:
        """Replace a meter's settings; raise UnknownMeterError if it does not exist."""
        reject_nul_in_meter(meter)

        def update(conn: sqlite3.Connection) -> None:
            values = _meter_values(meter)
            before = conn.execute("SELECT pk, tz FROM meters WHERE id = ?", (meter.id,)).fetchone()
            if before is None:
                raise UnknownMeterError(meter.id)
            conn.execute(
                "UPDATE meters SET vendor = ?, phases = ?, tz = ?, interval_s = ?, name = ?, "
                "options = ? WHERE id = ?",
                (*values[1:], meter.id),
            )
            self._writer.ctx.meters.pop(meter.id, None)
            if before[1] != meter.tz:
                # Local days follow the meter's zone.
                refresh_meter_days(conn, before[0], meter.tz)

        self._writer.transaction(update)

    def remove_meter(self, meter_id: str) -> int:
        """Remove a meter and all its data; return the number of raw rows removed."""

        def remove(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT pk FROM meters WHERE id = ?", (meter_id,)).fetchone()
            if row is None:
                raise UnknownMeterError(meter_id)
            removed = int(conn.execute("DELETE FROM readings WHERE meter = ?", row).rowcount)
            for table in ("latest", "rollup_15m", *COARSE_TABLES, "gaps", "intervals", "extras"):
                conn.execute(f"DELETE FROM {table} WHERE meter = ?", row)
            conn.execute("DELETE FROM meters WHERE pk = ?", row)
            self._forget_meter(conn, meter_id)
            self._forget_shares(conn, "meter", meter_id)
            return removed

        removed = self._writer.transaction(remove)
        self._writer.ctx.forget()
        return removed

    # --- writes -------------------------------------------------------------------------
    def write_readings(self, readings: Sequence[Reading]) -> WriteResult:
        """Store validated readings of known meters in one transaction, idempotently."""
        if not readings:
            return WriteResult(0, 0)
        try:
            return self._writer.transaction(
                lambda conn: write_readings_tx(conn, self._writer.ctx, readings)
            )
        except StoreError as exc:
            if not isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise
        # Another process wrote these series since our cache was filled: retry from the database.
        return self._writer.transaction(
            lambda conn: write_readings_tx(conn, self._writer.ctx, readings)
        )

    def write_columns(self, columns: ReadingColumns) -> WriteResult:
        """Store validated readings given as columns, exactly as :meth:`write_readings` would."""
        return write_columns_retrying(self._writer, columns)

    def write_intervals(self, records: Sequence[IntervalEnergy]) -> WriteResult:
        """Store interval-energy records keyed (meter, source, start), idempotently.

        A record whose values differ from the stored one replaces it (a vendor's correction of
        a day delivered late) and counts as stored; the same values again count as duplicates.
        """

        def write(conn: sqlite3.Connection) -> WriteResult:
            pks = self._pks(conn, {r.meter for r in records})
            before = conn.total_changes
            conn.executemany(
                "INSERT INTO intervals (meter, source, start_ms, end_ms, import_kwh, export_kwh) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (meter, source, start_ms) DO UPDATE SET "
                "end_ms = excluded.end_ms, import_kwh = excluded.import_kwh, "
                "export_kwh = excluded.export_kwh WHERE end_ms IS NOT excluded.end_ms "
                "OR import_kwh IS NOT excluded.import_kwh OR export_kwh IS NOT excluded.export_kwh",
                [
                    (
                        pks[r.meter],
                        r.source,
                        to_ms(r.start),
                        to_ms(r.end),
                        r.import_kwh,
                        r.export_kwh,
                    )
                    for r in records
                ],
            )
            stored = conn.total_changes - before
            return WriteResult(stored, len(records) - stored)

        return self._writer.transaction(write)

    def write_extras(self, extras: Sequence[Extra]) -> WriteResult:
        """Store device extras keyed (meter, name, ts), idempotently."""

        def write(conn: sqlite3.Connection) -> WriteResult:
            pks = self._pks(conn, {e.meter for e in extras})
            # The cursor's count leaves out what the rollup trigger changes; total_changes would not.
            stored = conn.executemany(
                "INSERT OR IGNORE INTO extras (meter, name, ts, value) VALUES (?, ?, ?, ?)",
                [(pks[e.meter], e.name, to_ms(e.ts), e.value) for e in extras],
            ).rowcount
            return WriteResult(stored, len(extras) - stored)

        return self._writer.transaction(write)

    @staticmethod
    def _pks(conn: sqlite3.Connection, meter_ids: set[str]) -> dict[str, int]:
        pks: dict[str, int] = {}
        for meter_id in meter_ids:
            row = conn.execute("SELECT pk FROM meters WHERE id = ?", (meter_id,)).fetchone()
            if row is None:
                raise UnknownMeterError(meter_id)
            pks[meter_id] = row[0]
        return pks

    # --- key-value ----------------------------------------------------------------------
    def token_set(self, scope: str, key: str, value: str, expires: datetime | None) -> None:
        """Store or replace a token."""
        self._writer.transaction(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO tokens (scope, key, value, expires_ms) VALUES (?, ?, ?, ?)",
                (scope, key, value, None if expires is None else to_ms(expires)),
            )
        )

    def token_delete(self, scope: str, key: str) -> None:
        """Forget a token."""
        self._writer.transaction(
            lambda conn: conn.execute(
                "DELETE FROM tokens WHERE scope = ? AND key = ?", (scope, key)
            )
        )

    def quota_acquire(self, key: str, limit: int, window_s: int, now: datetime) -> bool:
        """Record one call under ``key`` if fewer than ``limit`` fall in the window; else False."""
        now_ms = to_ms(now)

        def acquire(conn: sqlite3.Connection) -> bool:
            # Entries older than a day serve no documented window; drop them as we go.
            conn.execute(
                "DELETE FROM quota_ledger WHERE key = ? AND ts_ms <= ?",
                (key, now_ms - max(window_s, 86_400) * 1000),
            )
            used = conn.execute(
                "SELECT count(*) FROM quota_ledger WHERE key = ? AND ts_ms > ?",
                (key, now_ms - window_s * 1000),
            ).fetchone()[0]
            if used >= limit:
                return False
            conn.execute("INSERT INTO quota_ledger (key, ts_ms) VALUES (?, ?)", (key, now_ms))
            return True

        return self._writer.transaction(acquire)


def _meter_values(meter: Meter) -> tuple[str | int, ...]:
    return (
        meter.id,
        meter.vendor,
        meter.phases,
        meter.tz,
        meter.interval_s,
        meter.name,
        json.dumps(dict(meter.options), sort_keys=True),
    )
