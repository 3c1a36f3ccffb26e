"""First-writer-wins entries in the store's ``tokens`` table, shared by every process on it.

The Store protocol's ``token_set`` replaces and ``token_swap`` only changes an existing entry;
:func:`claim_token` adds the missing step: create an entry unless a live one holds the key, in
one statement, and answer what the key holds afterwards. Of several processes claiming one key
at once, exactly one value wins and all of them read it back. An entry whose expiry has passed
counts as absent, so a claim can take it over.

::

    held = claim_token(store, "mqtt-arrival", digest, stamp, expires=now + window, now=now)
    first = held == stamp   # False: another process (or an earlier delivery) claimed it first
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from meterhub.errors import StoreError
from meterhub.store.base import Store
from meterhub.store.sqlmixin import SqlMixin
from meterhub.timeutil import to_ms

__all__ = ["claim_token"]

_CLAIM = (
    "INSERT INTO tokens (scope, key, value, expires_ms) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, expires_ms = excluded.expires_ms "
    "WHERE tokens.expires_ms IS NOT NULL AND tokens.expires_ms <= ?"
)
_READ = "SELECT value FROM tokens WHERE scope = ? AND key = ?"


def claim_token(
    store: Store, scope: str, key: str, value: str, expires: datetime | None, now: datetime
) -> str:
    """Store ``value`` under (scope, key) unless a live entry holds it; return what it holds.

    The answer is ``value`` when this call created the entry (or replaced an expired one), else
    the value of whoever claimed it first. Insert and read back are one transaction.
    """
    if not isinstance(store, SqlMixin):
        raise TypeError(f"{type(store).__name__} keeps no tokens table to claim entries in")
    sql_store: SqlMixin = store
    expires_ms = None if expires is None else to_ms(expires)

    def claim(conn: Any) -> str:
        sql_store._exec(conn, _CLAIM, (scope, key, value, expires_ms, to_ms(now)))
        rows = sql_store._rows(conn, _READ, (scope, key))
        if not rows:
            raise StoreError(f"the {scope} entry just claimed is missing")
        return str(rows[0][0])

    return sql_store._catalog_write(claim)
