"""The UMeter connector against the simulated API, with a real SQLite store for tokens and quotas."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from meterhub.errors import (
    ConfigError,
    PayloadError,
    QuotaExceeded,
    VendorAuthError,
    VendorUnavailable,
)
from meterhub.model import Meter
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.base import Connector, ConnectorContext, Fetched, QuotaGuard, TokenCache
from meterhub.vendors.umeter.connector import QUOTAS, UmeterConnector
from meterhub.vendors.umeter.payloads import local_midnight
from meterhub.vendors.umeter.simulator import UMeterSimConfig, create_app

pytestmark = pytest.mark.anyio

NOW = datetime(2022, 11, 15, 12, 0, tzinfo=UTC)  # 13:00 in Amsterdam
BASE_URL = "https://umeter.sim"
USER, PASSWORD = "demo@umeter.example", "umeter-demo"  # the simulator's published demo login
TOKEN, MEASUREMENTS = "/token", "/api/v2/measurements/{kind}/{value}"
LIFETIME_S = 86_400


def new_app(now: datetime = NOW) -> Starlette:
    return create_app(UMeterSimConfig(start=now, speed=0.0, token_lifetime_s=LIFETIME_S))


class Rig:
    """A simulated UMeter, one HTTP client, a store file and a clock shared by both sides."""

    def __init__(self, app: Starlette, http: httpx.AsyncClient, db: Path) -> None:
        self.app, self.http, self.db = app, http, db
        self.now = NOW
        self._stores: list[SQLiteStore] = []
        self.store = self.restart()

    @property
    def ean(self) -> str:
        ean: str = self.app.state.server.account.ean
        return ean

    def clock(self) -> datetime:
        return self.now

    def restart(self) -> SQLiteStore:
        self.store = SQLiteStore(self.db)
        self._stores.append(self.store)
        return self.store

    def close(self) -> None:
        for store in self._stores:
            store.close()

    def context(self) -> ConnectorContext:
        return ConnectorContext(
            self.http,
            TokenCache(self.store, "umeter", self.clock),
            QuotaGuard(self.store, "umeter", UmeterConnector.quotas, self.clock),
            self.clock,
        )

    def connector(self, **options: str) -> UmeterConnector:
        meter_options = {"base_url": BASE_URL, "username": USER, "password": "env:UMETER_TEST_PASSWORD",
                         "ean": self.ean, **options}
        meter = Meter(f"um-{self.ean}", "umeter", tz="Europe/Amsterdam", interval_s=900,
                      options=meter_options)
        return UmeterConnector(meter, self.context())

    async def move_to(self, now: datetime) -> None:
        self.now = now
        assert (await self.http.post("/_sim/clock", json={"now": now.isoformat()})).status_code == 200

    async def calls(self) -> dict[str, int]:
        calls: dict[str, int] = (await self.http.get("/_sim/calls")).json()
        return calls


@pytest.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    monkeypatch.setenv("UMETER_TEST_PASSWORD", PASSWORD)
    app = new_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL,
                                 timeout=60.0) as http:
        rig = Rig(app, http, tmp_path / "meterhub.db")
        try:
            yield rig
        finally:
            rig.close()


async def collect(chunks: AsyncIterator[Fetched]) -> list[Fetched]:
    return [chunk async for chunk in chunks]


async def test_it_satisfies_the_connector_protocol(rig: Rig) -> None:
    connector: Connector = rig.connector()
    assert connector.vendor == "umeter" and connector.min_interval_s == 900


async def test_latest_is_todays_quarter_hours_matching_the_registers(rig: Rig) -> None:
    fetched = await rig.connector().latest()
    midnight = local_midnight(date(2022, 11, 15))
    assert midnight == datetime(2022, 11, 14, 23, tzinfo=UTC)
    assert len(fetched.intervals) == 13 * 4  # 00:00 to 13:00 local
    assert fetched.intervals[0].start == midnight and fetched.intervals[-1].end == NOW
    registers = rig.app.state.server.account.registers_at
    before, after = registers(midnight), registers(NOW)
    imported = after["r181"] + after["r182"] - before["r181"] - before["r182"]
    exported = after["r281"] + after["r282"] - before["r281"] - before["r282"]
    assert sum(i.import_kwh or 0 for i in fetched.intervals) == pytest.approx(imported, abs=0.03)
    assert sum(i.export_kwh or 0 for i in fetched.intervals) == pytest.approx(exported, abs=0.03)
    (begin,) = fetched.readings
    assert begin.ts == midnight
    assert begin.energy_import_kwh == pytest.approx(before["r181"] + before["r182"], abs=0.01)
    assert {e.name for e in fetched.extras} == {"outdoor_temperature_c", "vendor_cost_eur"}


async def test_just_after_midnight_latest_falls_back_to_yesterday(rig: Rig) -> None:
    await rig.move_to(datetime(2022, 11, 14, 23, 5, tzinfo=UTC))  # 00:05 in Amsterdam
    fetched = await rig.connector().latest()
    assert len(fetched.intervals) == 96
    assert fetched.intervals[-1].end == datetime(2022, 11, 14, 23, tzinfo=UTC)
    assert (await rig.calls())[MEASUREMENTS] == 2


async def test_history_is_one_call_per_local_day_across_dst(rig: Rig) -> None:
    start, end = datetime(2022, 10, 29, 12, tzinfo=UTC), datetime(2022, 10, 31, 12, tzinfo=UTC)
    chunks = await collect(rig.connector().history(start, end))
    assert (await rig.calls())[MEASUREMENTS] == len(chunks) == 3
    intervals = [i for chunk in chunks for i in chunk.intervals]
    assert intervals[0].start == start and intervals[-1].end == end
    assert all(b.start == a.end for a, b in itertools.pairwise(intervals))
    assert len(intervals) == (end - start) // timedelta(minutes=15)
    assert len(chunks[1].intervals) == 100  # 2022-10-30 has 25 hours
    assert [r.ts for chunk in chunks for r in chunk.readings] == [
        datetime(2022, 10, 29, 22, tzinfo=UTC), datetime(2022, 10, 30, 23, tzinfo=UTC)]


async def test_history_stops_at_now(rig: Rig) -> None:
    chunks = await collect(rig.connector().history(NOW - timedelta(hours=2), NOW + timedelta(days=3)))
    assert len(chunks) == 1 and chunks[0].intervals[-1].end == NOW


async def test_tokens_are_reused_across_restarts(rig: Rig) -> None:
    await rig.connector().latest()
    rig.store.close()
    rig.restart()
    await rig.connector().latest()
    assert (await rig.calls())[TOKEN] == 1


async def test_the_token_is_refreshed_before_it_expires(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    await rig.connector().latest()
    await rig.move_to(NOW + timedelta(seconds=LIFETIME_S - 200))  # inside the refresh margin
    monkeypatch.setenv("UMETER_TEST_PASSWORD", "no longer needed")  # so only a refresh can work
    assert (await rig.connector().latest()).intervals
    assert (await rig.calls())[TOKEN] == 2
    await rig.move_to(rig.now + timedelta(minutes=15))
    await rig.connector().latest()  # the refreshed token serves on
    assert (await rig.calls())[TOKEN] == 2


async def test_a_forgotten_token_falls_back_to_a_password_login(rig: Rig) -> None:
    await rig.connector().latest()
    restarted = new_app()  # the vendor forgot every token it issued
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=restarted), base_url=BASE_URL) as http:
        rig.http = http
        assert (await rig.connector().latest()).intervals
        calls = await rig.calls()
    assert calls[TOKEN] == 2  # the refresh grant (refused), then the password grant
    assert calls[MEASUREMENTS] == 2  # refused once with the old token, then answered


async def test_wrong_password_is_an_auth_error_that_names_no_secret(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UMETER_TEST_PASSWORD", "s3cret-wrong")
    connector = rig.connector()
    with pytest.raises(VendorAuthError, match="incorrect") as caught:
        await connector.latest()
    assert "s3cret" not in _chain_text(caught.value) and "s3cret" not in repr(connector)


async def test_the_polite_quota_refuses_before_any_request(rig: Rig) -> None:
    api = next(rule for rule in QUOTAS if rule.name == "api")
    guard = QuotaGuard(rig.store, "umeter", QUOTAS, rig.clock)
    for _ in range(api.limit):  # the account's calls of the last hour (scope: token host and user)
        await guard.acquire("api", f"umeter.sim:{USER}")
    with pytest.raises(QuotaExceeded, match="api"):
        await rig.connector().latest()
    assert await rig.calls() == {}


async def test_discover_lists_the_metering_points(rig: Rig) -> None:
    (found,) = await rig.connector().discover()
    assert (found.vendor, found.tz, found.options["ean"]) == ("umeter", "Europe/Amsterdam", rig.ean)
    assert found.options["password"] == "env:UMETER_TEST_PASSWORD"
    assert found.place is not None
    place = found.place
    assert (place.place_id, place.role, place.name, place.tz) == (
        f"umeter-{rig.ean}", "grid", "Thuis", "Europe/Amsterdam")
    # the simulated eEan: pricePeak 0.26119, priceOffPeak 0.20976, flatFee 64.8 (a year, 0.18 a day)
    assert place.tariff == {"currency": "EUR", "peak_per_kwh": 0.26119, "offpeak_per_kwh": 0.20976,
                            "fee_per_day": pytest.approx(0.18)}


async def test_a_settled_yesterday_is_not_read_again(rig: Rig) -> None:
    await rig.move_to(datetime(2022, 11, 14, 23, 5, tzinfo=UTC))  # 00:05 in Amsterdam
    await rig.connector().latest()  # today (nothing yet) and yesterday (complete)
    await rig.move_to(rig.now + timedelta(hours=1))
    await rig.connector().latest()  # today, and yesterday again: it agrees, so it has settled
    await rig.move_to(rig.now + timedelta(hours=5))
    fetched = await rig.connector().latest()  # today only
    assert (await rig.calls())[MEASUREMENTS] == 2 + 2 + 1
    assert min(i.start for i in fetched.intervals) == local_midnight(date(2022, 11, 15))


async def test_a_re_read_the_quota_refuses_waits_and_today_still_comes(rig: Rig) -> None:
    await rig.move_to(datetime(2022, 11, 14, 23, 5, tzinfo=UTC))  # 00:05 in Amsterdam
    await rig.connector().latest()  # today (nothing yet) and yesterday
    await rig.move_to(rig.now + timedelta(hours=1))  # yesterday is due again; those calls are an hour old
    api = next(rule for rule in QUOTAS if rule.name == "api")
    guard = QuotaGuard(rig.store, "umeter", QUOTAS, rig.clock)
    for _ in range(api.limit - 1):  # room for today's call, not for yesterday's
        await guard.acquire("api", f"umeter.sim:{USER}")
    fetched = await rig.connector().latest()
    assert len(fetched.intervals) == 4  # today to 01:05; yesterday waits for a later poll
    assert (await rig.calls())[MEASUREMENTS] == 3
    await rig.move_to(rig.now + timedelta(hours=1, minutes=1))  # the hour's calls left the window
    again = await rig.connector().latest()
    assert (await rig.calls())[MEASUREMENTS] == 5  # today and, at last, yesterday
    assert len(again.intervals) == 96 + 8


async def test_an_unknown_ean_is_a_payload_error(rig: Rig) -> None:
    with pytest.raises(PayloadError, match="not found"):
        await rig.connector(ean="871687000000000000").latest()


@pytest.mark.parametrize(
    ("faults", "error"),
    [
        ({"error_status": 502, "error_every": 1}, VendorUnavailable),
        ({"error_status": 429, "error_every": 1}, QuotaExceeded),
        ({"truncate_json": True}, VendorUnavailable),
        ({"offline": True}, VendorUnavailable),
        ({"latency_s": 60.0}, VendorUnavailable),
    ],
)
async def test_faults_become_typed_errors(rig: Rig, faults: dict[str, Any], error: type[Exception]) -> None:
    await rig.connector().latest()
    assert (await rig.http.post("/_sim/faults", json=faults)).status_code == 200
    rig.http.timeout = httpx.Timeout(0.2 if "latency_s" in faults else 60.0)  # only latency may time out
    with pytest.raises(error) as caught:
        await rig.connector().latest()
    assert caught.value.__cause__ is not None
    assert PASSWORD not in _chain_text(caught.value)


async def test_relay_control_is_not_offered(rig: Rig) -> None:
    with pytest.raises(ConfigError, match="relay"):
        await rig.connector().set_relay(False)


def _chain_text(error: BaseException) -> str:
    parts: list[str] = []
    current: BaseException | None = error
    while current is not None:
        parts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)
