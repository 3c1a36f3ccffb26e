"""JSON encoded by columns is the JSON of the same rows as dicts, byte for byte.

The latest readings and the readings history are encoded a column at a time; their bytes must
equal what encoding one dict per row gives, whatever the cells hold: NaN or None, -0.0, halves
to round, strings that need escapes, moments with and without fractions of a second.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from meterhub.api.encoding import dumps_json, iso_utc, json_records
from meterhub.api.routes.latest import latest_json
from meterhub.exporter import reading_record
from meterhub.model import Reading
from meterhub.timeutil import from_ms

T0 = datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC)
STRINGS = ["plain", "", 'a "quote"', "back\\slash", '","', "tab\there", "ünïcode ⚡", "\x01"]


def _rows(keys: list[str], columns: list[Any]) -> bytes:
    plain = [column.tolist() if isinstance(column, np.ndarray) else column for column in columns]
    return dumps_json([dict(zip(keys, row, strict=True)) for row in zip(*plain, strict=True)])


@pytest.mark.parametrize("seed", range(40))
def test_columns_encode_as_their_rows_would(seed: int) -> None:
    rng = random.Random(seed)
    rows = rng.randint(0, 12)
    floats = [rng.choice([math.nan, -0.0, 0.1, 1e16, 2.5e-8, rng.uniform(-1e6, 1e6)]) for _ in range(rows)]
    keys = ["text", "count", "value", "any", "plain"]
    columns: list[Any] = [
        [rng.choice(STRINGS) for _ in range(rows)],
        np.array([rng.randint(-(2**40), 2**40) for _ in range(rows)], dtype=np.int64),
        np.array(floats),
        [rng.choice([None, 1, 2.5, "x", True]) for _ in range(rows)],
        [f"id{k}" for k in range(rows)],
    ]
    assert json_records(keys, columns) == _rows(keys, columns)


def test_moments_encode_as_iso_texts_of_utc_datetimes() -> None:
    ts_ms = np.array([0, -1, 1_774_745_999_123, 1_774_746_000_000, -62_135_596_800_000], dtype=np.int64)
    moments = ts_ms.astype("datetime64[ms]")
    texts = [from_ms(ms).isoformat() for ms in ts_ms.tolist()]
    assert iso_utc(moments) == texts
    assert json_records(["at"], [moments]) == dumps_json([{"at": text} for text in texts])


def test_a_table_needs_one_column_per_distinct_key_of_equal_length() -> None:
    assert json_records(["a"], [np.zeros(0)]) == b"[]"
    with pytest.raises(ValueError, match="one column per key"):
        json_records(["a", "b"], [[1]])
    with pytest.raises(ValueError, match="distinct"):
        json_records(["a", "a"], [[1], [2]])
    with pytest.raises(ValueError, match="equal length"):
        json_records(["a", "b"], [[1], [1, 2]])


def _reading(rng: random.Random, k: int) -> Reading:
    def value(scale: float) -> float | None:
        return rng.choice([None, 0.0, -0.0, 0.125, 2.675, -1.0005, rng.uniform(-scale, scale)])

    ts = T0 + timedelta(seconds=k, microseconds=rng.choice([0, 123_000]))
    return Reading(f"m{k}", ts, rng.randint(0, 3), value(400), value(100), value(1e5), value(1e4),
                   value(1), value(60), value(1e7), value(1e7), value(1e3), value(1e3))  # fmt: skip


@pytest.mark.parametrize("seed", range(20))
def test_latest_readings_encode_as_their_records_would(seed: int) -> None:
    rng = random.Random(seed)
    readings = [_reading(rng, k) for k in range(rng.randint(0, 30))]
    assert latest_json(readings) == dumps_json([reading_record(r) for r in readings])
