"""Where a copy keeps its progress: a small table in the target, ``hubcopy_state``.

Each row is one part of the copy (``source``, ``readings:<meter>``, ``extras:<meter>``...) and
its position as text. A batch of rows is written first and its position after, so a copy that
stops between the two writes that batch again on resume; the stores' writes are idempotent,
so that costs time and never a duplicate row.
"""

from __future__ import annotations

from collections.abc import Iterable

from meterhub.errors import ConflictError
from meterhub.hubcopy.sqlconn import SqlConn

__all__ = ["STATE_TABLE", "CopyState", "check_target"]

STATE_TABLE = "hubcopy_state"
SOURCE_PART = "source"

_HUB_TABLES = ("meters", "users", "places", "prices", "api_keys")
"""Tables whose rows mean a database already holds a hub."""


class CopyState:
    """The progress of one copy, read from and written to the target database."""

    def __init__(self, conn: SqlConn) -> None:
        self._conn = conn
        conn.execute(f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (part TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._parts = {
            str(part): str(value) for part, value in conn.rows(f"SELECT part, value FROM {STATE_TABLE}")
        }

    def get(self, part: str) -> str | None:
        """Return the position of ``part``, or None when it has not started."""
        return self._parts.get(part)

    def set(self, part: str, value: str) -> None:
        """Record the position of ``part`` (committed at once)."""
        self._conn.execute(
            f"INSERT INTO {STATE_TABLE} (part, value) VALUES (?, ?) "
            "ON CONFLICT (part) DO UPDATE SET value = excluded.value",
            (part, value),
        )
        self._parts[part] = value

    def forget(self, parts: Iterable[str]) -> None:
        """Drop the positions of ``parts``, so the next run copies them from their start again."""
        for part in parts:
            self._conn.execute(f"DELETE FROM {STATE_TABLE} WHERE part = ?", (part,))
            self._parts.pop(part, None)


def check_target(conn: SqlConn, source: str) -> bool:
    """Refuse a target holding another hub; return whether it holds this source's copy already.

    A target is fit when it is empty (no meters, users, places, prices or keys) or when its
    ``hubcopy_state`` names ``source`` as the hub it copies.
    """
    if conn.has_table(STATE_TABLE):
        found = conn.rows(f"SELECT value FROM {STATE_TABLE} WHERE part = ?", (SOURCE_PART,))
        if found and str(found[0][0]) != source:
            raise ConflictError(
                f"{conn.label} holds a copy of another hub ({found[0][0]}); "
                "copy into an empty database, or drop that one first"
            )
        if found:
            return True
    held = [
        f"{count} {table}"
        for table in _HUB_TABLES
        if conn.has_table(table) and (count := int(conn.rows(f"SELECT count(*) FROM {table}")[0][0]))
    ]
    if held:
        raise ConflictError(
            f"{conn.label} already holds a hub ({', '.join(held)}); "
            "copy into an empty database (createdb a new one), never over a hub's data"
        )
    return False
