"""``meterhub prices fetch entsoe`` as a subprocess against the ENTSO-E simulator on loopback.

The simulator answers as the platform documents: A03 curves with repeated prices left out,
15-minute days from 2025-10-01 (92 and 100 quarter hours on the days clocks change), hourly
before, acknowledgements for what it cannot answer, 401 for a bad token. Every stored price is
checked against the simulator's own market; every failure must be one line, name no token and
store nothing.
"""

from __future__ import annotations

import itertools
import re
import socket
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import anyio
import httpx
import pytest

from meterhub.model import PricePoint
from meterhub.pricefeeds.entsoe import QUOTA_RULES, VENDOR, token_scope
from meterhub.pricefeeds.simulator import DEFAULT_TOKEN
from meterhub.pricefeeds.zones import day_bounds, find_zone
from meterhub.store import open_store
from meterhub.timeutil import get_zone
from meterhub.vendors.base import QuotaGuard
from tests.backends import Backend, database_url
from tests.pricefeeds.entsoesim import EntsoeSim, entsoe_simulator, meterhub
from tests.waiting import wait_until

T0 = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
"""14:00 CEST on Saturday 24 October 2026: the 25-hour Sunday is published, Monday is not."""
QUARTER = timedelta(minutes=15)
HOUR = timedelta(hours=1)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'prices.db'}"


def stored(db_url: str, series: str | None = None) -> list[PricePoint]:
    store = open_store(db_url)
    try:
        return store.prices(
            datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC), "import", series
        )
    finally:
        store.close()


def market_prices_per_kwh(
    sim: EntsoeSim, zone: str, day: date, step: timedelta, sequence: int = 1
) -> list[float]:
    return [p / 1000 for p in sim.market.day_slots(find_zone(zone), day, step, sequence)]


def fetch(
    db_url: str, sim: EntsoeSim, *args: str, token: str | None = DEFAULT_TOKEN
) -> subprocess.CompletedProcess[str]:
    return meterhub(db_url, "prices", "fetch", "entsoe", "--base-url", sim.api_url, *args, token=token)


def assert_day(points: list[PricePoint], day: date, tz: str, step: timedelta, count: int) -> None:
    start, end = day_bounds(day, tz)
    assert len(points) == count
    assert points[0].start == start and points[-1].end == end
    assert all(p.end - p.start == step for p in points)
    assert all(a.end == b.start for a, b in itertools.pairwise(points))
    assert {p.currency for p in points} == {"EUR"}


@pytest.mark.parametrize(
    ("day", "count"),
    [(date(2026, 10, 25), 100), (date(2026, 3, 29), 92), (date(2026, 10, 23), 96)],
    ids=["25-hour-day", "23-hour-day", "ordinary-day"],
)
def test_a_quarter_hour_day_is_stored_whole_at_the_platform_prices(
    db_url: str, day: date, count: int
) -> None:
    with entsoe_simulator(T0) as sim:
        result = fetch(db_url, sim, "--zone", "NO1", "--start", day.isoformat())
        start, end = day_bounds(day, "Europe/Oslo")
        raw = httpx.get(
            sim.api_url,
            params={
                "documentType": "A44",
                "in_Domain": "10YNO-1--------2",
                "out_Domain": "10YNO-1--------2",
                "periodStart": f"{start:%Y%m%d%H%M}",
                "periodEnd": f"{end:%Y%m%d%H%M}",
                "securityToken": DEFAULT_TOKEN,
            },
        ).text
        expected = market_prices_per_kwh(sim, "NO1", day, QUARTER)
    assert result.returncode == 0, result.stderr
    assert f"{count} slots from ENTSO-E NO1" in result.stdout and f"{count} stored" in result.stdout
    assert "Europe/Oslo" in result.stdout
    points = stored(db_url, "entsoe-no1")
    assert_day(points, day, "Europe/Oslo", QUARTER, count)
    assert [p.price_per_kwh for p in points] == pytest.approx(expected)
    given = [int(n) for n in re.findall(r"<position>(\d+)</position>", raw)]
    assert len(given) < count  # the A03 document left repeated prices out; all were filled in
    assert given[0] == 1 and max(given) <= count


def test_the_25_hour_day_is_stored_in_either_database(backend: Backend) -> None:
    db_url = database_url(backend)
    with entsoe_simulator(T0) as sim:
        result = fetch(db_url, sim, "--zone", "NO2", "--start", "2026-10-25", "--series", "no2")
        expected = market_prices_per_kwh(sim, "NO2", date(2026, 10, 25), QUARTER)
    assert result.returncode == 0, result.stderr
    points = stored(db_url, "no2")
    assert_day(points, date(2026, 10, 25), "Europe/Oslo", QUARTER, 100)
    assert [p.price_per_kwh for p in points] == pytest.approx(expected)


