"""Fixtures for the API tests: the real app, served over loopback HTTP on a real SQLite file.

``api``        a running hub (no rate limit) with an admin user and an admin API key: an ApiServer
``serve_api``  a factory, ``serve_api(**settings)``, for a hub with other Settings (rate limits...)
``admin``      an httpx.Client on ``api`` sending the admin key as ``X-API-Key``
``anon``       an httpx.Client on ``api`` sending no credentials

``api.user(name, role, shares=[("meter", "m1")])`` adds a user and returns a client with a key of
theirs; ``api.store`` is a second store on the same database file, for seeding data directly.
An autouse fixture fails any test during which the app logged an unexpected (500) error.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from meterhub.api import security
from meterhub.api.app import create_app
from meterhub.config import Settings
from meterhub.model import UserRole
from meterhub.poller.hub import QuietServer, bind_socket
from meterhub.store import Store, open_store
from tests.waiting import wait_until

ADMIN = "admin"
ADMIN_PASSWORD = "admin-password-1"
USER_PASSWORD = "user-password-1"


@functools.cache
def password_hash(password: str) -> str:
    """Hash a test password once per session (argon2 is slow on purpose)."""
    return security.hash_password(password)


class ApiServer:
    """A hub served on a free loopback port, with its database and an admin's API key."""

    def __init__(self, database_url: str, settings: Settings) -> None:
        self.database_url = database_url
        self.settings = settings
        self.store: Store = open_store(database_url)
        self.store.add_user(ADMIN, UserRole.ADMIN, password_hash(ADMIN_PASSWORD))
        self.admin_key = security.issue_api_key(self.store, ADMIN, "tests")[1]
        self.app = create_app(database_url, settings)
        self._sock = bind_socket("127.0.0.1", 0)
        self.base_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on", ws="none")
        self._server = QuietServer(config)
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._server.serve(sockets=[self._sock]),), daemon=True
        )
        self._clients: list[httpx.Client] = []

    def start(self) -> ApiServer:
        """Start serving and wait until the app answers."""
        self._thread.start()
        wait_until(lambda: self._server.started or not self._thread.is_alive(), "the API server to start")
        if not self._server.started:
            raise RuntimeError("the API server did not start")
        return self

    def client(self, key: str | None = None, *, how: str = "x-api-key") -> httpx.Client:
        """Return a client sending ``key`` as ``X-API-Key``, a Bearer token, or ``?token=``."""
        headers: dict[str, str] = {}
        params: dict[str, str] = {}
        if key is not None and how == "x-api-key":
            headers["X-API-Key"] = key
        elif key is not None and how == "bearer":
            headers["Authorization"] = f"Bearer {key}"
        elif key is not None:
            params["token"] = key
        client = httpx.Client(base_url=self.base_url, headers=headers, params=params, timeout=30)
        self._clients.append(client)
        return client

    def user(
        self,
        name: str,
        role: UserRole | str,
        shares: Sequence[tuple[str, str]] = (),
        *,
        how: str = "x-api-key",
    ) -> httpx.Client:
        """Add a user (password USER_PASSWORD) with shares; return a client with a key of theirs."""
        self.store.add_user(name, UserRole(role), password_hash(USER_PASSWORD))
        for kind, object_id in shares:
            self.store.share(name, kind, object_id)
        return self.client(security.issue_api_key(self.store, name, "tests")[1], how=how)

    def login(self, name: str = ADMIN, password: str = ADMIN_PASSWORD) -> dict[str, Any]:
        """Sign in with the password grant; return the token answer."""
        answer = self.client().post(
            "/api/v1/auth/token", data={"grant_type": "password", "username": name, "password": password}
        )
        assert answer.status_code == 200, answer.text
        tokens: dict[str, Any] = answer.json()
        return tokens

    def stop(self) -> None:
        """Stop serving and close every client and the test's store."""
        for client in self._clients:
            client.close()
        self._server.should_exit = True
        self._thread.join(15)
        self._sock.close()
        self.store.close()


@pytest.fixture
def serve_api(tmp_path: Path) -> Iterator[Callable[..., ApiServer]]:
    """Yield a factory: ``serve_api(**settings)`` starts a hub on a fresh database."""
    servers: list[ApiServer] = []

    def serve(**overrides: Any) -> ApiServer:
        database_url = f"sqlite:///{tmp_path / f'api{len(servers)}.db'}"
        settings = Settings(database_url=database_url, **overrides)
        server = ApiServer(database_url, settings)
        servers.append(server)
        return server.start()

    yield serve
    for server in servers:
        server.stop()


@pytest.fixture
def api(serve_api: Callable[..., ApiServer]) -> ApiServer:
    """Return a running hub without a rate limit, with an admin and the admin's key."""
    return serve_api(api_rate_per_s=0)


@pytest.fixture
def admin(api: ApiServer) -> httpx.Client:
    """Return a client that sends the admin's API key."""
    return api.client(api.admin_key)


@pytest.fixture
def anon(api: ApiServer) -> httpx.Client:
    """Return a client that sends no credentials."""
    return api.client()


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def no_unexpected_errors() -> Iterator[list[logging.LogRecord]]:
    """Fail the test if the app logged an unexpected error (a 500) while it ran."""
    handler = _Errors()
    loggers = [logging.getLogger(name) for name in ("meterhub.api", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler.records
    for logger in loggers:
        logger.removeHandler(handler)
    assert [record.getMessage() for record in handler.records] == []
