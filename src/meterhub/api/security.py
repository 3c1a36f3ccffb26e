"""Secrets: password hashes, API keys, signed access tokens, and the account operations using them.

- Passwords are hashed with argon2id, slow on purpose: a password has little entropy.
- API keys read ``mh_<key_id>_<secret>``. The id finds the record; the secret is 256 random bits
  stored as its SHA-256. A fast hash is the right one for a secret that long: it cannot be
  guessed or brute-forced from the hash, and checking it costs microseconds on every request,
  where argon2 would cost tens of milliseconds. The key is shown once, when it is made.
- Access tokens are HS256 JWTs signed with a per-database secret kept in the tokens table
  (scope ``api``), so every replica on the same database accepts them. Refresh tokens are
  opaque random strings stored as their SHA-256.

Nothing here logs or returns a secret except the one answer that hands a new key or token over.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Any

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from meterhub import ids
from meterhub.errors import ConflictError, InputError, NotFoundError
from meterhub.model import ApiKey, User, UserRole, utc_now
from meterhub.store.base import Store

__all__ = [
    "KEY_PREFIX",
    "change_password",
    "check_password",
    "check_user_name",
    "create_user",
    "digest",
    "hash_password",
    "issue_api_key",
    "new_refresh_token",
    "password_fingerprint",
    "password_needs_rehash",
    "read_access_token",
    "remove_user",
    "rotate_api_key",
    "set_role",
    "sign_access_token",
    "signing_key",
    "split_api_key",
    "verify_api_key",
    "verify_password",
]

KEY_PREFIX = "mh_"
REFRESH_PREFIX = "mhr_"
PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_CHARS = 1024
SIGNING_SCOPE, SIGNING_NAME = "api", "signing_key"
_KEY_ID = re.compile(r"[0-9a-f]{12}")
_JWT_HEADER = {"alg": "HS256", "typ": "JWT"}

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
"""Verified against when a user does not exist, so timing does not tell which names exist."""


# --- passwords ----------------------------------------------------------------------------
def check_user_name(name: str) -> str:
    """Return ``name`` if it can name a user; raise InputError otherwise."""
    return ids.check_user_name(name)


def check_password(password: str) -> str:
    """Return ``password`` if it is long enough to use; raise InputError otherwise."""
    if len(password) < PASSWORD_MIN_CHARS:
        raise InputError(f"a password needs at least {PASSWORD_MIN_CHARS} characters")
    if len(password) > PASSWORD_MAX_CHARS:
        raise InputError(f"a password may have at most {PASSWORD_MAX_CHARS} characters")
    return password


def hash_password(password: str) -> str:
    """Return the argon2id hash of a password."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Tell whether ``password`` matches the hash; a missing hash costs the same and fails."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    """Tell whether a hash was made with weaker parameters than today's."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


def password_fingerprint(password_hash: str) -> str:
    """Return a short digest of a password hash; sessions die when it changes."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


# --- API keys -----------------------------------------------------------------------------
def digest(secret: str) -> str:
    """Return the SHA-256 of a high-entropy secret as hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def split_api_key(text: str) -> tuple[str, str] | None:
    """Return (key id, secret) of a text shaped like an API key, else None."""
    if not text.startswith(KEY_PREFIX):
        return None
    key_id, _, secret = text[len(KEY_PREFIX) :].partition("_")
    if not _KEY_ID.fullmatch(key_id) or len(secret) < 32:
        return None
    return key_id, secret


def verify_api_key(secret: str, stored_hash: str) -> bool:
    """Tell, in constant time, whether a key's secret matches its stored hash."""
    return hmac.compare_digest(digest(secret), stored_hash)


def _new_key(user: str, name: str, now: datetime) -> tuple[ApiKey, str, str]:
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    record = ApiKey(key_id, user, name, f"{KEY_PREFIX}{key_id}", now)
    return record, f"{KEY_PREFIX}{key_id}_{secret}", digest(secret)


