"""Two API replicas on one PostgreSQL database: what they share and what each keeps to itself.

Both replicas are the real app served over loopback HTTP, each with its own store (its own
connections) on the same database schema. Sessions, refresh tokens, key revocations and login
lock-outs are shared; request rate limits are per process, as the README says.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn

from meterhub.api import security
from meterhub.api.app import create_app
from meterhub.api.auth import CACHE_S, Authenticator
from meterhub.api.limits import LoginThrottle
from meterhub.api.problems import ApiProblem
from meterhub.config import Settings
from meterhub.model import UserRole
from meterhub.poller.hub import QuietServer, bind_socket
from meterhub.store import open_store
from tests.api.conftest import ADMIN, ADMIN_PASSWORD, USER_PASSWORD, ApiServer, password_hash
from tests.backends import require_postgres, schema_url
from tests.waiting import wait_until

TOKEN, REVOKE, SESSION = "/api/v1/auth/token", "/api/v1/auth/revoke", "/api/v1/session"


class Replica:
    """One more replica of a hub: the same app on the same database, on a port of its own."""

    def __init__(self, database_url: str, settings: Settings) -> None:
        self._sock = bind_socket("127.0.0.1", 0)
        self.base_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(
            create_app(database_url, settings),
            log_level="warning",
            access_log=False,
            lifespan="on",
            ws="none",
        )
        self._server = QuietServer(config)
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._server.serve(sockets=[self._sock]),), daemon=True
        )
        self._clients: list[httpx.Client] = []

    def start(self) -> Replica:
        """Start serving and wait until the app answers."""
        self._thread.start()
        wait_until(lambda: self._server.started or not self._thread.is_alive(), "the replica to start")
        assert self._server.started, "the replica did not start"
        return self

    def client(self, headers: dict[str, str] | None = None) -> httpx.Client:
        """Return a client of this replica sending ``headers``."""
        client = httpx.Client(base_url=self.base_url, headers=headers or {}, timeout=30)
        self._clients.append(client)
        return client

    def stop(self) -> None:
        """Stop serving and close every client."""
        for client in self._clients:
            client.close()
        self._server.should_exit = True
        self._thread.join(15)
        self._sock.close()


@pytest.fixture
def replicas() -> Iterator[Callable[..., tuple[ApiServer, Replica]]]:
    """Yield ``start(**settings)``: two replicas on a fresh schema of the test PostgreSQL."""
    started: list[ApiServer | Replica] = []
    schemas: list[str] = []

    def start(**overrides: Any) -> tuple[ApiServer, Replica]:
        schemas.append(f"t_{uuid.uuid4().hex[:16]}")
        url = schema_url(require_postgres(), schemas[-1])
        settings = Settings(database_url=url, **overrides)
        first = ApiServer(url, settings)  # seeds the admin and the admin's key
        started.append(first)
        first.start()
        second = Replica(url, settings)
        started.append(second)
        return first, second.start()

    try:
        yield start
    finally:
        for server in started:
            server.stop()
        with psycopg.connect(require_postgres(), autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def sign_in(client: httpx.Client, name: str, password: str) -> httpx.Response:
    return client.post(TOKEN, data={"grant_type": "password", "username": name, "password": password})


@pytest.mark.postgres
def test_a_lockout_earned_across_replicas_holds_on_every_one(
    replicas: Callable[..., tuple[ApiServer, Replica]],
) -> None:
    one, two = replicas(login_free_attempts=2, login_lock_base_s=60, api_rate_per_s=0)
    on_one, on_two = one.client(), two.client()
    # The failures add up whichever replica sees them: two free, the third locks out.
    assert sign_in(on_one, ADMIN, "wrong-password").status_code == 400
    assert sign_in(on_two, ADMIN, "wrong-password").status_code == 400
    assert sign_in(on_one, ADMIN, "wrong-password").status_code == 400
    for client in (on_two, on_one):
        locked = sign_in(client, ADMIN, ADMIN_PASSWORD)
        assert locked.status_code == 429, locked.text
        assert 50 <= int(locked.headers["retry-after"]) <= 60
    one.store.add_user("bob", UserRole.VIEWER, password_hash(USER_PASSWORD))
    elsewhere = httpx.Client(
        base_url=two.base_url, transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30
    )
    with elsewhere:
        assert sign_in(elsewhere, "bob", USER_PASSWORD).status_code == 200  # another name and address
        assert sign_in(elsewhere, ADMIN, ADMIN_PASSWORD).status_code == 429  # the name stays locked


@pytest.mark.postgres
def test_a_revoked_key_and_an_ended_session_stop_working_on_every_replica(
    replicas: Callable[..., tuple[ApiServer, Replica]],
) -> None:
    one, two = replicas(api_rate_per_s=0)
    key = one.admin_key
    key_id = security.split_api_key(key)
    assert key_id is not None
    on_two = two.client({"X-API-Key": key})
    assert on_two.get(SESSION).status_code == 200  # the replica has checked and cached the key
    tokens = sign_in(one.client(), ADMIN, ADMIN_PASSWORD).json()
    bearer_two = two.client({"Authorization": f"Bearer {tokens['access_token']}"})
    assert bearer_two.get(SESSION).status_code == 200  # a session opened on one works on the other
    refreshed = two.client().post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200  # and its refresh token rotates there
    reused = one.client().post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert reused.status_code == 400  # the used token is known to both: reuse ends the session
    wait_until(lambda: bearer_two.get(SESSION).status_code == 401, "the ended session to end on two")

    other = security.issue_api_key(one.store, ADMIN, "second")[1]
    on_two_other = two.client({"X-API-Key": other})
    assert on_two_other.get(SESSION).status_code == 200
    assert one.client(other).delete(f"/api/v1/keys/{key_id[0]}").status_code == 204
    assert one.client(key).get(SESSION).status_code == 401  # at once where it was revoked
    wait_until(lambda: on_two.get(SESSION).status_code == 401, "the revoked key to fail on two")
    assert on_two_other.get(SESSION).status_code == 200  # the other key is untouched


@pytest.mark.postgres
def test_another_replica_sees_a_revocation_within_the_cache_time() -> None:
    url = schema_url(require_postgres(), f"t_{uuid.uuid4().hex[:16]}")
    stores = [open_store(url), open_store(url)]
    try:
        stores[0].add_user(ADMIN, UserRole.ADMIN, password_hash(ADMIN_PASSWORD))
        key = security.issue_api_key(stores[0], ADMIN, "tests")[1]
        clock = [1000.0]
        here, there = (Authenticator(store, Settings(), monotonic=lambda: clock[0]) for store in stores)
        assert here.authenticate(key)[0].user == there.authenticate(key)[0].user == ADMIN
        here.revoke(key)
        assert here.cached(key) is None  # the replica that revoked forgets at once
        with pytest.raises(ApiProblem) as refused:
            here.authenticate(key)
        assert refused.value.status == 401
        clock[0] += CACHE_S - 0.001
        assert there.cached(key) is not None  # the other replica's check is younger than the bound
        clock[0] += 0.001
        assert there.cached(key) is None  # past the bound it asks the store again, and is refused
        with pytest.raises(ApiProblem) as refused:
            there.authenticate(key)
        assert refused.value.status == 401
    finally:
        for store in stores:
            store.close()
        with psycopg.connect(require_postgres(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{url.rsplit("=", 1)[1]}" CASCADE')


@pytest.mark.postgres
def test_failures_counted_at_once_on_two_replicas_all_count() -> None:
    url = schema_url(require_postgres(), f"t_{uuid.uuid4().hex[:16]}")
    stores = [open_store(url), open_store(url)]
    try:
        throttles = [LoginThrottle(20, 60.0, 900.0, store=store) for store in stores]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda n: throttles[n % 2].failed(["user:eve"]), range(20)))
        assert throttles[0].wait_s(["user:eve"]) == throttles[1].wait_s(["user:eve"]) == 0.0
        throttles[1].failed(["user:eve"])  # the 21st failure: the first beyond the free ones
        assert 59.0 < throttles[0].wait_s(["user:eve"]) <= 60.0
        throttles[0].succeeded("user:eve")
        assert throttles[1].wait_s(["user:eve"]) == 0.0
    finally:
        for store in stores:
            store.close()
        with psycopg.connect(require_postgres(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{url.rsplit("=", 1)[1]}" CASCADE')


@pytest.mark.postgres
def test_request_rate_limits_are_per_replica(replicas: Callable[..., tuple[ApiServer, Replica]]) -> None:
    one, two = replicas(api_rate_per_s=0.01, api_rate_burst=2)
    on_one, on_two = one.client(one.admin_key), two.client({"X-API-Key": one.admin_key})
    assert [on_one.get(SESSION).status_code for _ in range(3)] == [200, 200, 429]
    assert [on_two.get(SESSION).status_code for _ in range(3)] == [200, 200, 429]
