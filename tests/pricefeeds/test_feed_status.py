"""A price feed's state where people look: ``meterhub status``, ``/api/v1/status/prices``, ``/metrics``.

A hub on a real SQLite file runs two ``[[prices]]`` feeds against the ENTSO-E simulator on
loopback: ``no1`` with the right token (today and tomorrow stored at once), ``se3`` with a token
the platform refuses. The simulator's clock stands at 14:00 CET of today's date (Oslo), and the
hub's clock runs from there in real time, so the API's own clock agrees on which day is tomorrow.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import anyio
import httpx
import pytest

from meterhub.api import security
from meterhub.model import UserRole
from meterhub.poller import Clock
from meterhub.poller.config import HubConfig
from meterhub.poller.hub import Hub, bind_socket
from meterhub.pricefeeds.simulator import DEFAULT_TOKEN
from meterhub.pricefeeds.sources import PriceSource
from meterhub.pricefeeds.state import MAX_ERROR_CHARS, FeedState, load_state, one_line, save_state
from meterhub.pricefeeds.zones import day_bounds, find_zone
from meterhub.status import PriceFeedStatus, price_feed_status
from meterhub.store import open_store
from meterhub.timeutil import get_zone
from tests.pricefeeds.entsoesim import entsoe_simulator
from tests.pricefeeds.test_price_feed_hub import token_file
from tests.waiting import DEADLINE_S, wait_until

CET = get_zone("Europe/Brussels")
WRONG_TOKEN = "wrong-token-4711-do-not-show"


@dataclass
class Ran:
    """What the hub left: its database, its worker id, and what its API and metrics answered."""

    db_url: str
    worker: str
    today: date
    statuses: list[dict[str, object]]
    csv_text: str
    metrics: str


@contextmanager
def serving_hub(db_url: str, config: HubConfig, clock: Clock) -> Iterator[tuple[Hub, str]]:
    """Run a hub on a free loopback port from a thread; yield it and its base URL; stop it."""
    hub = Hub(db_url, config, clock=clock)
    sock = bind_socket("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    thread = threading.Thread(target=anyio.run, args=(hub.run, sock), daemon=True)
    thread.start()
    wait_until(lambda: hub.started.is_set() or not thread.is_alive(), "the hub to start")
    try:
        yield hub, base
    finally:
        hub.stop()
        thread.join(DEADLINE_S)
        sock.close()
        assert not thread.is_alive(), "the hub did not stop"


def _by_series(items: list[PriceFeedStatus]) -> dict[str, PriceFeedStatus]:
    return {item.series: item for item in items}


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    """Run the hub until both feeds have looked once, read its API and metrics, then stop it."""
    folder = tmp_path_factory.mktemp("feedstatus")
    db_url = f"sqlite:///{folder / 'hub.db'}"
    store = open_store(db_url)
    store.add_user("admin", UserRole.ADMIN, security.hash_password("admin-password-1"))
    key = security.issue_api_key(store, "admin", "tests")[1]
    wrong = folder / "wrong.token"
    wrong.write_text(WRONG_TOKEN)
    wrong.chmod(0o600)
    # The hub's clock starts after the day-ahead publication (13:00 CET), and never behind the
    # real time the status route reads: a next try would otherwise look long past, "overdue".
    real_now = datetime.now(UTC).replace(microsecond=0)
    today = real_now.astimezone(get_zone("Europe/Oslo")).date()
    start = max(datetime.combine(today, time(14, 0), tzinfo=CET), real_now)
    try:
        with entsoe_simulator(start) as sim:
            sources = (
                PriceSource(find_zone("NO1"), "no1", token_file(folder), base_url=sim.api_url, retry_s=60),
                PriceSource(find_zone("SE3"), "se3", f"file:{wrong}", base_url=sim.api_url, retry_s=60),
            )
            with serving_hub(db_url, HubConfig(prices=sources), Clock(start, 1.0)) as (hub, base):

                def looked() -> bool:
                    found = _by_series(price_feed_status(store))
                    return (
                        "no1" in found
                        and found["no1"].last_success_at is not None
                        and "se3" in found
                        and found["se3"].consecutive_failures >= 1
                    )

                wait_until(looked, "both feeds to look once")
                with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client:
                    listed = client.get("/api/v1/status/prices")
                    assert listed.status_code == 200, listed.text
                    as_csv = client.get("/api/v1/status/prices", params={"format": "csv"})
                    assert as_csv.status_code == 200, as_csv.text
                    scraped = client.get("/metrics")
                    assert scraped.status_code == 200, scraped.text
                    unauthenticated = httpx.get(f"{base}/api/v1/status/prices", timeout=30)
                    assert unauthenticated.status_code == 401
                worker = hub.worker_id
        yield Ran(db_url, worker, today, listed.json(), as_csv.text, scraped.text)  # the hub has stopped
    finally:
        store.close()


def test_the_api_tells_each_feeds_worker_success_newest_slot_error_and_next_try(ran: Ran) -> None:
    found = {item["series"]: item for item in ran.statuses}
    assert set(found) == {"no1", "se3"}
    no1, se3 = found["no1"], found["se3"]
    tomorrow = ran.today + timedelta(days=1)
    assert (no1["zone"], no1["source"], no1["direction"], no1["tz"]) == (
        "NO1",
        "entsoe",
        "import",
        "Europe/Oslo",
    )
    assert (no1["state"], no1["fetched_by"], no1["consecutive_failures"]) == ("ok", ran.worker, 0)
    stored = no1["last_stored"]
    assert isinstance(stored, dict)
    quarters = (
        day_bounds(tomorrow, "Europe/Oslo")[1] - day_bounds(ran.today, "Europe/Oslo")[0]
    ) // timedelta(minutes=15)
    assert stored["days"] == f"{ran.today.isoformat()}..{tomorrow.isoformat()}"
    assert stored["slots"] == stored["stored"] == quarters and stored["unchanged"] == 0
    tomorrow_end = day_bounds(tomorrow, "Europe/Oslo")[1]
    assert datetime.fromisoformat(str(no1["newest_slot_end"])) == tomorrow_end
    assert (no1["tomorrow"], no1["tomorrow_stored"]) == (tomorrow.isoformat(), True)
    assert no1["last_error"] is None
    # nothing is due before 13:00 CET tomorrow: the feed looks again after its longest sleep, an hour
    waited = datetime.fromisoformat(str(no1["next_try_at"])) - datetime.fromisoformat(
        str(no1["last_attempt_at"])
    )
    assert timedelta(hours=1) <= waited < timedelta(hours=1, minutes=10)  # an hour after the look ended
    assert (se3["state"], se3["zone"], se3["newest_slot_end"], se3["tomorrow_stored"]) == (
        "failing",
        "SE3",
        None,
        False,
    )
    error = str(se3["last_error"])
    assert "refused the security token" in error and "\n" not in error
    assert se3["last_success_at"] is None and se3["last_stored"] is None
    next_try = datetime.fromisoformat(str(se3["next_try_at"]))
    last_try = datetime.fromisoformat(str(se3["last_attempt_at"]))
    assert timedelta(seconds=60) <= next_try - last_try < timedelta(minutes=10)  # retry_s after the failure


def test_the_csv_rows_flatten_what_was_stored_and_never_show_a_token(ran: Ran) -> None:
    rows = {row["series"]: row for row in csv.DictReader(io.StringIO(ran.csv_text))}
    assert rows["no1"]["stored_days"].startswith(ran.today.isoformat())
    assert rows["se3"]["stored_slots"] == "" and "refused" in rows["se3"]["last_error"]
    for shown in (ran.csv_text, json.dumps(ran.statuses), ran.metrics):
        assert WRONG_TOKEN not in shown and DEFAULT_TOKEN not in shown


def test_metrics_tell_last_success_newest_slot_failures_and_who_fetches(ran: Ran) -> None:
    samples = _samples(ran.metrics)
    no1 = '{direction="import",series="no1"}'
    success = samples[
        'meterhub_price_feed_last_success_timestamp_seconds{direction="import",series="no1",zone="NO1"}'
    ]
    api_success = next(s for s in ran.statuses if s["series"] == "no1")["last_success_at"]
    assert success == pytest.approx(datetime.fromisoformat(str(api_success)).timestamp(), abs=0.001)
    tomorrow_end = day_bounds(ran.today + timedelta(days=1), "Europe/Oslo")[1]
    assert samples[f"meterhub_price_feed_newest_slot_end_timestamp_seconds{no1}"] == tomorrow_end.timestamp()
    assert samples[f"meterhub_price_feed_tomorrow_stored{no1}"] == 1.0
    assert samples[f"meterhub_price_feed_failures{no1}"] == 0.0
    assert samples['meterhub_price_feed_failures{direction="import",series="se3"}'] >= 1.0
    assert not any(name.startswith("meterhub_price_feed_last_success") and "se3" in name for name in samples)
    held = f'meterhub_price_feed_held{{direction="import",series="no1",worker="{ran.worker}"}}'
    assert samples[held] == 1.0


def test_after_the_hub_stops_status_says_no_worker_fetches_and_the_cli_shows_it(ran: Ran) -> None:
    env = {**os.environ, "METERHUB_DATABASE_URL": ran.db_url, "COLUMNS": "250"}
    run = subprocess.run(
        [sys.executable, "-m", "meterhub", "status", "--prices", "--format", "json"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    found = {item["series"]: item for item in json.loads(run.stdout)}
    assert (found["no1"]["state"], found["no1"]["fetched_by"]) == ("stopped", None)
    assert found["no1"]["tomorrow_stored"] is True and found["no1"]["last_stored"]["slots"] > 0
    table = subprocess.run(
        [sys.executable, "-m", "meterhub", "status"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    out = table.stdout
    assert "Meter status" in out and "Price feeds" in out
    no1 = next(line for line in out.splitlines() if "│ no1 " in line)
    assert "NO1 (entsoe)" in no1 and "no worker" in no1 and "stopped" in no1
    se3_lines = out[out.index("│ se3 ") :]
    assert "refused the security token" in se3_lines and "failing" not in no1
    assert f"tomorrow ({(ran.today + timedelta(days=1)).isoformat()}) stored" in out
    assert WRONG_TOKEN not in out + table.stderr


def test_status_refuses_meter_ids_with_prices_in_one_line(ran: Ran) -> None:
    env = {**os.environ, "METERHUB_DATABASE_URL": ran.db_url}
    run = subprocess.run(
        [sys.executable, "-m", "meterhub", "status", "--prices", "grid"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode != 0 and "leave out the meter ids" in run.stderr and "Traceback" not in run.stderr


def test_an_error_is_kept_to_one_short_line_without_the_token() -> None:
    text = f"first line\nsecond  line with {WRONG_TOKEN} and https://user:pw@host/x " + "x" * 500
    line = one_line(text, [WRONG_TOKEN])
    assert "\n" not in line and WRONG_TOKEN not in line and ":pw@" not in line
    assert len(line) == MAX_ERROR_CHARS and line.startswith("first line second line with ***")


def test_a_state_survives_the_store_and_a_garbled_one_is_ignored(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        at = datetime(2026, 10, 24, 12, 0, 5, 123000, tzinfo=UTC)
        state = FeedState("spot", "export", "entsoe", "DE-LU", "Europe/Berlin", "w1", 3, 1, at, None,
                          None, "cannot reach ENTSO-E", at, None, at + timedelta(minutes=10), at)  # fmt: skip
        save_state(store, state)
        assert load_state(store, "spot", "export") == state
        assert [s.series for s in price_feed_status(store, at)] == ["spot"]
        store.token_set("pricefeeds", "import:broken", "{not json", None)
        store.token_set("pricefeeds", "index", '["export:spot", "import:broken"]', None)
        assert load_state(store, "broken", "import") is None
        (only,) = price_feed_status(store, at + timedelta(minutes=11))
        assert (only.series, only.state, only.consecutive_failures) == ("spot", "failing", 1)
        (late,) = price_feed_status(store, at + timedelta(hours=1))
        assert late.state == "overdue"  # the next try passed long ago: no hub runs the feed
    finally:
        store.close()


def _samples(text: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("meterhub_price_feed"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found
