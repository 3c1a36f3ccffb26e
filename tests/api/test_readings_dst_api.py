"""Daily buckets of ``GET /api/v1/meters/{id}/readings`` are local days across DST, with their ends.

The household and the expected days are those of the CLI's test (tests/cli/test_readings_dst.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from meterhub.model import Meter
from tests.api.conftest import ApiServer
from tests.cli.test_readings_dst import AUTUMN, EXPECTED_DAYS, SPRING, check_days, day_start, steady_readings


@pytest.mark.parametrize("days", [SPRING, AUTUMN], ids=["spring", "autumn"])
def test_api_daily_buckets_are_local_days_with_their_ends(api: ApiServer, days: tuple[str, str]) -> None:
    api.store.add_meter(Meter("house", "file", phases=1, tz="Europe/Oslo", interval_s=900))
    first = datetime.fromisoformat(days[0]) - timedelta(days=1)
    api.store.write_readings(steady_readings(first.date().isoformat(), 5))
    answer = api.client(api.admin_key).get(
        "/api/v1/meters/house/readings",
        params={"start": days[0], "end": days[1], "bucket": "1d", "fields": "count,energy_import_kwh"},
    )
    assert answer.status_code == 200, answer.text
    rows = answer.json()["data"]
    check_days(rows, EXPECTED_DAYS[days])
    spans_h = [(day_start(r["end"]) - day_start(r["start"])) / timedelta(hours=1) for r in rows]
    assert spans_h == [hours for _, hours in EXPECTED_DAYS[days]]
