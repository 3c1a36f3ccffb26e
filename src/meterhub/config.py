"""Settings: environment variables with the ``METERHUB_`` prefix.

Secrets are never stored in settings as values: connection options hold references such as
``env:IAMMETER_PASSWORD`` that are resolved when used.
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from meterhub.errors import ConfigError

__all__ = ["Settings", "resolve_secret"]


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


def resolve_secret(reference: str) -> str:
    """Return the secret a reference names: ``env:NAME`` reads the environment variable NAME."""
    kind, _, name = reference.partition(":")
    if kind != "env" or not name:
        raise ConfigError(f"secret reference {reference!r} must look like env:VARIABLE_NAME")
    value = os.environ.get(name)
    if value is None:
        raise ConfigError(f"environment variable {name} (named by a secret reference) is not set")
    return value
