"""Fixtures for the Store contract suite: every test runs against SQLite and PostgreSQL.

SQLite lives in a real temporary file; PostgreSQL in a fresh schema of the test server, dropped
afterwards (see ``tests/backends.py``, whose ``backend`` fixture lives in ``tests/conftest.py``).
"""

from __future__ import annotations

import pytest

from meterhub.store.base import Store
from tests.backends import Backend, require_postgres


@pytest.fixture
def store(backend: Backend) -> Store:
    """Return a migrated, empty store on the backend under test."""
    return backend.open()


@pytest.fixture
def postgres_url() -> str:
    """Return the PostgreSQL test server's URL (skip, or fail under CI, when unreachable)."""
    return require_postgres()
