"""Fixtures shared by the vendor tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meterhub.store.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """Yield an empty SQLite store in a real file, for tokens and quotas."""
    store = SQLiteStore(tmp_path / "meterhub.db")
    yield store
    store.close()
