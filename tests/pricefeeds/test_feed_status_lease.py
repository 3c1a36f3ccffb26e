"""Several workers on one PostgreSQL database: one fetches each price feed, another takes over.

Every test runs two workers with the same ``[[prices]]`` feed against one ENTSO-E simulator on
loopback (its clock standing at 14:00 CET of today's date in Oslo, so today and tomorrow are
out). The first worker fetches both days in one request; the second stands by, and the
simulator counts one request. Then tomorrow's prices are deleted from the store (the first
worker, asleep until the next day is due, does not notice) and the first worker stops, cleanly
or killed: the second takes the feed over, finds tomorrow missing, fetches it, and carries the
feed's state on under its own name.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import anyio
import anyio.from_thread
import httpx
import pytest

from meterhub.metrics import exposition
from meterhub.poller import Clock
from meterhub.pricefeeds.schedule import run_price_feeds
from meterhub.pricefeeds.sources import PriceSource
from meterhub.pricefeeds.state import FeedState, load_state
from meterhub.pricefeeds.zones import day_bounds, find_zone
from meterhub.store.base import Store
from meterhub.timeutil import get_zone
from tests.backends import Backend, database_url
from tests.mqttbroker import free_port
from tests.pricefeeds.entsoesim import EntsoeSim, entsoe_simulator
from tests.pricefeeds.test_price_feed_hub import token_file
from tests.waiting import DEADLINE_S, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CET = get_zone("Europe/Brussels")
OSLO = "Europe/Oslo"
LEASE_S = 2.0


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[Backend]:
    """A fresh schema of the test PostgreSQL (fails under CI=true when the server is away)."""
    place = Backend("postgres", tmp_path)
    try:
        yield place
    finally:
        place.close()


def _today() -> date:
    return datetime.now(UTC).astimezone(get_zone(OSLO)).date()


def _start(today: date) -> datetime:
    return datetime.combine(today, time(14, 0), tzinfo=CET)


def _state(store: Store) -> FeedState | None:
    return load_state(store, "no1", "import")


def _holder(store: Store) -> str | None:
    state = _state(store)
    return None if state is None else state.holder


def _tomorrow_complete(store: Store, today: date) -> bool:
    start, end = day_bounds(today + timedelta(days=1), OSLO)
    covered = sum(((p.end - p.start) for p in store.prices(start, end, "import", "no1")), timedelta(0))
    return covered == end - start


def _delete_tomorrow(store: Store, today: date) -> None:
    start = day_bounds(today + timedelta(days=1), OSLO)[0]
    assert store.delete_prices("no1", start) > 0
    assert not _tomorrow_complete(store, today)


def _fetched_by(store: Store, worker: str) -> bool:
    state = _state(store)
    return state is not None and state.holder == worker and state.last_success_at is not None


def test_one_worker_fetches_and_another_takes_over_when_it_stops(
    postgres: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="meterhub.pricefeeds")
    store_a, store_b = postgres.open(), postgres.open()
    today = _today()
    with entsoe_simulator(_start(today)) as sim:
        source = PriceSource(find_zone("NO1"), "no1", token_file(tmp_path), base_url=sim.api_url, retry_s=60)

        async def worker(store: Store, name: str, scope: anyio.CancelScope) -> None:
            with scope:
                async with httpx.AsyncClient(timeout=30) as client:
                    clock = Clock(_start(today), 1.0)
                    await run_price_feeds(store, client, [source], clock, worker=name, lease_s=LEASE_S)

        with anyio.from_thread.start_blocking_portal() as portal:
            scope_a, scope_b = portal.call(anyio.CancelScope), portal.call(anyio.CancelScope)
            running_a = portal.start_task_soon(worker, store_a, "worker-a", scope_a)
            wait_until(lambda: _fetched_by(store_a, "worker-a"), "worker-a to fetch the feed")
            assert _tomorrow_complete(store_a, today)
            running_b = portal.start_task_soon(worker, store_b, "worker-b", scope_b)
            wait_until(
                lambda: any(
                    "worker-a runs prices import:no1; this one stands by" in r.getMessage()
                    for r in caplog.records
                ),
                "worker-b to stand by",
            )
            metrics = exposition().decode()
            assert (
                'meterhub_price_feed_held{direction="import",series="no1",worker="worker-a"} 1.0' in metrics
            )
            assert (
                'meterhub_price_feed_held{direction="import",series="no1",worker="worker-b"} 0.0' in metrics
            )
            assert sim.api_calls() == 1  # today and tomorrow in one request, by worker-a alone
            _delete_tomorrow(store_a, today)
            portal.call(scope_a.cancel)  # worker-a stops: it says so in the store and gives the lease back
            running_a.result(timeout=DEADLINE_S)
            wait_until(lambda: _holder(store_b) == "worker-b", "worker-b to take the feed over")
            wait_until(lambda: _tomorrow_complete(store_b, today), "worker-b to fetch tomorrow again")
            assert sim.api_calls() == 2
            state = _state(store_b)
            assert state is not None and state.fetches == 2  # worker-a's request, then worker-b's
            assert (
                state.last_stored is not None
                and state.last_stored.days == (today + timedelta(days=1)).isoformat()
            )
            portal.call(scope_b.cancel)
            running_b.result(timeout=DEADLINE_S)
    assert _holder(store_a) is None  # worker-b stopped too: no worker fetches now


RUNNER = textwrap.dedent(
    """
    import logging, sys
    from datetime import datetime
    import anyio, httpx
    from meterhub.poller import Clock
    from meterhub.pricefeeds.schedule import run_price_feeds
    from meterhub.pricefeeds.sources import PriceSource
    from meterhub.pricefeeds.zones import find_zone
    from meterhub.store import open_store

    db_url, name, base_url, token_ref, start, lease_s = sys.argv[1:]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    source = PriceSource(find_zone("NO1"), "no1", token_ref, base_url=base_url, retry_s=60)

    async def main():
        store = open_store(db_url)
        async with httpx.AsyncClient(timeout=30) as client:
            clock = Clock(datetime.fromisoformat(start), 1.0)
            await run_price_feeds(store, client, [source], clock, worker=name, lease_s=float(lease_s))

    anyio.run(main)
    """
)


def _runner(
    tmp_path: Path, db_url: str, name: str, sim: EntsoeSim, today: date
) -> tuple[subprocess.Popen[str], Path]:
    script = tmp_path / "feeds.py"
    script.write_text(RUNNER)
    log = tmp_path / f"{name}.log"
    args = [db_url, name, sim.api_url, token_file(tmp_path), _start(today).isoformat(), str(LEASE_S)]
    with log.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, str(script), *args], stdout=subprocess.DEVNULL, stderr=err, text=True
        )
    return process, log


def test_a_killed_workers_feed_is_taken_over_once_its_lease_expires(
    postgres: Backend, tmp_path: Path
) -> None:
    store = postgres.open()
    db_url = database_url(postgres)
    today = _today()
    with entsoe_simulator(_start(today)) as sim:
        first, _ = _runner(tmp_path, db_url, "worker-a", sim, today)
        second, second_log = _runner(tmp_path, db_url, "worker-b", sim, today)
        try:
            wait_until(
                lambda: _fetched_by(store, "worker-a") or _fetched_by(store, "worker-b"),
                "one worker to fetch",
            )
            holder = _holder(store)
            standby, standby_log = (
                (second, second_log) if holder == "worker-a" else (first, tmp_path / "worker-a.log")
            )
            killed = first if standby is second else second
            wait_until(
                lambda: "this one stands by" in standby_log.read_text(), "the other worker to stand by"
            )
            assert sim.api_calls() == 1
            _delete_tomorrow(store, today)
            killed.send_signal(signal.SIGKILL)  # no clean stop: its lease lapses by itself
            killed.wait(DEADLINE_S)
            taker = "worker-b" if holder == "worker-a" else "worker-a"
            wait_until(lambda: _holder(store) == taker, f"{taker} to take the feed over")
            wait_until(lambda: _tomorrow_complete(store, today), f"{taker} to fetch tomorrow again")
            assert sim.api_calls() == 2
            assert standby.poll() is None  # still running, fetching the feed
        finally:
            for process in (first, second):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(DEADLINE_S)


def _serve(tmp_path: Path, db_url: str, name: str, config: Path) -> tuple[subprocess.Popen[str], Path, Path]:
    out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
    env = {**os.environ, "METERHUB_DATABASE_URL": db_url}
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "meterhub",
                "serve",
                "--port",
                str(free_port()),
                "--config",
                str(config),
                "-v",
            ],
            stdout=stdout,
            stderr=stderr,
            text=True,
            env=env,
        )
    return process, out, err


def test_two_serve_processes_fetch_once_and_the_second_takes_over_when_the_first_stops(
    postgres: Backend, tmp_path: Path
) -> None:
    store = postgres.open()
    db_url = database_url(postgres)
    today = _today()
    with entsoe_simulator(_start(today)) as sim:
        config = tmp_path / "meterhub.toml"
        config.write_text(
            f"""