def test_a_day_before_the_15_minute_market_is_stored_hourly(db_url: str) -> None:
    with entsoe_simulator(T0) as sim:
        result = fetch(db_url, sim, "--zone", "SE3", "--start", "2025-03-30", "--series", "se3")
        expected = market_prices_per_kwh(sim, "SE3", date(2025, 3, 30), HOUR)
    assert result.returncode == 0, result.stderr
    points = stored(db_url, "se3")
    assert_day(points, date(2025, 3, 30), "Europe/Stockholm", HOUR, 23)
    assert [p.price_per_kwh for p in points] == pytest.approx(expected)


def test_a_second_fetch_changes_nothing_and_several_days_come_in_one_request(db_url: str) -> None:
    with entsoe_simulator(T0) as sim:
        first = fetch(db_url, sim, "--zone", "DK1", "--start", "2026-10-22", "--end", "2026-10-26")
        again = fetch(db_url, sim, "--zone", "DK1", "--start", "2026-10-22", "--end", "2026-10-26")
        calls = sim.api_calls()
    assert first.returncode == 0 and again.returncode == 0, (first.stderr, again.stderr)
    assert "388 slots" in first.stdout and "388 stored" in first.stdout  # 96 * 3 + 100
    assert "0 stored, 388 unchanged" in again.stdout
    assert calls == 2
    assert len(stored(db_url, "entsoe-dk1")) == 388


def test_de_lu_takes_the_first_sequence_and_a_dual_resolution_day_the_quarter_hours(db_url: str) -> None:
    day = date(2026, 10, 25)
    with entsoe_simulator(T0) as sim:
        sim.variants(dual_resolution=True)
        result = fetch(db_url, sim, "--zone", "DE-LU", "--start", day.isoformat())
        first = market_prices_per_kwh(sim, "DE-LU", day, QUARTER, 1)
        second = market_prices_per_kwh(sim, "DE-LU", day, QUARTER, 2)
    assert result.returncode == 0, result.stderr
    points = stored(db_url, "entsoe-de-lu")
    assert_day(points, day, "Europe/Berlin", QUARTER, 100)
    assert [p.price_per_kwh for p in points] == pytest.approx(first)
    assert first != pytest.approx(second)


def test_the_default_start_is_tomorrow_in_the_zone(db_url: str) -> None:
    oslo = get_zone("Europe/Oslo")
    today = datetime.now(UTC).astimezone(oslo).date()
    after_publication = datetime.combine(today, time(13, 0), tzinfo=get_zone("Europe/Brussels"))
    tomorrow = today + timedelta(days=1)
    start, end = day_bounds(tomorrow, "Europe/Oslo")
    with entsoe_simulator(after_publication) as sim:
        result = fetch(db_url, sim, "--zone", "NO3")
    assert result.returncode == 0, result.stderr
    points = stored(db_url, "entsoe-no3")
    assert_day(points, tomorrow, "Europe/Oslo", QUARTER, (end - start) // QUARTER)


def assert_refused(result: subprocess.CompletedProcess[str], db_url: str, *needles: str) -> None:
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]
    assert DEFAULT_TOKEN not in result.stdout + result.stderr
    assert stored(db_url) == []


def test_a_bad_token_is_refused_in_one_line_and_never_shown(db_url: str) -> None:
    with entsoe_simulator(T0) as sim:
        result = fetch(db_url, sim, "--zone", "NO1", "--start", "2026-10-25", token="not-the-token-4711")
    assert_refused(result, db_url, "refused the security token", "HTTP 401")
    assert "not-the-token-4711" not in result.stderr


def test_a_day_not_published_yet_is_no_data_and_stores_nothing(db_url: str) -> None:
    with entsoe_simulator(T0) as sim:
        result = fetch(db_url, sim, "--zone", "NO1", "--start", "2026-10-26")
    assert_refused(result, db_url, "no prices", "reason 999", "No matching data found")


def test_a_cut_off_document_is_refused_and_stores_nothing(db_url: str) -> None:
    with entsoe_simulator(T0) as sim:
        sim.variants(truncated_xml=True)
        result = fetch(db_url, sim, "--zone", "NO1", "--start", "2026-10-25")
    assert_refused(result, db_url, "not well-formed XML")


