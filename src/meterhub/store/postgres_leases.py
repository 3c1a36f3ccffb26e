"""Work leases and quota reservations on PostgreSQL (see :mod:`meterhub.store.leases`).

A lease row per item (``work_leases``: kind, item, worker, expires_ms) and a heartbeat row per
worker (``work_workers``). A round runs in one transaction: the worker's heartbeat, renewal of
what it holds, then free or expired rows taken with ``FOR UPDATE SKIP LOCKED`` up to its share,
so two workers never take one row and never wait for each other. Every time is the database's
``clock_timestamp()``, so the workers' clocks play no part in who holds what.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from meterhub.store.leases import (
    LeaseRound,
    Reservation,
    WorkerSeen,
    booked_at_ms,
    fair_share,
)
from meterhub.timeutil import from_ms, to_ms

if TYPE_CHECKING:
    from meterhub.store.postgres import PostgresStore
    from meterhub.store.postgres_schema import Conn

__all__ = ["PostgresLeases", "migrate_work_leases", "reserve_postgres"]

_NOW_MS = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
_QUOTA_KEEP_S = 86_400
"""Bookings older than this serve no documented window and are dropped as new ones are made."""


def migrate_work_leases(conn: Conn) -> None:
    """Migration 0008: the tables of work leases and worker heartbeats."""
    conn.execute(
        "CREATE TABLE work_workers (worker text PRIMARY KEY, role text NOT NULL, "
        "started_ms bigint NOT NULL, seen_ms bigint NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE work_leases (kind text NOT NULL, item text NOT NULL, "
        "worker text NOT NULL DEFAULT '', expires_ms bigint NOT NULL DEFAULT 0, "
        "PRIMARY KEY (kind, item))"
    )
    conn.execute("CREATE INDEX work_leases_worker ON work_leases (worker, kind)")


class PostgresLeases:
    """Leases shared by every process on one PostgreSQL database."""

    shared = True

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def claim(self, worker: str, role: str, kind: str, wanted: Sequence[str], lease_s: float) -> LeaseRound:
        """Say ``worker`` is alive; renew its leases of ``wanted`` items, take free ones up to its share."""
        lease_ms = round(lease_s * 1000)
        items = sorted(set(wanted))

        def round_(conn: Conn) -> LeaseRound:
            row = conn.execute(f"SELECT {_NOW_MS}").fetchone()
            now_ms = int(row[0]) if row is not None else 0
            conn.execute(
                "INSERT INTO work_workers (worker, role, started_ms, seen_ms) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (worker) DO UPDATE SET role = EXCLUDED.role, seen_ms = EXCLUDED.seen_ms",
                (worker, role, now_ms, now_ms),
            )
            conn.execute("DELETE FROM work_workers WHERE seen_ms < %s", (now_ms - lease_ms,))
            counted = conn.execute("SELECT count(*) FROM work_workers WHERE role <> 'api'").fetchone()
            workers = max(1, int(counted[0]) if counted is not None else 1)
            share = fair_share(len(items), workers)
            conn.execute(
                "INSERT INTO work_leases (kind, item) SELECT %s, unnest(%s::text[]) "
                "ON CONFLICT (kind, item) DO NOTHING",
                (kind, items),
            )
            renewed = conn.execute(
                "UPDATE work_leases SET expires_ms = %s WHERE kind = %s AND worker = %s "
                "AND item = ANY(%s) AND expires_ms >= %s RETURNING item",
                (now_ms + lease_ms, kind, worker, items, now_ms),
            ).fetchall()
            held = {str(r[0]) for r in renewed}
            if len(held) < share:
                taken = conn.execute(
                    "UPDATE work_leases SET worker = %s, expires_ms = %s WHERE (kind, item) IN ("
                    "SELECT kind, item FROM work_leases WHERE kind = %s AND item = ANY(%s) "
                    "AND expires_ms < %s ORDER BY md5(item || %s) LIMIT %s FOR UPDATE SKIP LOCKED"
                    ") RETURNING item",
                    (worker, now_ms + lease_ms, kind, items, now_ms, worker, share - len(held)),
                ).fetchall()
                held |= {str(r[0]) for r in taken}
            return LeaseRound(frozenset(held), workers, share)

        return self._store._transaction(round_)

    def release(self, worker: str, kind: str, items: Sequence[str]) -> None:
        """Give back ``items`` of ``kind`` that ``worker`` holds, so others may take them at once."""
        self._store._transaction(
            lambda conn: conn.execute(
                "UPDATE work_leases SET worker = '', expires_ms = 0 "
                "WHERE kind = %s AND worker = %s AND item = ANY(%s)",
                (kind, worker, list(items)),
            )
        )

    def leave(self, worker: str) -> None:
        """Give back everything ``worker`` holds and forget it (a worker stopping cleanly)."""

        def leave_(conn: Conn) -> None:
            conn.execute("UPDATE work_leases SET worker = '', expires_ms = 0 WHERE worker = %s", (worker,))
            conn.execute("DELETE FROM work_workers WHERE worker = %s", (worker,))

        self._store._transaction(leave_)

    def take(self, worker: str, kind: str, item: str, lease_s: float) -> str | None:
        """Lease one item to ``worker`` unless another holds it; return that other holder, or None."""

        def take_(conn: Conn) -> str | None:
            conn.execute(
                "INSERT INTO work_leases (kind, item) VALUES (%s, %s) ON CONFLICT DO NOTHING", (kind, item)
            )
            row = conn.execute(
                f"SELECT worker, expires_ms >= {_NOW_MS} FROM work_leases "
                "WHERE kind = %s AND item = %s FOR UPDATE",
                (kind, item),
            ).fetchone()
            if row is not None and row[1] and row[0] not in ("", worker):
                return str(row[0])
            conn.execute(
                f"UPDATE work_leases SET worker = %s, expires_ms = {_NOW_MS} + %s "
                "WHERE kind = %s AND item = %s",
                (worker, round(lease_s * 1000), kind, item),
            )
            return None

        return self._store._transaction(take_)

    def workers(self, lease_s: float) -> list[WorkerSeen]:
        """Return the workers seen within ``lease_s`` and how many items each holds."""
        with self._store._read() as conn:
            rows = conn.execute(
                f"SELECT w.worker, w.role, {_NOW_MS} - w.seen_ms, "
                "(SELECT count(*) FROM work_leases l WHERE l.worker = w.worker "
                f"AND l.expires_ms >= {_NOW_MS}) "
                "FROM work_workers w WHERE w.seen_ms >= " + _NOW_MS + " - %s ORDER BY w.worker",
                (round(lease_s * 1000),),
            ).fetchall()
        return [WorkerSeen(str(r[0]), str(r[1]), int(r[2]) / 1000, int(r[3])) for r in rows]


def reserve_postgres(
    store: PostgresStore,
    key: str,
    limit: int,
    window_s: int,
    now: datetime,
    margin_s: float,
    max_wait_s: float,
) -> Reservation:
    """Book the next call under ``key`` (see :func:`meterhub.store.leases.reserve_quota`)."""
    from meterhub.store.postgres_schema import advisory_key

    now_ms = to_ms(now)
    span_ms = round((window_s + margin_s) * 1000)

    def reserve(conn: Conn) -> Reservation:
        # Serialises every process booking this key until the transaction ends.
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (store._quota_locks, advisory_key(key)))
        conn.execute(
            "DELETE FROM quota_ledger WHERE key = %s AND ts_ms <= %s",
            (key, now_ms - max(window_s, _QUOTA_KEEP_S) * 1000),
        )
        rows = conn.execute(
            "SELECT ts_ms FROM quota_ledger WHERE key = %s AND ts_ms > %s ORDER BY ts_ms DESC LIMIT %s",
            (key, now_ms - span_ms, limit),
        ).fetchall()
        at_ms = booked_at_ms([int(r[0]) for r in rows], limit, window_s, now_ms, margin_s)
        if at_ms - now_ms > max_wait_s * 1000:
            return Reservation(False, from_ms(at_ms))
        conn.execute("INSERT INTO quota_ledger (key, ts_ms) VALUES (%s, %s)", (key, at_ms))
        return Reservation(True, from_ms(at_ms))

    return store._transaction(reserve)
