"""Work leases and quota reservations on SQLite (see :mod:`meterhub.store.leases`).

A SQLite hub is one process: :func:`lock_single_process` takes an OS lock on a file beside the
database (``<file>.serve-lock``) for as long as ``meterhub serve`` runs, so a second one on the
same file refuses to start and names the PostgreSQL route. Its leases therefore grant every
wanted item to the one worker, recorded in the same tables as on PostgreSQL (``work_leases``).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

from meterhub.errors import ConfigError
from meterhub.model import utc_now
from meterhub.store.leases import LeaseRound, Reservation, WorkerSeen, booked_at_ms
from meterhub.timeutil import from_ms, to_ms

if TYPE_CHECKING:
    from meterhub.store.sqlite import SQLiteStore

__all__ = [
    "ProcessLock",
    "SQLiteLeases",
    "lock_path",
    "lock_single_process",
    "migrate_work_leases",
    "reserve_sqlite",
]

_QUOTA_KEEP_S = 86_400


def migrate_work_leases(conn: sqlite3.Connection) -> None:
    """Migration 0008: the tables of work leases and worker heartbeats."""
    conn.execute(
        "CREATE TABLE work_workers (worker TEXT PRIMARY KEY, role TEXT NOT NULL, "
        "started_ms INTEGER NOT NULL, seen_ms INTEGER NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE work_leases (kind TEXT NOT NULL, item TEXT NOT NULL, "
        "worker TEXT NOT NULL DEFAULT '', expires_ms INTEGER NOT NULL DEFAULT 0, "
        "PRIMARY KEY (kind, item))"
    )
    conn.execute("CREATE INDEX work_leases_worker ON work_leases (worker, kind)")


def lock_path(database: str) -> Path:
    """Return the lock file of the SQLite database at ``database``."""
    return Path(f"{Path(database).expanduser().resolve()}.serve-lock")


class ProcessLock:
    """An OS lock on a file beside a SQLite database, held until :meth:`release` or the process ends."""

    def __init__(self, handle: IO[str] | None) -> None:
        self._handle = handle

    def release(self) -> None:
        """Let another process serve the database."""
        if self._handle is not None:
            self._handle.close()  # closing the file drops its lock
            self._handle = None


def lock_single_process(database: str) -> ProcessLock:
    """Take the database's serve lock, or raise ConfigError naming who holds it.

    The OS drops the lock when the process ends, however it ends (even SIGKILL), so a crashed
    hub never leaves a stale lock behind.
    """
    if database == ":memory:":
        return ProcessLock(None)
    path = lock_path(database)
    try:
        handle = path.open("a+", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot open the lock file {path}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConfigError(
            f"the SQLite database {database} is already served by {holder}; SQLite serves one "
            "process only. To run several workers, move the hub to PostgreSQL (meterhub db copy "
            "--to postgresql://...), set METERHUB_DATABASE_URL to that URL and start each worker "
            "with meterhub serve --role poller"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"meterhub serve (pid {os.getpid()})\n")
    handle.flush()
    return ProcessLock(handle)


class SQLiteLeases:
    """Leases of a single-process hub: its one worker holds every wanted item."""

    shared = False

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    def claim(self, worker: str, role: str, kind: str, wanted: Sequence[str], lease_s: float) -> LeaseRound:
        """Grant every wanted item to ``worker`` (no other process shares this database)."""
        now_ms = to_ms(utc_now())
        items = sorted(set(wanted))
        expires_ms = now_ms + round(lease_s * 1000)

        def claim_(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO work_workers (worker, role, started_ms, seen_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (worker) DO UPDATE SET role = excluded.role, seen_ms = excluded.seen_ms",
                (worker, role, now_ms, now_ms),
            )
            conn.execute("DELETE FROM work_workers WHERE worker <> ?", (worker,))
            conn.execute("DELETE FROM work_leases WHERE kind = ? AND worker <> ?", (kind, worker))
            conn.executemany(
                "INSERT INTO work_leases (kind, item, worker, expires_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, item) DO UPDATE SET worker = excluded.worker, "
                "expires_ms = excluded.expires_ms",
                [(kind, item, worker, expires_ms) for item in items],
            )

        self._store._writer.transaction(claim_)
        return LeaseRound(frozenset(items), 1, len(items))

    def release(self, worker: str, kind: str, items: Sequence[str]) -> None:
        """Give back ``items`` of ``kind`` that ``worker`` holds."""
        self._store._writer.transaction(
            lambda conn: conn.executemany(
                "DELETE FROM work_leases WHERE kind = ? AND worker = ? AND item = ?",
                [(kind, worker, item) for item in items],
            )
        )

    def leave(self, worker: str) -> None:
        """Give back everything ``worker`` holds and forget it."""

        def leave_(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM work_leases WHERE worker = ?", (worker,))
            conn.execute("DELETE FROM work_workers WHERE worker = ?", (worker,))

        self._store._writer.transaction(leave_)

    def take(self, worker: str, kind: str, item: str, lease_s: float) -> str | None:
        """Lease one item to ``worker`` unless a live lease of another holds it."""
        now_ms = to_ms(utc_now())

        def take_(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT worker, expires_ms FROM work_leases WHERE kind = ? AND item = ?", (kind, item)
            ).fetchone()
            if row is not None and row[1] >= now_ms and row[0] not in ("", worker):
                return str(row[0])
            conn.execute(
                "INSERT INTO work_leases (kind, item, worker, expires_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, item) DO UPDATE SET worker = excluded.worker, "
                "expires_ms = excluded.expires_ms",
                (kind, item, worker, now_ms + round(lease_s * 1000)),
            )
            return None

        return self._store._writer.transaction(take_)

    def workers(self, lease_s: float) -> list[WorkerSeen]:
        """Return the worker seen within ``lease_s`` and how many items it holds."""
        now_ms = to_ms(utc_now())
        rows = (
            self._store._read()
            .execute(
                "SELECT w.worker, w.role, ? - w.seen_ms, (SELECT count(*) FROM work_leases l "
                "WHERE l.worker = w.worker AND l.expires_ms >= ?) FROM work_workers w "
                "WHERE w.seen_ms >= ? ORDER BY w.worker",
                (now_ms, now_ms, now_ms - round(lease_s * 1000)),
            )
            .fetchall()
        )
        return [WorkerSeen(str(r[0]), str(r[1]), int(r[2]) / 1000, int(r[3])) for r in rows]


def reserve_sqlite(
    store: SQLiteStore,
    key: str,
    limit: int,
    window_s: int,
    now: datetime,
    margin_s: float,
    max_wait_s: float,
) -> Reservation:
    """Book the next call under ``key`` (see :func:`meterhub.store.leases.reserve_quota`)."""
    now_ms = to_ms(now)
    span_ms = round((window_s + margin_s) * 1000)

    def reserve(conn: sqlite3.Connection) -> Reservation:
        conn.execute(
            "DELETE FROM quota_ledger WHERE key = ? AND ts_ms <= ?",
            (key, now_ms - max(window_s, _QUOTA_KEEP_S) * 1000),
        )
        rows = conn.execute(
            "SELECT ts_ms FROM quota_ledger WHERE key = ? AND ts_ms > ? ORDER BY ts_ms DESC LIMIT ?",
            (key, now_ms - span_ms, limit),
        ).fetchall()
        at_ms = booked_at_ms([int(r[0]) for r in rows], limit, window_s, now_ms, margin_s)
        if at_ms - now_ms > max_wait_s * 1000:
            return Reservation(False, from_ms(at_ms))
        conn.execute("INSERT INTO quota_ledger (key, ts_ms) VALUES (?, ?)", (key, at_ms))
        return Reservation(True, from_ms(at_ms))

    return store._writer.transaction(reserve)
