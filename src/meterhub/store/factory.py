"""Open the store a database URL names."""

from __future__ import annotations

from meterhub.errors import ConfigError
from meterhub.redact import redact_url
from meterhub.store.base import Store

__all__ = ["DEFAULT_DATABASE_URL", "open_store", "redact_url"]

DEFAULT_DATABASE_URL = "sqlite:///meterhub.db"


def open_store(url: str = DEFAULT_DATABASE_URL, *, migrate: bool = True) -> Store:
    """Open ``sqlite:///path`` or ``postgresql://...``, applying pending migrations unless told not to."""
    if url.startswith("sqlite:///"):
        from meterhub.store.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"), migrate=migrate)
    if url.startswith(("postgresql://", "postgres://")):
        from meterhub.store.postgres import PostgresStore

        return PostgresStore(url, migrate=migrate)
    raise ConfigError(
        f"unsupported database URL {redact_url(url)!r}; use sqlite:///path/to/file.db or postgresql://..."
    )
