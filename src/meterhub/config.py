"""Settings: environment variables with the ``METERHUB_`` prefix.

Secrets are never stored in settings as values: connection options hold references that are
resolved when used: ``env:IAMMETER_PASSWORD`` (an environment variable) or
``file:/etc/meterhub/iammeter-password`` (a file only its owner may read, as systemd credentials,
Docker secrets and ``meterhub demo`` keep them).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from meterhub.errors import ConfigError

__all__ = [
    "MAX_SECRET_FILE_BYTES",
    "REFERENCE_SHAPES",
    "Settings",
    "is_secret_reference",
    "resolve_secret",
    "secret_reference_problem",
]

REFERENCE_SHAPES = "env:VARIABLE_NAME or file:/absolute/path"
"""How a secret reference looks, for error messages."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")

MAX_SECRET_FILE_BYTES = 4096
"""The largest file a ``file:`` reference may name: a secret, not a document."""


class Settings(BaseSettings):
    """Process-wide settings read from the environment."""

    model_config = SettingsConfigDict(env_prefix="METERHUB_", extra="ignore")

    database_url: str = "sqlite:///meterhub.db"
    """Where data lives: ``sqlite:///path/to/file.db`` (default ./meterhub.db) or ``postgresql://...``."""

    default_tz: str | None = None
    """The zone of meters and places added without one, when the hub setting names none."""

    import_batch_rows: int = 50_000
    """Rows per transaction when importing files."""

    api_rate_per_s: Annotated[float, Field(ge=0)] = 50.0
    """Requests per second each API key or signed-in session may make on average (0: no limit)."""

    api_rate_burst: Annotated[int, Field(ge=1)] = 200
    """Requests an API key or session may make at once before the average rate applies."""

    access_token_ttl_s: Annotated[int, Field(ge=10)] = 900
    """Lifetime of an access token from ``POST /api/v1/auth/token``, in seconds."""

    refresh_token_ttl_s: Annotated[int, Field(ge=60)] = 30 * 86_400
    """Lifetime of a refresh token (and of the sign-in session it keeps), in seconds."""

    web_session_idle_s: Annotated[int, Field(ge=60)] = 12 * 3600
    """How long a dashboard sign-in lasts without a request before it ends, in seconds."""

    login_free_attempts: Annotated[int, Field(ge=0)] = 5
    """Failed sign-ins per user and per address before each further one locks them out a while."""

    login_lock_base_s: Annotated[float, Field(gt=0)] = 1.0
    """The first lock-out after the free attempts, in seconds; it doubles with each failure."""

    login_lock_max_s: Annotated[float, Field(gt=0)] = 900.0
    """The longest lock-out after failed sign-ins, in seconds."""


def is_secret_reference(value: str) -> bool:
    """Tell whether an option value is a secret reference (``env:NAME`` or ``file:/path``)."""
    return value.startswith(("env:", "file:"))


def secret_reference_problem(reference: str) -> str | None:
    """Return why ``reference`` is not a well-formed secret reference, or None when it is.

    Only its form is checked; whether the variable is set or the file readable is checked when
    the secret is used.
    """
    kind, _, name = reference.partition(":")
    if kind == "env":
        if _ENV_NAME.fullmatch(name):
            return None
        return f"{reference!r}: env: takes the NAME of an environment variable (letters, digits and _)"
    if kind == "file":
        if name.startswith("/") and "\0" not in name and len(name) <= 1024:
            return None
        return f"{reference!r}: file: takes an absolute path, such as file:/etc/meterhub/password"
    return f"secret reference {reference!r} must look like {REFERENCE_SHAPES}"


def resolve_secret(reference: str) -> str:
    """Return the secret a reference names.

    ``env:NAME`` reads the environment variable NAME. ``file:/path`` reads that file, without a
    final line break; the file must be a regular file of at most 4 KiB that neither its group nor
    others may read (``chmod 600``), as ssh asks of a private key, so a reference cannot be
    pointed at a system file the hub happens to be able to read.
    """
    problem = secret_reference_problem(reference)
    if problem is not None:
        raise ConfigError(problem)
    kind, _, name = reference.partition(":")
    if kind == "env":
        value = os.environ.get(name)
        if value is None:
            raise ConfigError(f"environment variable {name} (named by a secret reference) is not set")
        return value
    return _read_secret_file(Path(name))


def _read_secret_file(path: Path) -> str:
    try:
        status = path.stat()
    except OSError as exc:
        raise ConfigError(f"secret file {path} (named by a secret reference): {exc.strerror or exc}") from exc
    if not stat.S_ISREG(status.st_mode):
        raise ConfigError(f"secret file {path} is not a regular file")
    if status.st_mode & 0o077:
        raise ConfigError(
            f"secret file {path} may be read by others (mode {stat.S_IMODE(status.st_mode):o}); "
            f"run: chmod 600 {path}"
        )
    if status.st_size > MAX_SECRET_FILE_BYTES:
        raise ConfigError(f"secret file {path} is larger than {MAX_SECRET_FILE_BYTES} bytes")
    try:
        text = path.read_bytes()[:MAX_SECRET_FILE_BYTES].decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read secret file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"secret file {path} is not UTF-8 text") from exc
    return text.removesuffix("\n").removesuffix("\r")
