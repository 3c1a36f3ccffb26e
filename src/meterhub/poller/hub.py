"""The running hub: poller, MQTT subscribers and the HTTP API on one event loop.

:class:`Hub` is what ``meterhub serve`` (and ``meterhub demo``) run. Its ``role`` says which
parts: ``all`` (the default), ``poller`` (the poller and MQTT subscribers; its HTTP server answers
``/healthz`` and ``/metrics`` for the orchestrator) or ``api`` (only the HTTP API, no polling).
Pollers lease their meters through the database (:class:`~meterhub.poller.work.Tenure`), so any
number of them share one PostgreSQL database; on SQLite the hub takes the database's serve lock
and a second hub on the same file refuses to start. It opens the store, writes
the meters a ``meterhub.toml`` declares, and runs until :meth:`Hub.stop` (or SIGINT/SIGTERM via
:func:`stop_on_signals`): the HTTP server finishes its requests, then the poller and subscribers
are cancelled between writes, the shared HTTP client is closed and the store flushed.

Reads never delay ingest. The API reads through a store of its own (its own connections) on the
loop's default worker threads, at most :data:`API_THREADS` at once; polls, MQTT messages and
backfills run their store calls on threads of their own (:mod:`meterhub.threads`), so they always
find one, however many heavy reads are running or waiting.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import signal
import socket
from collections.abc import Callable, Generator, Sequence
from dataclasses import replace

import anyio
import anyio.to_thread
import httpx
import uvicorn
from fastapi import FastAPI

from meterhub.api.app import create_app
from meterhub.api.routes.relay import use_poller
from meterhub.errors import ConfigError, UnknownMeterError
from meterhub.homeassistant.publisher import publisher_for
from meterhub.hubzone import default_zone
from meterhub.model import Meter
from meterhub.mqtt import MqttSubscriber
from meterhub.poller import workmetrics
from meterhub.poller.clock import Clock
from meterhub.poller.config import HubConfig
from meterhub.poller.connectors import HTTP_LIMITS, HTTP_TIMEOUT
from meterhub.poller.scheduler import Poller
from meterhub.poller.work import ROLES, Tenure, default_worker_id, worker_id_problem
from meterhub.pricefeeds.schedule import alongside_price_feeds
from meterhub.store import Store, open_store
from meterhub.store.sqlite import SQLiteStore
from meterhub.store.sqlite_leases import ProcessLock, lock_single_process

__all__ = [
    "API_THREADS",
    "GRACE_S",
    "Hub",
    "QuietServer",
    "apply_declared_meters",
    "bind_socket",
    "stop_on_signals",
]

log = logging.getLogger(__name__)

API_THREADS = 4
"""Worker threads the API's blocking calls may hold at once; more wait for one, holding nothing.
Reads are mostly Python work under one interpreter lock: more threads would answer them little
sooner, and would leave ingest's threads less of that lock."""

GRACE_S = 5
"""How long a stopping hub waits for open requests (a browser's event stream) before closing them."""


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its owner, which stops everything at once."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Install no signal handlers."""
        yield


def bind_socket(host: str, port: int) -> socket.socket:
    """Return a listening socket on host:port (0 picks a free port), or raise ConfigError."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve host {host!r}: {exc.strerror}") from exc
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = "is busy" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
        raise ConfigError(f"port {port} on {host} {reason}; choose another with --port") from exc
    sock.setblocking(False)
    return sock


def apply_declared_meters(store: Store, meters: Sequence[Meter]) -> list[str]:
    """Add or update declared meters in the store; return what changed, one line each.

    A meter declared without ``tz`` keeps the zone it has, or takes the hub's default when new.
    """
    changes: list[str] = []
    for declared in meters:
        meter = declared
        try:
            current = store.get_meter(meter.id)
        except UnknownMeterError:
            zone_note = ""
            if not meter.tz:
                zone = default_zone(store)
                meter, zone_note = replace(meter, tz=zone.tz), f", {zone.tz}: {zone.source}"
            store.add_meter(meter)
            changes.append(f"added meter {meter.id} ({meter.vendor}{zone_note})")
            continue
        if not meter.tz:
            meter = replace(meter, tz=current.tz)
        if current != meter or dict(current.options) != dict(meter.options):
            store.update_meter(meter)
            changes.append(f"updated meter {meter.id} ({meter.vendor})")
    return changes


async def stop_on_signals(stop: Callable[[], None]) -> None:
    """Call ``stop`` at the first SIGINT or SIGTERM."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for received in signals:
            log.info("received %s; stopping", signal.Signals(received).name)
            stop()
            return