[[prices]]
zone = "NO1"
series = "no1"
token_ref = "{token_file(tmp_path)}"
base_url = "{sim.api_url}"
fetch_after = "00:00"
"""
        )
        first, first_out, first_err = _serve(tmp_path, db_url, "first", config)
        try:
            first_worker = f"{socket.gethostname()}-{first.pid}"
            wait_until(lambda: _fetched_by(store, first_worker), "the first hub to fetch the feed")
            second, second_out, second_err = _serve(tmp_path, db_url, "second", config)
            second_worker = f"{socket.gethostname()}-{second.pid}"
            try:
                wait_until(
                    lambda: "this one stands by" in second_err.read_text(), "the second hub to stand by"
                )
                assert sim.api_calls() == 1
                _delete_tomorrow(store, today)
                first.send_signal(signal.SIGTERM)
                assert first.wait(DEADLINE_S) == 0
                wait_until(lambda: _holder(store) == second_worker, "the second hub to take the feed over")
                wait_until(lambda: _tomorrow_complete(store, today), "the second hub to fetch tomorrow again")
                assert sim.api_calls() == 2
            finally:
                second.send_signal(signal.SIGTERM)
                assert second.wait(DEADLINE_S) == 0
        finally:
            if first.poll() is None:
                first.send_signal(signal.SIGTERM)
                first.wait(DEADLINE_S)
    for out in (first_out, second_out):
        assert "0 meters, 0 MQTT sources, 1 price feeds" in out.read_text()
    logs = first_err.read_text() + second_err.read_text()
    assert "Traceback" not in logs and "sim-entsoe" not in logs
    assert _holder(store) is None
