"""The capacity answer names the days it has no hourly data for, instead of making up a peak."""

from __future__ import annotations

import httpx

from meterhub.store.sqlite import SQLiteStore
from tests.analytics.test_capacity_reader_peaks import five_days
from tests.api.conftest import ApiServer


def test_a_day_with_only_a_daily_total_is_named_missing(api: ApiServer, admin: httpx.Client) -> None:
    assert isinstance(api.store, SQLiteStore)
    five_days(api.store, {"capacity_thresholds_kwh": [2.0, 5.0, 10.0], "capacity_peak_days": 3})
    answer = admin.get("/api/v1/places/home/capacity", params={"month": "2026-03"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # The 3rd and the 5th hold only a daily total (48 and 72 kWh) and no reader peak is given:
    # neither becomes a 00:00 peak worth a 24th of the day. The month is over, so the days
    # from the 6th on, with no data at all, are missing too.
    assert body["missing_days"] == ["2026-03-03", "2026-03-05", *(f"2026-03-{d:02d}" for d in range(6, 32))]
    assert [p["day"] for p in body["day_peaks"]] == ["2026-03-01", "2026-03-02", "2026-03-04"]
    assert body["estimated"] is True
    # By hand: the top three of 6.0, 4.0 and 5.0 kWh average 5.0, in the 5 step, 10 next.
    assert body["month_value_kwh"] == 5.0 and body["step_kwh"] == 5.0 and body["next_threshold_kwh"] == 10.0
