"""Settings: environment variables with the ``METERHUB_`` prefix.

Secrets are never stored in settings as values: connection options hold references such as
``env:IAMMETER_PASSWORD`` that are resolved when used.
"""

from __future__ import annotations

import os

from pydantic_settings import BaseSettings, SettingsConfigDict

from meterhub.errors import ConfigError

__all__ = ["Settings", "resolve_secret"]


class Settings(BaseSettings):
    """Process-wide settings read from the environment."""

    model_config = SettingsConfigDict(env_prefix="METERHUB_", extra="ignore")

    database_url: str = "sqlite:///meterhub.db"
    """Where data lives: ``sqlite:///path/to/file.db`` (default ./meterhub.db) or ``postgresql://...``."""

    import_batch_rows: int = 50_000
    """Rows per transaction when importing files."""


def resolve_secret(reference: str) -> str:
    """Return the secret a reference names: ``env:NAME`` reads the environment variable NAME."""
    kind, _, name = reference.partition(":")
    if kind != "env" or not name:
        raise ConfigError(f"secret reference {reference!r} must look like env:VARIABLE_NAME")
    value = os.environ.get(name)
    if value is None:
        raise ConfigError(f"environment variable {name} (named by a secret reference) is not set")
    return value
