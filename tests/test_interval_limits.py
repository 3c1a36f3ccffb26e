"""Interval energy records pass the same kind of validation as readings before they are stored."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from meterhub.ingest import validate_interval
from meterhub.model import IntervalEnergy

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def record(start: datetime, import_kwh: float | None, export_kwh: float | None = 0.0) -> IntervalEnergy:
    return IntervalEnergy("m", start, start + HOUR, import_kwh, export_kwh, "test")


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (record(NOW - 2 * HOUR, -0.5), "interval import energy -0.5 kWh outside 0..10000 kWh"),
        (record(NOW - 2 * HOUR, 1.0, math.nan), "interval export energy nan kWh"),
        (record(NOW - 2 * HOUR, math.inf), "interval import energy inf kWh"),
        (record(NOW - 2 * HOUR, 10_000.001), "(10 MW over 1 h)"),
        (record(datetime(1999, 12, 31, 23, tzinfo=UTC), 1.0), "before 2000-01-01"),
        (record(NOW, 1.0), "more than 5 minutes in the future"),
    ],
)
def test_impossible_interval_records_are_rejected_with_their_reason(bad: IntervalEnergy, reason: str) -> None:
    found = validate_interval(bad, NOW + timedelta(minutes=5))
    assert found is not None and reason in found


def test_possible_interval_records_pass() -> None:
    latest_allowed = NOW + timedelta(minutes=5)
    for good in (record(NOW - HOUR, 0.0), record(NOW - HOUR, 10_000.0, None), record(NOW - HOUR, None, 3.2)):
        assert validate_interval(good, latest_allowed) is None
