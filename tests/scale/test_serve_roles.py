"""``meterhub serve --role`` and ``--worker-id`` as real processes, and the SQLite serve lock.

- A second ``serve`` on one SQLite file refuses to start with one line naming the PostgreSQL
  route; the lock goes with its process, even one killed with SIGKILL.
- On PostgreSQL a poller and an API replica run side by side: the poller's ``/healthz`` and
  metrics name the meters it holds, the API replica holds none and polls nothing.
- A backfill run by hand is refused while another worker holds its job's lease.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from meterhub.api import security
from meterhub.errors import InputError
from meterhub.model import Meter, UserRole
from meterhub.poller.backfill import BackfillJob, backfill_meter
from meterhub.store.leases import BACKFILL, work_leases
from tests.api.conftest import password_hash
from tests.backends import Backend, database_url
from tests.mqttbroker import free_port
from tests.simservers import simulator
from tests.waiting import DEADLINE_S, wait_until

ROOT = Path(__file__).resolve().parents[2]


def status(port: int) -> dict[str, Any] | None:
    """Return the /healthz answer, or None while nothing answers."""
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    except httpx.HTTPError:
        return None
    return dict(answer.json()) if answer.status_code == 200 else None


@contextmanager
def serving(db_url: str, *options: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Run ``meterhub serve`` with ``options`` on a free port until the block ends (SIGTERM)."""
    port = free_port()
    command = [sys.executable, "-m", "meterhub", "--database-url", db_url, "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, *options], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: status(port) is not None or process.poll() is not None, "/healthz to answer")
        assert process.poll() is None, process.communicate()[1]
        yield process, port
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.communicate(timeout=DEADLINE_S)


def serve_once(db_url: str) -> subprocess.CompletedProcess[str]:
    """Run a ``meterhub serve`` that is expected to refuse to start."""
    command = [
        sys.executable,
        "-m",
        "meterhub",
        "--database-url",
        db_url,
        "serve",
        "--port",
        str(free_port()),
    ]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE_S, check=False)


@pytest.mark.slow
def test_a_second_serve_on_one_sqlite_file_refuses_and_names_postgresql(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'hub.db'}"
    with serving(db_url, "--worker-id", "household") as (first, port):
        refused = serve_once(db_url)
        health = status(port)
        killed_pid = first.pid
        first.send_signal(signal.SIGKILL)  # the lock must not outlive its process
        first.wait(DEADLINE_S)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert f"already served by meterhub serve (pid {killed_pid})" in refused.stderr
    assert (
        "move the hub to PostgreSQL (meterhub db copy" in refused.stderr and "--role poller" in refused.stderr
    )
    assert health is not None and health["worker"]["worker_id"] == "household"
    assert health["worker"]["role"] == "all" and health["worker"]["shared"] is False
    with serving(db_url) as (again, again_port):  # free again after the kill
        restarted = status(again_port)
    assert restarted is not None  # the default worker id: hostname-pid
    assert restarted["worker"]["worker_id"] == f"{socket.gethostname()}-{again.pid}"


@pytest.mark.slow
@pytest.mark.postgres
def test_a_poller_and_an_api_replica_on_postgresql(tmp_path: Path) -> None:
    backend = Backend("postgres", tmp_path)
    try:
        store = backend.open()
        db_url = database_url(backend)
        store.add_user("ops", UserRole.ADMIN, password_hash("operator-password-1"))
        key = security.issue_api_key(store, "ops", "scrape")[1]
        with simulator("amsreader") as ams:
            store.add_meter(Meter("ams", "amsreader", 3, "Europe/Oslo", 10, "", {"base_url": ams.base_url}))
            store.add_meter(Meter("import-only", "amsreader", 3, "Europe/Oslo", 10, "", {}))
            with (
                serving(db_url, "--role", "poller", "--worker-id", "poller-a") as (_, poller_port),
                serving(db_url, "--role", "api", "--worker-id", "api-a") as (_, api_port),
            ):

                def holds() -> bool:
                    found = status(poller_port)
                    return found is not None and found["worker"]["meters"] == ["ams"]

                wait_until(holds, "the poller to hold the meter")
                wait_until(lambda: store.count_readings("ams") > 0, "the poller to store a reading")
                poller = status(poller_port)
                api = status(api_port)
                metrics = httpx.get(
                    f"http://127.0.0.1:{poller_port}/metrics", headers={"X-API-Key": key}, timeout=30
                ).text
                anonymous = httpx.get(f"http://127.0.0.1:{api_port}/metrics", timeout=30).status_code
        workers = work_leases(store).workers(60)
    finally:
        backend.close()
    assert poller is not None and api is not None
    assert (poller["worker"]["role"], poller["worker"]["shared"], poller["worker"]["workers"]) == (
        "poller",
        True,
        1,
    )
    assert api["worker"] == {"worker_id": "api-a", "role": "api"}  # polls nothing, holds nothing
    assert 'meterhub_worker_holds{meter="ams",worker="poller-a"} 1.0' in metrics
    assert 'meterhub_worker_meters_held{worker="poller-a"} 1.0' in metrics
    assert anonymous == 401
    assert workers == []  # both stopped cleanly: the poller gave its leases back


async def _backfill(store: Any, meter: Meter) -> None:
    job = BackfillJob.new(meter.id, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))
    async with httpx.AsyncClient() as client:
        await backfill_meter(store, client, meter, job, worker_id="cli-b")


@pytest.mark.anyio
async def test_a_backfill_held_by_another_worker_is_refused(backend: Backend) -> None:
    store = backend.open()
    meter = Meter("ams", "amsreader", 3, "Europe/Oslo", 10, "", {"base_url": "http://127.0.0.1:9"})
    store.add_meter(meter)
    assert work_leases(store).take("worker-a", BACKFILL, "ams", 60) is None
    with pytest.raises(InputError, match="being run by worker-a"):
        await _backfill(store, meter)
    assert work_leases(store).take("worker-a", BACKFILL, "ams", 60) is None  # still worker-a's
    assert store.token_get("backfill", "ams") is None  # the refused run wrote no progress


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
