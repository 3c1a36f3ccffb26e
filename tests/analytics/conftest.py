"""A real SQLite store in a temporary file for the analytics tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meterhub.store.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    db = SQLiteStore(tmp_path / "analytics.db")
    yield db
    db.close()
