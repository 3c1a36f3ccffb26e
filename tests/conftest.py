"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends import BACKENDS, Backend
from tests.mqttbroker import require_broker


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Yield the place this test's stores live, once per backend."""
    place = Backend(request.param, tmp_path)
    try:
        yield place
    finally:
        place.close()


@pytest.fixture
def broker() -> None:
    """Fail on CI, skip elsewhere, when no Mosquitto listens on 127.0.0.1:1883."""
    require_broker()
