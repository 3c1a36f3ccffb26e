"""``meterhub status`` on a real SQLite file: the table in each meter's zone, JSON in UTC."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import anyio
import pytest

from meterhub.model import Meter
from meterhub.poller.backfill import BackfillJob, BackfillLedger
from meterhub.store import open_store
from meterhub.vendors.base import QuotaGuard
from meterhub.vendors.iammeter.connector import IammeterConnector
from tests.cli.conftest import Run

SUCCESS = datetime(2025, 3, 2, 9, 0, 0, 123000, tzinfo=UTC)  # the store keeps milliseconds
FAILURE = datetime(2025, 3, 2, 9, 5, 7, tzinfo=UTC)
START = datetime(2025, 10, 31, 23, 0, tzinfo=UTC)  # 2025-11-01 00:00 in Oslo
END = datetime(2025, 11, 30, 23, 0, tzinfo=UTC)  # 2025-12-01 00:00 in Oslo
DONE = datetime(2025, 11, 12, 23, 0, tzinfo=UTC)  # 12 of 30 days: 40 %


@pytest.fixture
def seeded(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    store = open_store(db_url)
    try:
        options = {"sn": "ab12cd", "username": "owner@example.org", "password": "env:T_CLI_STATUS_PASSWORD"}
        store.add_meter(Meter("iam", "iammeter", 3, "Europe/Oslo", 60, "House", options))
        store.add_meter(Meter("upload", "file", 1, "UTC", 60, "Imported"))
        store.record_health("iam", True, SUCCESS)
        store.record_health("iam", False, FAILURE, "VendorUnavailable: the cloud is away")
        anyio.run(BackfillLedger(store).save, "iam", BackfillJob("iam", START, END, DONE))
        guard = QuotaGuard(store, "iammeter", IammeterConnector.quotas)  # the slots are taken now
        for _ in range(3):
            anyio.run(guard.acquire, "meterdata", "AB12CD")
    finally:
        store.close()


@pytest.mark.usefixtures("seeded")
def test_the_table_shows_cadence_health_quota_and_backfill_in_the_meters_zone(run: Run) -> None:
    out = run("status").stdout
    iam = next(line for line in out.splitlines() if "│ iam " in line)
    for shown in ("iammeter", "every 300 s", "offline", " 1 ", " days ago", "login_hourly 5/5 per hour",
                  "VendorUnavailable: the cloud is away (2025-03-02 10:05:07 Europe/Oslo)",
                  "40% to 2025-11-30"):  # fmt: skip
        assert shown in iam, (shown, out)
    assert "2025-03-02 10:00:00 Europe/Oslo" in out  # the last success, to the second
    assert "meterdata 9/12 per hour" in out and "metersdata 1/1 per 5 minutes" in out
    assert ".123" not in out and "owner@example.org" not in out and "AB12CD" not in out
    upload = next(line for line in out.splitlines() if "│ upload " in line)
    assert "not polled" in upload and "never" in upload


@pytest.mark.usefixtures("seeded")
def test_json_keeps_utc_iso_and_only_the_meters_asked_for(run: Run) -> None:
    (item,) = json.loads(run("status", "iam", "--format", "json").stdout)
    assert item["meter_id"] == "iam"
    assert item["poll_interval_s"] == 300
    assert (item["online"], item["consecutive_failures"]) == (False, 1)
    assert item["last_success"] == "2025-03-02T09:00:00.123000Z"
    assert item["last_error_at"] == "2025-03-02T09:05:07Z"
    assert item["backfill"] == {
        "kind": "backfill",
        "start": "2025-10-31T23:00:00Z",
        "end": "2025-11-30T23:00:00Z",
        "done_until": "2025-11-12T23:00:00Z",
        "percent_done": 40.0,
    }
    meterdata = next(q for q in item["quotas"] if q["rule"] == "meterdata")
    assert meterdata == {"rule": "meterdata", "scope": "meter", "limit_calls": 12, "window_s": 3600,
                         "used_calls": 3, "left_calls": 9}  # fmt: skip


@pytest.mark.usefixtures("seeded")
def test_an_unknown_meter_is_one_line_of_error(run: Run) -> None:
    result = run("status", "iam", "nope", ok=False)
    assert result.exit_code == 1
    assert "nope" in result.stderr and result.stdout == ""
