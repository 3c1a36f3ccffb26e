"""``/api/v1/status`` and ``/api/v1/meters/{id}/status`` over loopback HTTP on a real SQLite file."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import anyio
import httpx

from meterhub.model import Meter, UserRole
from meterhub.poller.backfill import BackfillJob, BackfillLedger
from meterhub.vendors.base import QuotaGuard
from meterhub.vendors.iammeter.connector import IammeterConnector
from tests.api.conftest import ApiServer
from tests.api.seeding import OSLO, seed_household

FAILED_AT = datetime(2026, 3, 2, 9, 5, tzinfo=UTC)
ACCOUNT = "owner@example.org"


def _seed(api: ApiServer) -> None:
    """The household's file meters, and an IAMMETER meter with health, quota use and a backfill."""
    store = api.store
    seed_household(store)
    store.add_meter(Meter("iam", "iammeter", 3, OSLO, 60, "House", {
        "sn": "ab12cd", "username": ACCOUNT, "password": "env:T_API_STATUS_PASSWORD"}))  # fmt: skip
    store.record_health("iam", False, FAILED_AT, "VendorUnavailable: the cloud is away")
    guard = QuotaGuard(store, "iammeter", IammeterConnector.quotas)
    for _ in range(2):
        anyio.run(guard.acquire, "meterdata", "AB12CD")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    job = BackfillJob("iam", start, start + timedelta(days=10), start + timedelta(days=1))
    anyio.run(BackfillLedger(store).save, "iam", job)


def test_an_admin_sees_every_meters_status(api: ApiServer, admin: httpx.Client) -> None:
    _seed(api)
    answer = admin.get("/api/v1/status")
    assert answer.status_code == 200, answer.text
    found = {item["meter_id"]: item for item in answer.json()}
    assert set(found) == {"grid", "solar", "secret", "iam"}
    iam = found["iam"]
    assert (iam["vendor"], iam["poll_interval_s"], iam["online"], iam["consecutive_failures"]) == (
        "iammeter",
        300,
        False,
        1,
    )
    assert iam["last_error"] == "VendorUnavailable: the cloud is away"
    assert iam["last_error_at"] == "2026-03-02T09:05:00Z"
    meterdata = next(q for q in iam["quotas"] if q["rule"] == "meterdata")
    assert (meterdata["used_calls"], meterdata["left_calls"]) == (2, 10)
    assert iam["backfill"]["percent_done"] == 10.0
    assert found["grid"]["poll_interval_s"] is None and found["grid"]["quotas"] == []
    assert ACCOUNT not in answer.text and "AB12CD" not in answer.text


def test_a_viewer_sees_only_shared_meters_and_404_for_others(api: ApiServer) -> None:
    _seed(api)
    viewer = api.user("vera", UserRole.VIEWER, [("meter", "iam"), ("meter", "solar")])
    listed = viewer.get("/api/v1/status")
    assert listed.status_code == 200, listed.text
    assert sorted(item["meter_id"] for item in listed.json()) == ["iam", "solar"]
    one = viewer.get("/api/v1/meters/iam/status")
    assert one.status_code == 200, one.text
    assert one.json()["meter_id"] == "iam" and one.json()["backfill"]["kind"] == "backfill"
    hidden = viewer.get("/api/v1/meters/secret/status")
    missing = viewer.get("/api/v1/meters/nope/status")
    assert (hidden.status_code, missing.status_code) == (404, 404)
    assert hidden.json()["title"] == missing.json()["title"]


def test_the_list_answers_as_csv_rows(api: ApiServer, admin: httpx.Client) -> None:
    _seed(api)
    answer = admin.get("/api/v1/status", params={"format": "csv"})
    assert answer.status_code == 200, answer.text
    rows = {row["meter_id"]: row for row in csv.DictReader(io.StringIO(answer.text))}
    assert "meterdata=2/12/3600s" in rows["iam"]["quotas"]
    assert rows["iam"]["backfill_done_until"].startswith("2026-01-02T00:00:00")
    assert rows["grid"]["backfill_kind"] == ""