class Hub:
    """The hub's processes in one event loop, sharing one store and one HTTP client."""

    def __init__(
        self,
        database_url: str,
        config: HubConfig | None = None,
        *,
        clock: Clock | None = None,
        http_timeout: httpx.Timeout = HTTP_TIMEOUT,
        role: str = "all",
        worker_id: str | None = None,
    ) -> None:
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        self.database_url = database_url
        self.role = role
        self.worker_id = worker_id or default_worker_id()
        problem = worker_id_problem(self.worker_id)
        if problem is not None:
            raise ConfigError(problem)
        self.tenure: Tenure | None = None
        self._lock: ProcessLock | None = None
        self.config = config or HubConfig()
        self.clock = clock or Clock()
        self._http_timeout = http_timeout
        self._server: QuietServer | None = None
        self._app: FastAPI | None = None
        self._stopping = False
        self.poller: Poller | None = None
        self.changes: list[str] = []
        self.started = anyio.Event()

    def stop(self) -> None:
        """Ask the hub to finish: the HTTP server first, then everything else."""
        self._stopping = True
        if self._app is not None:
            self._app.state.draining = True  # event streams end, so the server can finish
        if self._server is not None:
            self._server.should_exit = True

    async def run(self, sock: socket.socket) -> None:
        """Serve the API on ``sock`` and poll until :meth:`stop`."""
        anyio.to_thread.current_default_thread_limiter().total_tokens = API_THREADS
        store = await anyio.to_thread.run_sync(open_store, self.database_url)
        try:
            if isinstance(store, SQLiteStore):
                self.lock_database(store.path)  # one process serves a SQLite file
            if self.role != "api":
                self.tenure = Tenure(store, self.worker_id, self.role, self.config.poller.lease_s)
                workmetrics.install()
            self.changes = await anyio.to_thread.run_sync(apply_declared_meters, store, self.config.meters)
            async with httpx.AsyncClient(timeout=self._http_timeout, limits=HTTP_LIMITS) as client:
                await self._run_parts(store, client, sock)
        finally:
            with anyio.CancelScope(shield=True):  # flushed even when the hub is cancelled
                await anyio.to_thread.run_sync(store.close)
            if self.tenure is not None:
                self.tenure.close()
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def lock_database(self, sqlite_path: str) -> None:
        """Take the SQLite database's serve lock (if not held yet), or raise ConfigError."""
        if self._lock is None:
            self._lock = lock_single_process(sqlite_path)

    def worker_status(self) -> dict[str, object]:
        """Return what ``/healthz`` shows of this worker: its id, role and the meters it holds."""
        if self.tenure is None:
            return {"worker_id": self.worker_id, "role": self.role}
        return self.tenure.describe()

    async def _run_parts(self, store: Store, client: httpx.AsyncClient, sock: socket.socket) -> None:
        polling = self.role != "api"
        self.poller = Poller(store, client, clock=self.clock, settings=self.config.poller, tenure=self.tenure)
        app = create_app(self.database_url)
        app.state.worker_status = self.worker_status
        self._app = app
        if polling:
            use_poller(app, self.poller)  # live reads and relay switches take the meter's turn
        server = QuietServer(
            uvicorn.Config(
                app,
                log_level="warning",
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=GRACE_S,
            )
        )
        self._server = server
        if self._stopping:
            return
        subscriber = MqttSubscriber(store, self.config.mqtt) if self.config.mqtt and polling else None
        publisher = publisher_for(store, self.config.homeassistant, self.worker_id)
        poller_scope = anyio.CancelScope()

        async def run_poller(poller: Poller) -> None:
            with poller_scope:
                await alongside_price_feeds(
                    poller.run,
                    store,
                    client,
                    self.config.prices,
                    self.clock,
                    worker=self.worker_id,
                    lease_s=self.config.poller.lease_s,
                )

        async with anyio.create_task_group() as task_group:
            if polling:
                task_group.start_soon(run_poller, self.poller)
            if subscriber is not None:
                task_group.start_soon(subscriber.run)
            if publisher is not None:
                task_group.start_soon(publisher.run)
            self.started.set()
            try:
                await server.serve(sockets=[sock])
            finally:
                poller_scope.cancel()
                if subscriber is not None:
                    subscriber.stop()  # it stores what it already received, then returns
                if publisher is not None:
                    publisher.stop()  # it says offline on its status topic, then returns
