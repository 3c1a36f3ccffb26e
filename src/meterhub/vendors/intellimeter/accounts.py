"""The simulated Intellimeter project: its API accounts, their keys and login sessions."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from meterhub.errors import ConflictError, NotFoundError

from .render import Stamp, Value

__all__ = ["Account", "AccountBook", "account_info", "public_user"]

_KEY_GROUPS = 4
_KEY_GROUP_CHARS = 10


@dataclass(frozen=True, slots=True)
class Account:
    """One API account of the project."""

    uuid: int
    username: str
    password: str
    email: str
    joined: datetime
    key: str
    xml: bool = False


def _derive_key(seed: int, uuid: int, generation: int) -> str:
    digest = hashlib.sha256(f"intellimeter:{seed}:{uuid}:{generation}".encode()).hexdigest()
    groups = (digest[i * _KEY_GROUP_CHARS : (i + 1) * _KEY_GROUP_CHARS] for i in range(_KEY_GROUPS))
    return "-".join(groups)


class AccountBook:
    """Accounts of one project plus the sessions logged into them; in memory."""

    def __init__(self, seed: int, project_id: int, project_name: str) -> None:
        self.seed = seed
        self.project_id = project_id
        self.project_name = project_name
        self._accounts: dict[int, Account] = {}
        self._sessions: dict[str, int] = {}
        self._key_generation = 0
        self._next_uuid = 1

    def _new_key(self, uuid: int) -> str:
        self._key_generation += 1
        return _derive_key(self.seed, uuid, self._key_generation)

    def _ensure_free(self, username: str, uuid: int | None = None) -> None:
        for account in self._accounts.values():
            if account.username == username and account.uuid != uuid:
                raise ConflictError(f"username {username!r} is taken")

    def create(self, username: str, password: str, email: str, joined: datetime) -> Account:
        """Add an account; raise ConflictError when the username is taken."""
        self._ensure_free(username)
        uuid = self._next_uuid
        self._next_uuid += 1
        account = Account(uuid, username, password, email, joined, self._new_key(uuid))
        self._accounts[uuid] = account
        return account

    def get(self, uuid: int) -> Account:
        """Return the account ``uuid`` or raise NotFoundError."""
        try:
            return self._accounts[uuid]
        except KeyError:
            raise NotFoundError(f"no account {uuid}") from None

    def all(self) -> list[Account]:
        """Return every account, oldest first (read-only)."""
        return sorted(self._accounts.values(), key=lambda account: account.uuid)

    def update(
        self,
        uuid: int,
        *,
        username: str | None = None,
        password: str | None = None,
        email: str | None = None,
        xml: bool | None = None,
    ) -> Account:
        """Change the given fields of ``uuid``; raise ConflictError on a taken username."""
        account = self.get(uuid)
        if username is not None:
            self._ensure_free(username, uuid)
        updated = replace(
            account,
            username=account.username if username is None else username,
            password=account.password if password is None else password,
            email=account.email if email is None else email,
            xml=account.xml if xml is None else xml,
        )
        self._accounts[uuid] = updated
        return updated

    def rotate_key(self, uuid: int) -> Account:
        """Give ``uuid`` a new API key; the old one stops working."""
        updated = replace(self.get(uuid), key=self._new_key(uuid))
        self._accounts[uuid] = updated
        return updated

    def delete(self, uuid: int) -> None:
        """Remove ``uuid`` and end all of its sessions."""
        self._accounts.pop(uuid, None)
        self._sessions = {token: who for token, who in self._sessions.items() if who != uuid}

    def by_password(self, username: str, password: str) -> Account | None:
        """Return the account these credentials open, or None (read-only)."""
        for account in self._accounts.values():
            if account.username == username and hmac.compare_digest(
                account.password.encode(), password.encode()
            ):
                return account
        return None

    def by_key(self, key: str) -> Account | None:
        """Return the account this API key opens, or None (read-only)."""
        for account in self._accounts.values():
            if hmac.compare_digest(account.key.encode(), key.encode()):
                return account
        return None

    def open_session(self, uuid: int) -> str:
        """Start a session for ``uuid`` and return its cookie value."""
        token = secrets.token_urlsafe(24)
        self._sessions[token] = uuid
        return token

    def close_session(self, token: str) -> None:
        """End the session ``token`` if it exists."""
        self._sessions.pop(token, None)

    def session_account(self, token: str | None) -> Account | None:
        """Return the account behind a session cookie, or None (read-only)."""
        if token is None:
            return None
        uuid = self._sessions.get(token)
        return None if uuid is None else self._accounts.get(uuid)


def _local_text(ts: datetime, zone: ZoneInfo) -> str:
    return ts.astimezone(zone).replace(tzinfo=None, microsecond=0).isoformat(sep=" ")


def account_info(account: Account, book: AccountBook, zone: ZoneInfo, *, xml: bool) -> Value:
    """Return the account as ``/session`` GET and ``/user`` POST/PUT show it.

    The vendor's XML carries an extra ``xml`` flag that its JSON does not.
    """
    info: dict[str, Value] = {
        "uuid": account.uuid,
        "project": book.project_id,
        "username": account.username,
        "email": account.email,
        "joined": _local_text(account.joined, zone),
    }
    if xml:
        info["xml"] = True
    info["project_name"] = book.project_name
    return info


def public_user(account: Account, zone: ZoneInfo) -> Value:
    """Return the public part of an account as listed by ``/user`` GET."""
    return {
        "uuid": account.uuid,
        "username": account.username,
        "email": account.email,
        "joined": Stamp(account.joined.astimezone(zone)),
    }
