"""The hub's scheduled price fetch: tomorrow's prices kept in the store, in a running hub.

In process, the hub runs on a clock that follows the simulator's (sped up), so a test sees the
hub wait for 13:00 CET, or retry every ``retry_s`` until a late publication. As a subprocess,
``meterhub serve --config`` with a ``[[prices]]`` table fetches today at once and tomorrow once
the simulator publishes it, and stops cleanly; the token never appears in its output.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import anyio
import pytest

from meterhub.errors import ConfigError
from meterhub.poller import Clock
from meterhub.poller.config import HubConfig, parse_config
from meterhub.poller.hub import Hub, bind_socket
from meterhub.pricefeeds.simulator import DEFAULT_TOKEN
from meterhub.pricefeeds.sources import PriceSource
from meterhub.pricefeeds.zones import day_bounds, find_zone
from meterhub.store import open_store
from meterhub.timeutil import get_zone
from tests.backends import Backend, database_url
from tests.mqttbroker import free_port
from tests.pricefeeds.entsoesim import EntsoeSim, entsoe_simulator
from tests.waiting import DEADLINE_S, wait_until

CET = get_zone("Europe/Brussels")
QUARTER = timedelta(minutes=15)


def token_file(tmp_path: Path) -> str:
    path = tmp_path / "entsoe.token"
    path.write_text(DEFAULT_TOKEN + "\n")
    path.chmod(0o600)
    return f"file:{path}"


def slots(db_url: str, day: date, series: str = "no1", tz: str = "Europe/Oslo") -> int:
    start, end = day_bounds(day, tz)
    store = open_store(db_url)
    try:
        return len(
            [p for p in store.prices(start, end, "import", series) if start <= p.start and p.end <= end]
        )
    finally:
        store.close()


def quarters(day: date, tz: str = "Europe/Oslo") -> int:
    start, end = day_bounds(day, tz)
    return (end - start) // QUARTER


def call_times(sim: EntsoeSim) -> list[datetime]:
    times: dict[str, list[str]] = sim.control("GET", "/_sim/calls?times=true")
    return [datetime.fromisoformat(at) for at in times.get("/api", [])]


@contextmanager
def running_hub(db_url: str, config: HubConfig, clock: Clock) -> Iterator[Hub]:
    hub = Hub(db_url, config, clock=clock)
    sock = bind_socket("127.0.0.1", 0)
    thread = threading.Thread(target=anyio.run, args=(hub.run, sock), daemon=True)
    thread.start()
    wait_until(lambda: hub.started.is_set() or not thread.is_alive(), "the hub to start")
    try:
        yield hub
    finally:
        hub.stop()
        thread.join(DEADLINE_S)
        sock.close()
        assert not thread.is_alive(), "the hub did not stop"


def following(sim: EntsoeSim, speed: float) -> Clock:
    """A hub clock running with the simulator's, from the simulator's now."""
    now = datetime.fromisoformat(sim.control("GET", "/_sim/info")["now"])
    return Clock(now, speed)


def test_the_hub_asks_for_tomorrow_at_13_cet_and_stores_the_25_hour_day(
    tmp_path: Path, backend: Backend
) -> None:
    db_url = database_url(backend)
    saturday, sunday = date(2026, 10, 24), date(2026, 10, 25)
    source = PriceSource(find_zone("NO1"), "no1", token_file(tmp_path), retry_s=60)
    with entsoe_simulator(datetime(2026, 10, 24, 12, 58, tzinfo=CET), speed=60) as sim:
        source = PriceSource(source.zone, source.series, source.token_ref, base_url=sim.api_url, retry_s=60)
        with running_hub(db_url, HubConfig(prices=(source,)), following(sim, 60)):
            wait_until(lambda: slots(db_url, sunday) == 100, "the hub to store Sunday's 100 quarter hours")
            calls = call_times(sim)
    assert slots(db_url, saturday) == 96
    assert len(calls) == 2  # today at once; tomorrow once, when due
    thirteen = datetime(2026, 10, 24, 13, 0, tzinfo=CET)
    assert calls[0] < thirteen - timedelta(seconds=30)
    assert calls[1] >= thirteen - timedelta(seconds=5)


def test_a_refused_token_is_logged_retried_with_a_doubling_wait_and_the_hub_runs_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db_url = f"sqlite:///{tmp_path / 'refused.db'}"
    wrong = tmp_path / "wrong.token"
    wrong.write_text("wrong-token-0815")
    wrong.chmod(0o600)
    caplog.set_level(logging.INFO, logger="meterhub.pricefeeds")
    with entsoe_simulator(datetime(2026, 10, 24, 14, 0, tzinfo=CET), speed=60) as sim:
        source = PriceSource(find_zone("NO1"), "no1", f"file:{wrong}", base_url=sim.api_url, retry_s=60)
        with running_hub(db_url, HubConfig(prices=(source,)), following(sim, 60)):
            wait_until(lambda: sim.api_calls() >= 3, "the hub to try the token three times")
            calls = call_times(sim)
    gaps_s = [(b - a).total_seconds() for a, b in itertools.pairwise(calls[:3])]
    assert gaps_s[0] >= 55 and gaps_s[1] >= 115  # 60 s, then 120 s
    refusals = [r.getMessage() for r in caplog.records if "refused the security token" in r.getMessage()]
    assert len(refusals) >= 3 and all(
        r.levelno == logging.WARNING for r in caplog.records if "refused" in r.getMessage()
    )
    assert all("wrong-token-0815" not in r.getMessage() for r in caplog.records)
    assert slots(db_url, date(2026, 10, 25)) == 0


@pytest.mark.slow
def test_a_late_publication_is_retried_every_retry_s_until_it_comes(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'late.db'}"
    sunday = date(2026, 10, 25)
    with entsoe_simulator(datetime(2026, 10, 24, 12, 59, tzinfo=CET), speed=1200) as sim:
        sim.variants(late_publication=True)
        source = PriceSource(find_zone("NO1"), "no1", token_file(tmp_path), base_url=sim.api_url, retry_s=600)
        with running_hub(db_url, HubConfig(prices=(source,)), following(sim, 1200)):
            wait_until(lambda: slots(db_url, sunday) == 100, "the hub to store Sunday once published")
            calls = call_times(sim)
    published = datetime(2026, 10, 24, 15, 30, tzinfo=CET)
    tries = [at for at in calls if datetime(2026, 10, 24, 12, 59, 30, tzinfo=CET) <= at < published]
    assert len(tries) >= 10  # 13:00, 13:10, ... 15:20: no data yet, tried again
    gaps_s = [(b - a).total_seconds() for a, b in itertools.pairwise(tries)]
    assert min(gaps_s) >= 590  # never faster than retry_s (600 s), within the clocks' agreement
    # the first try after 15:30 stored it: within one retry_s, plus what the sped-up clock ran on
    assert calls[-1] >= published and (calls[-1] - published) <= timedelta(seconds=900)
    assert calls[-2] < published


def test_serve_keeps_tomorrow_in_the_store_and_never_prints_the_token(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'serve.db'}"
    today = datetime.now(UTC).astimezone(get_zone("Europe/Oslo")).date()
    tomorrow = today + timedelta(days=1)
    port = free_port()
    with entsoe_simulator(datetime.combine(today, time(12, 0), tzinfo=CET)) as sim:
        config = tmp_path / "meterhub.toml"
        config.write_text(
            f"""
