"""``rollup_rows``: how much a history read reads, told before it reads (to choose where it runs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from meterhub.history import rollup_rows

START = datetime(2026, 1, 5, tzinfo=UTC)


def test_rollup_buckets_count_the_quarter_hours_they_span() -> None:
    end = START + timedelta(days=23)
    rows = rollup_rows(START, end, points=1000, bucket=None)  # hourly buckets
    assert rows is not None and 23 * 96 <= rows <= 23 * 96 + 8
    day_rows = rollup_rows(START, end, points=None, bucket="1d")
    assert day_rows is not None and day_rows >= 23 * 96


def test_narrow_buckets_read_raw_readings() -> None:
    assert rollup_rows(START, START + timedelta(days=1), points=1000, bucket=None) is None  # 90 s
    assert rollup_rows(START, START + timedelta(hours=1), points=None, bucket="15m") is not None
