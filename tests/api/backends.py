"""Serve the real app on either backend: a SQLite file, or a fresh schema of the test PostgreSQL.

``hub_on`` is a fixture parametrised over both backends: ``hub_on(**settings)`` starts an
:class:`ApiServer` (see ``conftest.py``) on the backend under test; its PostgreSQL schema is
dropped afterwards. PostgreSQL follows the store suite's rule: unreachable, it skips on a
developer's machine and fails under ``CI=true``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from meterhub.config import Settings
from tests.api.conftest import ApiServer
from tests.backends import BACKENDS, require_postgres, schema_url

__all__ = ["BACKENDS", "hub_on", "postgres_schema_url"]


def postgres_schema_url(schema: str) -> str:
    """Return the test server's URL keeping meterhub's tables in ``schema``."""
    return schema_url(require_postgres(), schema)


@pytest.fixture(params=BACKENDS)
def hub_on(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., ApiServer]]:
    """Yield ``serve(**settings)``, starting a hub on the backend under test."""
    servers: list[ApiServer] = []
    schemas: list[str] = []

    def serve(**overrides: Any) -> ApiServer:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / f'hub{len(servers)}.db'}"
        else:
            schemas.append(f"t_{uuid.uuid4().hex[:16]}")
            url = postgres_schema_url(schemas[-1])
        server = ApiServer(url, Settings(database_url=url, **overrides))
        servers.append(server)
        return server.start()

    try:
        yield serve
    finally:
        for server in servers:
            server.stop()
        if schemas:
            with psycopg.connect(require_postgres(), autocommit=True) as conn:
                for schema in schemas:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
