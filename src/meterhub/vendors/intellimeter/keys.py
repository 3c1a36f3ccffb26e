"""Where an Intellimeter meter's API key comes from: the environment, or the hub's key store.

A meter names its key with the option ``key=env:NAME``. The hub cannot write the user's
environment, so a key it rotated (``meterhub meters rotate-key``) is kept in the hub's store,
beside the vendor's session tokens, and the meter names it with the option
``stored_key=store:intellimeter-key/NAME`` instead. NAME is the name the key had before, so
rotating again replaces the stored key in place. The stored key belongs to one API address
(``base_url``): the same NAME at another address is another key.
"""

from __future__ import annotations

import re

from meterhub.config import resolve_secret
from meterhub.errors import ConfigError, InputError
from meterhub.model import Meter
from meterhub.vendors.base import TokenCache

__all__ = [
    "KEY_OPTION",
    "STORED_KEY_OPTION",
    "STORED_PREFIX",
    "key_name",
    "key_reference",
    "resolve_key",
    "stored_reference",
    "stored_token_key",
]

KEY_OPTION = "key"
"""The option naming the key in the environment: ``env:NAME``."""
STORED_KEY_OPTION = "stored_key"
"""The option naming a key the hub keeps: ``store:intellimeter-key/NAME``; it wins over ``key``."""
STORED_PREFIX = "store:intellimeter-key/"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def key_reference(meter: Meter) -> str | None:
    """Return the reference of the key ``meter`` logs in with, or None when it uses a password."""
    return meter.options.get(STORED_KEY_OPTION) or meter.options.get(KEY_OPTION) or None


def key_name(reference: str) -> str:
    """Return NAME of ``env:NAME`` or ``store:intellimeter-key/NAME``; raise ConfigError otherwise."""
    for prefix in ("env:", STORED_PREFIX):
        if reference.startswith(prefix) and _NAME.match(reference[len(prefix) :]):
            return reference[len(prefix) :]
    raise ConfigError(
        f"an Intellimeter key reference must look like env:NAME or {STORED_PREFIX}NAME, not {reference!r}"
    )


def stored_reference(name: str) -> str:
    """Return the option value naming the stored key ``name``."""
    if not _NAME.match(name):
        raise InputError(f"{name!r} is not a key name (letters, digits and _)")
    return STORED_PREFIX + name


def stored_token_key(base_url: str, name: str) -> str:
    """Return the token-cache key the stored key ``name`` of the API at ``base_url`` is kept under."""
    return f"apikey|{base_url.rstrip('/')}|{name}"


async def resolve_key(reference: str, base_url: str, tokens: TokenCache) -> str:
    """Return the key a reference names, from the environment or the hub's store."""
    if not reference.startswith(STORED_PREFIX):
        return resolve_secret(reference)
    name = key_name(reference)
    key = await tokens.get(stored_token_key(base_url, name), margin_s=0.0)
    if key is None:
        raise ConfigError(
            f"the rotated Intellimeter key {reference} is not in this hub's store (another database?); "
            f"set the option key=env:NAME to the account's current key and remove {STORED_KEY_OPTION}"
        )
    return key