def issue_api_key(store: Store, user: str, name: str = "", now: datetime | None = None) -> tuple[ApiKey, str]:
    """Make a key for a user; return its record and the key itself, to be shown once."""
    ids.check_label(name, "key name")
    store.get_user(user)
    record, text, key_hash = _new_key(user, name, now or utc_now())
    store.add_api_key(record, key_hash)
    return record, text


def rotate_api_key(store: Store, key_id: str, now: datetime | None = None) -> tuple[ApiKey, str]:
    """Replace a key by a new one of the same user and name, and revoke the old one."""
    found = store.api_key_by_id(key_id)
    if found is None:
        raise NotFoundError(f"unknown API key {key_id!r} (see 'meterhub keys list')")
    old = found[0]
    if old.revoked:
        raise InputError(f"API key {key_id} is revoked; create a new one instead")
    record, text = issue_api_key(store, old.user, old.name, now)
    store.revoke_api_key(key_id)
    return record, text


# --- users --------------------------------------------------------------------------------
def create_user(store: Store, name: str, role: UserRole, password: str) -> User:
    """Add a user with a checked name and an argon2-hashed password."""
    store.add_user(check_user_name(name), UserRole(role), hash_password(check_password(password)))
    return store.get_user(name)


def change_password(store: Store, name: str, password: str) -> None:
    """Set a user's password (which ends the user's sign-in sessions)."""
    store.get_user(name)
    store.set_user_password(name, hash_password(check_password(password)))


def _keep_an_admin(store: Store, name: str) -> None:
    others = [u for u in store.list_users() if u.role is UserRole.ADMIN and u.name != name]
    if store.get_user(name).role is UserRole.ADMIN and not others:
        raise ConflictError(f"{name} is the last admin; make another admin first")


def set_role(store: Store, name: str, role: UserRole) -> User:
    """Change a user's role, keeping at least one admin."""
    if UserRole(role) is not UserRole.ADMIN:
        _keep_an_admin(store, name)
    store.set_user_role(name, UserRole(role))
    return store.get_user(name)


def remove_user(store: Store, name: str) -> None:
    """Remove a user with their keys and shares, keeping at least one admin."""
    _keep_an_admin(store, name)
    store.remove_user(name)


# --- access and refresh tokens ------------------------------------------------------------
def signing_key(store: Store, *, reload: bool = False) -> bytes:
    """Return the database's token signing key, making one on first use."""
    found = store.token_get(SIGNING_SCOPE, SIGNING_NAME)
    if found is None:
        store.token_set(SIGNING_SCOPE, SIGNING_NAME, secrets.token_hex(32), None)
        found = store.token_get(SIGNING_SCOPE, SIGNING_NAME)
        assert found is not None
    return bytes.fromhex(found[0])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_access_token(key: bytes, claims: dict[str, Any]) -> str:
    """Return an HS256 JWT carrying ``claims``."""
    head = f"{_b64(orjson.dumps(_JWT_HEADER))}.{_b64(orjson.dumps(claims))}"
    signature = hmac.new(key, head.encode(), hashlib.sha256).digest()
    return f"{head}.{_b64(signature)}"


def read_access_token(
    key: bytes, token: str, now_s: float, *, check_expiry: bool = True
) -> dict[str, Any] | None:
    """Return the claims of a valid, unexpired access token signed with ``key``, else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = orjson.loads(_unb64(parts[0]))
        expected = hmac.new(key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        if header != _JWT_HEADER or not hmac.compare_digest(expected, _unb64(parts[2])):
            return None
        claims = orjson.loads(_unb64(parts[1]))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        return None
    if not isinstance(claims, dict) or claims.get("typ") != "access":
        return None
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("sid"), str):
        return None
    if check_expiry and not (isinstance(claims.get("exp"), int) and claims["exp"] > now_s):
        return None
    return claims


def new_refresh_token() -> str:
    """Return a new opaque refresh token."""
    return REFRESH_PREFIX + secrets.token_urlsafe(32)
