"""Users, API keys and shares: small tables with the same SQL on every backend.

Like :mod:`meterhub.store.catalog`, each backend mixes :class:`AccountsMixin` in and supplies
the ``_catalog_write``/``_catalog_read`` hooks. Passwords and key secrets arrive here already
hashed; the store never sees a secret. Refresh tokens and the token signing key live in the
``tokens`` table (scopes ``refresh``, ``session`` and ``api``); the conditional writes sign-in
needs on that table (use a refresh token once, extend a session only while it lives) are here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from meterhub.errors import ConflictError, InputError, NotFoundError, UnknownMeterError, UnknownPlaceError
from meterhub.model import ApiKey, User, UserRole, utc_now
from meterhub.store.sqlmixin import SqlMixin
from meterhub.timeutil import from_ms, to_ms

__all__ = ["ACCOUNTS_DDL", "SHARE_KINDS", "AccountsMixin"]


ACCOUNTS_DDL: tuple[str, ...] = (
    "CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL, "
    "created_ms BIGINT NOT NULL)",
    "CREATE TABLE api_keys (key_id TEXT PRIMARY KEY, user_name TEXT NOT NULL, name TEXT NOT NULL, "
    "prefix TEXT NOT NULL, key_hash TEXT NOT NULL, created_ms BIGINT NOT NULL, last_used_ms BIGINT, "
    "revoked INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX api_keys_user ON api_keys (user_name)",
    "CREATE TABLE shares (user_name TEXT NOT NULL, kind TEXT NOT NULL, object_id TEXT NOT NULL, "
    "PRIMARY KEY (user_name, kind, object_id))",
)
"""The tables of migration 0005, valid in SQLite and PostgreSQL alike."""

SHARE_KINDS: tuple[str, ...] = ("meter", "place")
"""What can be shared with a user."""

_KEY_COLUMNS = "key_id, user_name, name, prefix, created_ms, last_used_ms, revoked, key_hash"


def _api_key(row: Sequence[Any]) -> tuple[ApiKey, str]:
    key_id, user, name, prefix, created_ms, used_ms, revoked, key_hash = row
    key = ApiKey(
        key_id,
        user,
        name,
        prefix,
        from_ms(int(created_ms)),
        None if used_ms is None else from_ms(int(used_ms)),
        bool(revoked),
    )
    return key, str(key_hash)


def _unknown_user(name: str) -> NotFoundError:
    return NotFoundError(f"unknown user {name!r} (see 'meterhub users list')")


class AccountsMixin(SqlMixin):
    """User, API key and share methods of the Store protocol, shared by the backends."""

    def _require_user(self, conn: Any, name: str) -> None:
        if not self._rows(conn, "SELECT 1 FROM users WHERE name = ?", (name,)):
            raise _unknown_user(name)

    # --- users --------------------------------------------------------------------------
    def add_user(self, name: str, role: UserRole, password_hash: str) -> None:
        """Add a user; raise ConflictError if the name is taken."""
        created_ms = to_ms(utc_now())

        def add(conn: Any) -> None:
            # One conditional insert: two adders of one name get a conflict, never a key error.
            added = self._exec(
                conn,
                "INSERT INTO users (name, role, password_hash, created_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (name, UserRole(role).value, password_hash, created_ms),
            ).rowcount
            if added == 0:
                raise ConflictError(f"user {name!r} exists already")

        self._catalog_write(add)

    def get_user(self, name: str) -> User:
        """Return one user or raise NotFoundError (read-only)."""
        rows = self._catalog_read(
            lambda conn: self._rows(conn, "SELECT name, role, created_ms FROM users WHERE name = ?", (name,))
        )
        if not rows:
            raise _unknown_user(name)
        user, role, created_ms = rows[0]
        return User(user, UserRole(role), from_ms(int(created_ms)))

    def list_users(self) -> list[User]:
        """Return all users ordered by name (read-only)."""
        rows = self._catalog_read(
            lambda conn: self._rows(conn, "SELECT name, role, created_ms FROM users ORDER BY name")
        )
        return [User(name, UserRole(role), from_ms(int(ms))) for name, role, ms in rows]

    def remove_user(self, name: str) -> None:
        """Remove a user with their API keys and shares; raise NotFoundError if absent."""

        def remove(conn: Any) -> None:
            self._require_user(conn, name)
            for table in ("api_keys", "shares"):
                self._exec(conn, f"DELETE FROM {table} WHERE user_name = ?", (name,))
            self._exec(conn, "DELETE FROM users WHERE name = ?", (name,))

        self._catalog_write(remove)

    def _update_user(self, name: str, column: str, value: str) -> None:
        def update(conn: Any) -> None:
            self._require_user(conn, name)
            self._exec(conn, f"UPDATE users SET {column} = ? WHERE name = ?", (value, name))

        self._catalog_write(update)

    def set_user_password(self, name: str, password_hash: str) -> None:
        """Replace a user's password hash; raise NotFoundError if absent."""
        self._update_user(name, "password_hash", password_hash)

    def set_user_role(self, name: str, role: UserRole) -> None:
        """Change a user's role; raise NotFoundError if absent."""
        self._update_user(name, "role", UserRole(role).value)

    def user_password_hash(self, name: str) -> str | None:
        """Return a user's password hash, or None for an unknown user (read-only)."""
        rows = self._catalog_read(
            lambda conn: self._rows(conn, "SELECT password_hash FROM users WHERE name = ?", (name,))
        )
        return str(rows[0][0]) if rows else None

    # --- API keys -----------------------------------------------------------------------
    def add_api_key(self, key: ApiKey, key_hash: str) -> None:
        """Store a new key's record and hash; raise ConflictError for a taken id."""

        def add(conn: Any) -> None:
            self._require_user(conn, key.user)
            added = self._exec(
                conn,
                f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (key_id) DO NOTHING",
                (
                    key.key_id,
                    key.user,
                    key.name,
                    key.prefix,
                    to_ms(key.created_at),
                    None if key.last_used_at is None else to_ms(key.last_used_at),
                    int(key.revoked),
                    key_hash,
                ),
            ).rowcount
            if added == 0:
                raise ConflictError(f"API key {key.key_id!r} exists already")

        self._catalog_write(add)

    def api_key_by_id(self, key_id: str) -> tuple[ApiKey, str] | None:
        """Return a key's record and stored hash, or None (read-only)."""
        rows = self._catalog_read(
            lambda conn: self._rows(conn, f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,))
        )
        return _api_key(rows[0]) if rows else None

    def list_api_keys(self, user: str | None = None) -> list[ApiKey]:
        """Return the keys of one user or of all, revoked ones included, oldest first (read-only)."""
        sql = f"SELECT {_KEY_COLUMNS} FROM api_keys"
        args: tuple[str, ...] = ()
        if user is not None:
            sql, args = sql + " WHERE user_name = ?", (user,)
        rows = self._catalog_read(lambda conn: self._rows(conn, sql + " ORDER BY created_ms, key_id", args))
        return [_api_key(row)[0] for row in rows]

    def revoke_api_key(self, key_id: str) -> None:
        """Mark a key revoked (it stays listed); raise NotFoundError for an unknown id."""

        def revoke(conn: Any) -> None:
            if self._exec(conn, "UPDATE api_keys SET revoked = 1 WHERE key_id = ?", (key_id,)).rowcount == 0:
                raise NotFoundError(f"unknown API key {key_id!r} (see 'meterhub keys list')")

        self._catalog_write(revoke)

    def touch_api_key(self, key_id: str, at: datetime) -> None:
        """Record when a key was last used."""
        self._catalog_write(
            lambda conn: self._exec(
                conn, "UPDATE api_keys SET last_used_ms = ? WHERE key_id = ?", (to_ms(at), key_id)
            )
        )

    # --- conditional token writes --------------------------------------------------------
    def token_swap(
        self, scope: str, key: str, expected: str, value: str, expires: datetime | None
    ) -> bool:
        """Replace a token only if it still holds ``expected``; return whether this call did.

        One conditional UPDATE: of two callers presenting the same ``expected`` at once, exactly
        one succeeds, on every backend.
        """
        expires_ms = None if expires is None else to_ms(expires)
        sql = "UPDATE tokens SET value = ?, expires_ms = ? WHERE scope = ? AND key = ? AND value = ?"
        changed = self._catalog_write(
            lambda conn: self._exec(conn, sql, (value, expires_ms, scope, key, expected)).rowcount
        )
        return bool(changed)

    def token_purge(self, scope: str, now: datetime) -> int:
        """Delete the tokens of ``scope`` that expired by ``now``; return how many."""
        sql = "DELETE FROM tokens WHERE scope = ? AND expires_ms IS NOT NULL AND expires_ms <= ?"
        return int(self._catalog_write(lambda conn: self._exec(conn, sql, (scope, to_ms(now))).rowcount))

    # --- shares -------------------------------------------------------------------------
    def _require_object(self, conn: Any, kind: str, object_id: str) -> None:
        if kind not in SHARE_KINDS:
            raise InputError(f"cannot share a {kind!r}; share a {' or a '.join(SHARE_KINDS)}")
        table = "meters" if kind == "meter" else "places"
        if not self._rows(conn, f"SELECT 1 FROM {table} WHERE id = ?", (object_id,)):
            raise UnknownMeterError(object_id) if kind == "meter" else UnknownPlaceError(object_id)

    def share(self, user: str, kind: str, object_id: str) -> None:
        """Let a user see a meter or a place (and its meters); sharing twice is harmless."""

        def share(conn: Any) -> None:
            self._require_user(conn, user)
            self._require_object(conn, kind, object_id)
            self._exec(
                conn,
                "INSERT INTO shares (user_name, kind, object_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (user, kind, object_id),
            )

        self._catalog_write(share)

    def unshare(self, user: str, kind: str, object_id: str) -> None:
        """Stop sharing a meter or place with a user; raise NotFoundError if it was not shared."""

        def unshare(conn: Any) -> None:
            self._require_user(conn, user)
            cursor = self._exec(
                conn,
                "DELETE FROM shares WHERE user_name = ? AND kind = ? AND object_id = ?",
                (user, kind, object_id),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"{kind} {object_id!r} is not shared with {user!r}")

        self._catalog_write(unshare)

    def _forget_shares(self, conn: Any, kind: str, object_id: str) -> None:
        """Drop every share of a removed meter or place."""
        self._exec(conn, "DELETE FROM shares WHERE kind = ? AND object_id = ?", (kind, object_id))

    def shares_of(self, user: str) -> list[tuple[str, str]]:
        """Return (kind, object id) of what is shared with a user and still exists (read-only)."""
        sql = (
            "SELECT s.kind, s.object_id FROM shares s WHERE s.user_name = ? AND ("
            "(s.kind = 'meter' AND EXISTS (SELECT 1 FROM meters m WHERE m.id = s.object_id)) OR "
            "(s.kind = 'place' AND EXISTS (SELECT 1 FROM places p WHERE p.id = s.object_id))"
            ") ORDER BY s.kind, s.object_id"
        )
        rows = self._catalog_read(lambda conn: self._rows(conn, sql, (user,)))
        return [(str(kind), str(object_id)) for kind, object_id in rows]
