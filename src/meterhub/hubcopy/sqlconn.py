"""Plain SQL on either backend, for the tables the Store protocol has no method to list or fill.

A :class:`SqlConn` speaks with ``?`` placeholders on SQLite and PostgreSQL alike, and opens
PostgreSQL the way the store does (same schema, same connect timeout), so the copy reads and
writes the very tables the store uses. Errors come back as one line with no password in it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from meterhub.errors import ConfigError, StoreError
from meterhub.redact import redact_text, redact_url

__all__ = ["SqlConn", "connect", "source_label"]

_BUSY_TIMEOUT_MS = 30_000


class SqlConn:
    """One connection to a meterhub database, SQLite or PostgreSQL, in autocommit mode."""

    def __init__(self, raw: Any, kind: str, label: str, secret: str | None) -> None:
        self._raw = raw
        self.kind = kind
        """``sqlite`` or ``postgresql``."""
        self.label = label
        """Where the database is, without its password."""
        self._secret = secret

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.kind == "postgresql" else statement

    def _failed(self, exc: Exception) -> StoreError:
        text = " ".join(str(exc).split()) or type(exc).__name__
        secrets = [self._secret] if self._secret else []
        return StoreError(f"{self.label}: {redact_text(text, secrets)}")

    def rows(self, statement: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query and return every row as a tuple."""
        try:
            cursor = self._raw.execute(self._sql(statement), tuple(args))
            return [tuple(row) for row in cursor.fetchall()]
        except (sqlite3.Error, _pg_error()) as exc:
            raise self._failed(exc) from None

    def execute(self, statement: str, args: Sequence[Any] = ()) -> None:
        """Run one statement."""
        try:
            self._raw.execute(self._sql(statement), tuple(args))
        except (sqlite3.Error, _pg_error()) as exc:
            raise self._failed(exc) from None

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per row."""
        if not rows:
            return
        try:
            if self.kind == "postgresql":
                with self._raw.cursor() as cursor:
                    cursor.executemany(self._sql(statement), [tuple(row) for row in rows])
            else:
                self._raw.executemany(statement, [tuple(row) for row in rows])
        except (sqlite3.Error, _pg_error()) as exc:
            raise self._failed(exc) from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block in one transaction: all of it is written, or none."""
        if self.kind == "postgresql":
            try:
                with self._raw.transaction():
                    yield
            except _pg_error() as exc:
                raise self._failed(exc) from None
            return
        self.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._raw.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def has_table(self, name: str) -> bool:
        """Return whether a table of this name exists (in the store's schema)."""
        if self.kind == "postgresql":
            found = self.rows("SELECT to_regclass(?) IS NOT NULL", (name,))
            return bool(found[0][0])
        return bool(self.rows("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))

    def columns(self, table: str) -> list[str]:
        """Return a table's column names in their order."""
        if self.kind == "postgresql":
            found = self.rows(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(?) AND attnum > 0 "
                "AND NOT attisdropped ORDER BY attnum",
                (table,),
            )
            return [str(row[0]) for row in found]
        return [str(row[1]) for row in self.rows(f'PRAGMA table_info("{table}")')]

    def close(self) -> None:
        """Close the connection."""
        self._raw.close()


def _pg_error() -> type[Exception]:
    import psycopg

    return psycopg.Error


def source_label(url: str) -> str:
    """Return a stable name of the database ``url`` names: a file's full path, or the URL without secrets."""
    if url.startswith("sqlite:///"):
        return "sqlite:///" + os.path.realpath(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        from meterhub.store.postgres import parse_url

        _, schema, shown = parse_url(url)
        return shown if schema is None else f"{shown} (schema {schema})"
    raise ConfigError(
        f"unsupported database URL {redact_url(url)!r}; use sqlite:///path/to/file.db or postgresql://..."
    )


def connect(url: str) -> SqlConn:
    """Open a plain connection to the database ``url`` names (autocommit)."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        try:
            raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            raw.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {redact_url(url)}: {exc}") from None
        return SqlConn(raw, "sqlite", source_label(url), None)
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from meterhub.store.postgres import parse_url

    conninfo, _, shown = parse_url(url)
    password = conninfo_to_dict(conninfo).get("password")
    secret = None if password is None else str(password)
    try:
        pg = psycopg.connect(conninfo, autocommit=True)
    except psycopg.Error as exc:
        text = redact_text(" ".join(str(exc).split()), [secret] if secret else [])
        raise StoreError(f"cannot connect to PostgreSQL at {shown}: {text}") from None
    return SqlConn(pg, "postgresql", source_label(url), secret)