[[prices]]
source = "entsoe"
zone = "NO1"
series = "no1"
token_ref = "{token_file(tmp_path)}"
base_url = "{sim.api_url}"
fetch_after = "00:00"
retry_s = 1
"""
        )
        env = {**os.environ, "METERHUB_DATABASE_URL": db_url}
        with subprocess.Popen(
            [sys.executable, "-m", "meterhub", "serve", "--port", str(port), "--config", str(config), "-v"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        ) as hub:
            try:
                wait_until(lambda: slots(db_url, today) == quarters(today), "today's prices")
                wait_until(lambda: sim.api_calls() >= 4, "the hub to ask again for tomorrow")
                assert slots(db_url, tomorrow) == 0  # not published before 12:45 CET
                sim.set_clock(datetime.combine(today, time(13, 0), tzinfo=CET))
                wait_until(lambda: slots(db_url, tomorrow) == quarters(tomorrow), "tomorrow's prices")
            finally:
                hub.send_signal(signal.SIGTERM)
                out, err = hub.communicate(timeout=DEADLINE_S)
    assert hub.returncode == 0, err
    assert "meterhub stopped" in out
    assert "not published yet" in err and "Traceback" not in err
    assert DEFAULT_TOKEN not in out + err


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('zone = "NO1"\ntoken_ref = "sim-entsoe-secret"', "token_ref must be a reference like"),
        ('zone = "ZZ"\ntoken_ref = "env:ENTSOE_TOKEN"', "unknown bidding zone 'ZZ'"),
        ('zone = "NO1"\ntoken_ref = "env:ENTSOE_TOKEN"\nfetch_after = "25:00"', "fetch_after must be a time"),
        ('zone = "NO1"\ntoken_ref = "env:ENTSOE_TOKEN"\nevery = 5', "unknown field(s) every"),
    ],
    ids=["literal-token", "unknown-zone", "bad-time", "unknown-field"],
)
def test_a_bad_prices_table_stops_serve_with_one_line(tmp_path: Path, table: str, message: str) -> None:
    config = tmp_path / "meterhub.toml"
    config.write_text(f"[[prices]]\n{table}\n")
    env = {**os.environ, "METERHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = subprocess.run(
        [sys.executable, "-m", "meterhub", "serve", "--port", str(free_port()), "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "prices[0]" in lines[0], result.stderr
    assert "sim-entsoe-secret" not in result.stderr


def test_one_series_may_be_fed_for_import_and_for_export() -> None:
    table = {"zone": "NO1", "series": "spot", "token_ref": "env:ENTSOE_TOKEN"}
    config = parse_config({"prices": [table, {**table, "direction": "export"}]})
    assert [(s.series, s.direction.value) for s in config.prices] == [("spot", "import"), ("spot", "export")]
    with pytest.raises(ConfigError) as twice:
        parse_config({"prices": [table, dict(table)]})
    assert "filled by two [[prices]] tables: spot (import)" in str(twice.value)
