"""meter_status against real stores: quota use through QuotaGuard, backfill progress, health, data age."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import cast

import anyio
import httpx
import pytest

from meterhub.errors import UnknownMeterError
from meterhub.model import Meter, Reading
from meterhub.poller.backfill import BackfillJob, BackfillLedger
from meterhub.poller.connectors import ConnectorClass
from meterhub.poller.recovery import recovery_key
from meterhub.status import BackfillStatus, QuotaStatus, meter_status
from meterhub.store.base import Store
from meterhub.vendors.base import ConnectorContext, QuotaGuard, QuotaRule, TokenCache
from meterhub.vendors.registry import load_connector
from meterhub.vendors.smartmac.connector import SmartmacConnector
from meterhub.vendors.smartmac.simulator import create_app
from tests.backends import Backend

T0 = datetime(2026, 6, 10, 10, 30, tzinfo=UTC)
SM_DEVID, SM_DEVPASS = "1728053249", "012345"
"""The simulated smart-MAC device of seed 1."""

METERS = {
    "iammeter": Meter("iam", "iammeter", 3, "Europe/Oslo", 300, "", {
        "sn": "ab12cd", "username": "owner@example.org", "password": "env:T_STATUS_PASSWORD"}),
    "smartmac": Meter("sm", "smartmac", 3, "Europe/Oslo", 60, "", {
        "devid": "env:T_STATUS_DEVID", "devpass": "env:T_STATUS_PIN"}),
    "intellimeter": Meter("im", "intellimeter", 1, "America/Toronto", 300, "", {
        "key": "env:T_STATUS_KEY", "point": "Main"}),
    "amsreader": Meter("ams", "amsreader", 3, "Europe/Oslo", 10, "", {"host": "10.0.0.206"}),
    "umeter": Meter("um", "umeter", 1, "Europe/Amsterdam", 900, "", {
        "username": "env:T_STATUS_USER", "password": "env:T_STATUS_PASSWORD", "ean": "871685900000000001"}),
}  # fmt: skip
"""One meter of each vendor, secrets (and some ids) as references."""

RULES_TAKEN = {
    "iammeter": [
        "login_hourly",
        "login_daily",
        "meterdata",
        "powerAnalysis",
        "offlineAnalysis",
        "metersdata",
    ],
    "smartmac": ["getdata_standard"],
    "intellimeter": ["session", "data", "interval", "file", "point", "key"],
    "amsreader": ["http"],
    "umeter": ["token", "api"],
}
SECRETS = {
    "T_STATUS_PASSWORD": "pw-not-to-show",
    "T_STATUS_DEVID": "dev-not-to-show",
    "T_STATUS_PIN": "pin-not-to-show",
    "T_STATUS_KEY": "key-not-to-show",
    "T_STATUS_USER": "account-not-to-show@example.org",
}


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def _take(store: Store, vendor: str, rule: str, scope_key: str, at: datetime, times: int = 1) -> None:
    """Take quota slots as a connector does, through the persisted QuotaGuard."""
    quotas: tuple[QuotaRule, ...] = cast(ConnectorClass, load_connector(vendor)).quotas
    guard = QuotaGuard(store, vendor, quotas, now=lambda: at)
    for _ in range(times):
        anyio.run(guard.acquire, rule, scope_key)


def _quota(quotas: tuple[QuotaStatus, ...], rule: str) -> QuotaStatus:
    return next(q for q in quotas if q.rule == rule)


@pytest.mark.usefixtures("secrets")
def test_every_vendor_meter_gets_the_rules_it_takes_and_no_key_or_secret_shows(backend: Backend) -> None:
    store = backend.open()
    for meter in METERS.values():
        store.add_meter(meter)
    found = {status.vendor: status for status in meter_status(store, now=T0)}
    assert {vendor: [q.rule for q in found[vendor].quotas] for vendor in METERS} == RULES_TAKEN
    for status in found.values():
        assert status.config_error is None
        assert all(q.used_calls == 0 and q.left_calls == q.limit_calls for q in status.quotas), status
    shown = repr([dataclasses.asdict(status) for status in found.values()])
    for hidden in (*SECRETS.values(), "owner@example.org", "AB12CD", "10.0.0.206"):
        assert hidden not in shown
    assert found["umeter"].poll_interval_s == 900
    assert found["amsreader"].poll_interval_s == 10


@pytest.mark.usefixtures("secrets")
def test_quota_used_and_left_follow_the_slots_taken_through_the_guard(backend: Backend) -> None:
    store = backend.open()
    for meter in METERS.values():
        store.add_meter(meter)
    # the keys the connectors have always taken their slots under
    _take(store, "iammeter", "meterdata", "AB12CD", T0, times=3)
    _take(store, "iammeter", "metersdata", "owner@example.org", T0)
    _take(store, "smartmac", "getdata_standard", SECRETS["T_STATUS_DEVID"], T0)
    _take(store, "intellimeter", "session", "https://api.intellimeter.ca|key=env:T_STATUS_KEY", T0, times=2)
    _take(store, "umeter", "api", f"auth.umeter.nl:{SECRETS['T_STATUS_USER']}", T0, times=5)
    _take(store, "amsreader", "http", "http://10.0.0.206", T0 + timedelta(seconds=29))  # a 2 s window

    found = {s.vendor: s for s in meter_status(store, now=T0 + timedelta(seconds=30))}
    assert _quota(found["iammeter"].quotas, "meterdata") == QuotaStatus("meterdata", "meter", 12, 3600, 3, 9)
    assert _quota(found["iammeter"].quotas, "metersdata").left_calls == 0
    assert _quota(found["iammeter"].quotas, "login_hourly").used_calls == 0
    assert _quota(found["smartmac"].quotas, "getdata_standard") == QuotaStatus(
        "getdata_standard", "meter", 1, 60, 1, 0
    )
    assert _quota(found["intellimeter"].quotas, "session").used_calls == 2
    assert _quota(found["intellimeter"].quotas, "data").used_calls == 0
    assert _quota(found["umeter"].quotas, "api") == QuotaStatus("api", "account", 240, 3600, 5, 235)
    assert _quota(found["amsreader"].quotas, "http").used_calls == 1

    later = {s.vendor: s for s in meter_status(store, now=T0 + timedelta(seconds=61))}
    assert _quota(later["smartmac"].quotas, "getdata_standard").left_calls == 1
    assert _quota(later["iammeter"].quotas, "meterdata").used_calls == 3  # an hour's window


def test_a_real_connector_call_is_counted_under_the_key_the_status_reads(
    monkeypatch: pytest.MonkeyPatch, backend: Backend
) -> None:
    monkeypatch.setenv("T_STATUS_DEVID", SM_DEVID)
    monkeypatch.setenv("T_STATUS_PIN", SM_DEVPASS)
    store = backend.open()
    meter = Meter("sm", "smartmac", 3, "Europe/Oslo", 6, "", {
        "base_url": "http://192.168.4.1", "devid": "env:T_STATUS_DEVID", "devpass": "env:T_STATUS_PIN",
        "rate_class": "extended"})  # fmt: skip
    store.add_meter(meter)

    async def poll_once() -> None:
        app = create_app(seed=1, speed=0.0, start=T0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://192.168.4.1") as http:
            context = ConnectorContext(
                http,
                TokenCache(store, "smartmac", lambda: T0),
                QuotaGuard(store, "smartmac", SmartmacConnector.quotas, lambda: T0),
                lambda: T0,
            )
            fetched = await SmartmacConnector(meter, context).latest()
            assert fetched.readings

    anyio.run(poll_once)
    (status,) = meter_status(store, ["sm"], now=T0 + timedelta(seconds=2))
    assert status.poll_interval_s == 6  # the device's own rate class, not the vendor's 60 s
    assert status.quotas == (QuotaStatus("getdata_extended", "meter", 1, 6, 1, 0),)
    assert SM_DEVID not in repr(status)


def test_backfill_progress_of_the_open_job(backend: Backend) -> None:
    store = backend.open()
    store.add_meter(METERS["amsreader"])
    store.add_meter(Meter("done", "file"))
    ledger = BackfillLedger(store)
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 11, tzinfo=UTC)
    job = BackfillJob("ams", start, end, start + timedelta(days=4))
    anyio.run(ledger.save, "ams", job)
    anyio.run(ledger.save, "done", BackfillJob("done", start, end, end))

    found = {s.meter_id: s.backfill for s in meter_status(store, now=T0)}
    assert found == {
        "ams": BackfillStatus("backfill", start, end, start + timedelta(days=4), 40.0),
        "done": None,
    }

    anyio.run(ledger.save, "ams", dataclasses.replace(job, done_until=end))
    recovering = BackfillJob("ams", T0 - timedelta(hours=4), T0, T0 - timedelta(hours=1))
    anyio.run(ledger.save, recovery_key("ams"), recovering)
    (status,) = meter_status(store, ["ams"], now=T0)
    assert status.backfill == BackfillStatus("recovery", recovering.start, T0, recovering.done_until, 75.0)


def test_failures_last_error_and_newest_reading(backend: Backend) -> None:
    store = backend.open()
    store.add_meter(METERS["amsreader"])
    store.add_meter(Meter("quiet", "file", tz="Europe/Oslo"))
    store.record_health("ams", True, T0 - timedelta(minutes=10))
    store.record_health("ams", False, T0 - timedelta(minutes=5), "VendorUnavailable: the reader is away")
    store.record_health("ams", False, T0 - timedelta(minutes=4), "VendorUnavailable: still away")
    store.write_readings(
        [
            Reading("ams", T0 - timedelta(minutes=10, seconds=30), 0, power_w=512.0),
            Reading("ams", T0 - timedelta(minutes=10), 1, power_w=170.0),
        ]
    )

    ams, quiet = meter_status(store, ["ams", "quiet"], now=T0)
    assert (ams.online, ams.consecutive_failures) == (False, 2)
    assert ams.last_success == T0 - timedelta(minutes=10)
    assert (ams.last_error, ams.last_error_at) == ("VendorUnavailable: still away", T0 - timedelta(minutes=4))
    assert ams.newest_reading_at == T0 - timedelta(minutes=10)
    assert ams.newest_reading_age_s == 600.0
    assert ams.poll_interval_s == 10
    assert (quiet.online, quiet.poll_interval_s, quiet.quotas, quiet.newest_reading_at) == (
        None,
        None,
        (),
        None,
    )

    store.record_health("ams", True, T0)
    (ams,) = meter_status(store, ["ams"], now=T0)
    assert (ams.online, ams.consecutive_failures, ams.last_success) == (True, 0, T0)


def test_an_unset_reference_leaves_counts_unknown_and_says_why(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("T_STATUS_USER", raising=False)
    store = backend.open()
    store.add_meter(METERS["umeter"])
    (status,) = meter_status(store, now=T0)
    assert [(q.rule, q.used_calls, q.left_calls) for q in status.quotas] == [
        ("token", None, None),
        ("api", None, None),
    ]
    assert status.config_error is not None and "T_STATUS_USER" in status.config_error


def test_meters_asked_for_come_in_that_order_and_an_unknown_one_is_refused(backend: Backend) -> None:
    store = backend.open()
    for meter_id in ("a", "b"):
        store.add_meter(Meter(meter_id, "file"))
    assert [s.meter_id for s in meter_status(store, ["b", "a"], now=T0)] == ["b", "a"]
    assert meter_status(store, [], now=T0) == []
    with pytest.raises(UnknownMeterError):
        meter_status(store, ["nope"], now=T0)
