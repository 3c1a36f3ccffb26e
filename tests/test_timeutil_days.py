"""Day words in times: local midnights of yesterday, today and tomorrow, across a DST change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from meterhub.errors import InputError
from meterhub.timeutil import parse_time

# 2026-03-29 is the spring change in Oslo: 02:00 local becomes 03:00 (UTC+1 to UTC+2).
NOW = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("yesterday", datetime(2026, 3, 27, 23, 0, tzinfo=UTC)),  # 28 March, 00:00 +01:00
        ("Today", datetime(2026, 3, 28, 23, 0, tzinfo=UTC)),  # 29 March, 00:00 +01:00
        ("tomorrow", datetime(2026, 3, 29, 22, 0, tzinfo=UTC)),  # 30 March, 00:00 +02:00
    ],
)
def test_day_words_are_local_midnights(word: str, expected: datetime) -> None:
    assert parse_time(word, "Europe/Oslo", now=NOW) == expected


def test_a_misspelt_word_names_what_is_accepted() -> None:
    with pytest.raises(InputError) as refused:
        parse_time("yestarday", "Europe/Oslo", now=NOW)
    assert "yesterday, today or tomorrow" in str(refused.value)