def test_a_platform_failure_is_one_line(db_url: str) -> None:
    with entsoe_simulator(T0) as sim:
        sim.control("POST", "/_sim/faults", {"error_status": 503, "error_every": 1})
        result = fetch(db_url, sim, "--zone", "NO1", "--start", "2026-10-25")
    assert_refused(result, db_url, "HTTP 503")


def test_a_platform_out_of_reach_is_one_line(db_url: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = meterhub(
        db_url, "prices", "fetch", "entsoe", "--zone", "NO1", "--base-url", f"http://127.0.0.1:{port}/api"
    )
    assert_refused(result, db_url, "cannot reach ENTSO-E at 127.0.0.1")


def test_a_missing_token_or_zone_is_named(db_url: str) -> None:
    with entsoe_simulator(T0) as sim:
        no_token = fetch(db_url, sim, "--zone", "NO1", token=None)
        no_zone = fetch(db_url, sim, "--zone", "XX9")
        calls = sim.api_calls()
    assert_refused(no_token, db_url, "ENTSOE_TOKEN", "not set")
    assert_refused(no_zone, db_url, "unknown bidding zone 'XX9'", "NO1", "DE-LU")
    assert calls == 0


def test_the_quota_ledger_holds_a_request_past_400_a_minute(db_url: str) -> None:
    store = open_store(db_url)
    try:
        guard = QuotaGuard(store, VENDOR, QUOTA_RULES)

        async def fill() -> None:
            for _ in range(400):
                await guard.acquire("api", token_scope(DEFAULT_TOKEN))

        anyio.run(fill)
    finally:
        store.close()
    with entsoe_simulator(T0) as sim:
        result = fetch(db_url, sim, "--zone", "NO1", "--start", "2026-10-25")
        calls = sim.api_calls()
    assert_refused(result, db_url, "allows 400 api calls per minute", "next is possible in")
    assert calls == 0


def test_the_simulator_answers_429_past_its_quota() -> None:
    params = {
        "documentType": "A44",
        "in_Domain": "10YFI-1--------U",
        "out_Domain": "10YFI-1--------U",
        "periodStart": "202610242200",
        "periodEnd": "202610252200",
        "securityToken": DEFAULT_TOKEN,
    }
    with entsoe_simulator(T0) as sim, httpx.Client(timeout=10) as client:
        statuses = [client.get(sim.api_url, params=params).status_code for _ in range(401)]
        refused = client.get(sim.api_url, params=params)
    assert statuses[:400] == [200] * 400
    assert statuses[400] == 429 and refused.status_code == 429
    assert int(refused.headers["retry-after"]) == 60  # the clock stands still: a whole window


def test_simulate_entsoe_serves_the_platform_for_the_cli(tmp_path: Path, db_url: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with subprocess.Popen(
        [sys.executable, "-m", "meterhub", "simulate", "entsoe", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as served:
        try:
            assert served.stdout is not None
            assert served.stdout.readline().strip() == f"entsoe: http://127.0.0.1:{port}"

            def up() -> bool:
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/_sim/info", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(up, "the simulator to answer")
            result = meterhub(
                db_url,
                "prices",
                "fetch",
                "entsoe",
                "--zone",
                "FI",
                "--start",
                "2025-10-26",
                "--base-url",
                f"http://127.0.0.1:{port}/api",
            )
        finally:
            served.terminate()
            served.wait(timeout=30)
    assert result.returncode == 0, result.stderr
    assert_day(stored(db_url, "entsoe-fi"), date(2025, 10, 26), "Europe/Helsinki", QUARTER, 100)


def test_prices_fetched_as_export_compensation_price_the_export_side(db_url: str) -> None:
    with entsoe_simulator(T0) as sim:
        exported = fetch(
            db_url, sim, "--zone", "NO5", "--start", "2026-10-25", "--series", "spot", "--direction", "export"
        )
        imported = fetch(db_url, sim, "--zone", "NO5", "--start", "2026-10-25", "--series", "spot")
    assert exported.returncode == 0 and imported.returncode == 0, (exported.stderr, imported.stderr)
    store = open_store(db_url)
    try:
        span = day_bounds(date(2026, 10, 25), "Europe/Oslo")
        export_side = store.prices(*span, "export", "spot")
        import_side = store.prices(*span, "import", "spot")
    finally:
        store.close()
    assert len(export_side) == len(import_side) == 100
    assert [p.price_per_kwh for p in export_side] == [p.price_per_kwh for p in import_side]
