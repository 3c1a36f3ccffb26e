"""Where tests' stores live: a real SQLite file, or a fresh schema of the test PostgreSQL.

PostgreSQL is the server at ``METERHUB_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``). When it cannot be reached the PostgreSQL tests skip
with the reason, except under ``CI=true``, where they fail: a CI run must never pass without having
tested PostgreSQL. The ``backend`` fixture (in ``tests/conftest.py``) yields a :class:`Backend`.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import uuid
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pytest

from meterhub.model import READING_FIELDS, Reading
from meterhub.store.base import Store
from meterhub.store.postgres import PostgresStore
from meterhub.store.postgres_schema import ensure_partitions
from meterhub.store.sqlite import SQLiteStore
from meterhub.store.sqlite_codec import encode_reading
from meterhub.timeutil import to_ms

POSTGRES_URL_ENV = "METERHUB_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@functools.cache
def _postgres_problem(url: str) -> str | None:
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as exc:
        return " ".join(str(exc).split())
    return None


def require_postgres() -> str:
    """Return the test server's URL, or skip (fail under CI=true) when it cannot be reached."""
    url = os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)
    problem = _postgres_problem(url)
    if problem is not None:
        message = (
            f"PostgreSQL for the store tests is unreachable ({problem}); start it or point "
            f"{POSTGRES_URL_ENV} at one"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return url


class Backend:
    """Where the stores of one test live: a temporary SQLite file or a fresh PostgreSQL schema."""

    def __init__(self, name: str, tmp_path: Path) -> None:
        self.name = name
        self.stores: list[Store] = []
        self.sqlite_path = tmp_path / "meterhub.db"
        self.postgres_url = require_postgres() if name == "postgres" else ""
        self.schema = f"t_{uuid.uuid4().hex[:16]}"

    def open(self, migrate: bool = True) -> Store:
        """Open one more store on this backend's database."""
        store: Store
        if self.name == "sqlite":
            store = SQLiteStore(self.sqlite_path, migrate=migrate)
        else:
            store = PostgresStore(self.postgres_url, schema=self.schema, migrate=migrate)
        self.stores.append(store)
        return store

    def insert_raw(self, meter_id: str, readings: Sequence[Reading]) -> None:
        """Insert raw rows with plain SQL, as into a database from before rollups existed."""
        if self.name == "sqlite":
            with sqlite3.connect(self.sqlite_path) as conn:
                (pk,) = conn.execute("SELECT pk FROM meters WHERE id = ?", (meter_id,)).fetchone()
                conn.executemany(
                    "INSERT INTO readings (meter, phase, ts, v, i, p, q, pf, f, ei, ee, qi, qe) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [encode_reading(pk, r, to_ms(r.ts)) for r in readings],
                )
            return
        with psycopg.connect(
            self.postgres_url, options=f"-c search_path={self.schema}", autocommit=True
        ) as conn:
            ensure_partitions(conn, [to_ms(r.ts) for r in readings])
            row = conn.execute("SELECT pk FROM meters WHERE id = %s", (meter_id,)).fetchone()
            assert row is not None
            marks = ", ".join(["%s"] * (3 + len(READING_FIELDS)))
            with conn.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO readings (meter, phase, ts, {', '.join(READING_FIELDS)}) "
                    f"VALUES ({marks})",
                    [(row[0], r.phase, to_ms(r.ts), *r.values()) for r in readings],
                )

    def close(self) -> None:
        """Close every store opened here and drop the PostgreSQL schema."""
        for store in self.stores:
            store.close()
        if self.name == "postgres":
            with psycopg.connect(self.postgres_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


def schema_url(url: str, schema: str) -> str:
    """Return ``url`` keeping meterhub's tables in ``schema``."""
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def database_url(backend: Backend) -> str:
    """Return the URL a hub opens this backend's database with."""
    if backend.name == "sqlite":
        return f"sqlite:///{backend.sqlite_path}"
    return schema_url(backend.postgres_url, backend.schema)
