"""``meterhub db copy``: a SQLite hub of all five vendors moved into a fresh PostgreSQL database.

The hub is filled the way a household fills it: each vendor's simulator served over loopback,
``meterhub poll`` and ``meterhub backfill`` run against them (readings, interval records, device
series, vendor tokens, backfill progress, the quota ledger, meter health), and a place with a
tariff, a price series, users, API keys, shares and a hub setting added. The copy runs as a
subprocess, is interrupted after a few committed batches and resumed; then both hubs are served
over HTTP and must give the same answers, route by route, and the copy must accept an existing
password and an existing API key. Each test has a PostgreSQL database of its own.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx
import psycopg
import pytest
import uvicorn

from meterhub.api import security
from meterhub.api.app import create_app
from meterhub.config import Settings
from meterhub.hubzone import DEFAULT_TZ_KEY, SETTING_SCOPE, set_default_zone
from meterhub.model import Direction, Extra, Place, PricePoint, Reading, Role, UserRole
from meterhub.poller import BackfillLedger
from meterhub.poller.hub import QuietServer, bind_socket
from meterhub.store import Store, open_store
from tests.backends import require_postgres
from tests.e2e_cases import CASES
from tests.simservers import simulator
from tests.waiting import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ADMIN_PASSWORD = "admin-password-1"
VIEWER_PASSWORD = "viewer-password-1"
DB_PASSWORD = "pw-never-shown-42"
"""A password in the target URL (the test server trusts loopback, so it is never checked)."""


def meterhub(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``meterhub --database-url DB_URL ARGS`` as a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "meterhub", "--database-url", db_url, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "METERHUB_DEBUG": ""},
        check=False,
    )


def with_password(url: str) -> str:
    """Return ``url`` with DB_PASSWORD as its user's password."""
    split = urlsplit(url)
    user = split.username or "postgres"
    host = split.hostname or "127.0.0.1"
    port = f":{split.port}" if split.port else ""
    return urlunsplit(split._replace(netloc=f"{user}:{DB_PASSWORD}@{host}{port}"))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """Yield the URL of a fresh PostgreSQL database (with a password in it); drop it afterwards."""
    server = require_postgres()
    name = f"hubcopy_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    split = urlsplit(server)
    try:
        yield with_password(urlunsplit(split._replace(path=f"/{name}")))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Hub:
    """A populated SQLite hub and the secrets a user of it holds."""

    url: str
    admin_key: str
    viewer_key: str
    span: tuple[datetime, datetime]


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    """Return a SQLite hub filled by polling and backfilling every vendor's simulator (built once)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('hub') / 'meterhub.db'}"
    now = datetime.now(UTC)
    with ExitStack() as stack, pytest.MonkeyPatch.context() as monkeypatch:
        store = open_store(url)
        try:
            for vendor, case in CASES.items():
                sim = stack.enter_context(simulator(vendor, **case.sim_options(now, None)))
                store.add_meter(case.meter(sim.info(), sim.base_url, monkeypatch))
        finally:
            store.close()
        polled = meterhub(url, "poll")
        assert polled.returncode == 0, polled.stderr
        for meter_id in ("iam", "im", "ams", "um"):  # the smart-MAC device keeps no history
            filled = meterhub(url, "backfill", meter_id, "--since", "now-2d", "--until", "now-10m")
            assert filled.returncode == 0, (meter_id, filled.stdout, filled.stderr)
    store = open_store(url)
    try:
        keys = _add_accounts_and_places(store, now)
    finally:
        store.close()
    return Hub(url, *keys, span=(now - timedelta(days=3), now + timedelta(hours=1)))


@pytest.fixture
def hub(populated: Hub, tmp_path: Path) -> Hub:
    """Return a copy of the populated hub's file of this test's own (tests change their source)."""
    path = tmp_path / "meterhub.db"
    source = populated.url.removeprefix("sqlite:///")
    with closing(sqlite3.connect(source)) as original, closing(sqlite3.connect(path)) as mine:
        original.backup(mine)
    return replace(populated, url=f"sqlite:///{path}")


def _add_accounts_and_places(store: Store, now: datetime) -> tuple[str, str]:
    """Add what a household sets up by hand; return the admin's and the viewer's API keys."""
    # The smart-MAC meter was polled once; a day of its readings and device series, as an
    # import writes them, so one more meter has a whole local day of data.
    start = (now - timedelta(hours=30)).replace(minute=0, second=0, microsecond=0)
    register = 1200.0
    readings, extras = [], []
    for minute in range(0, 24 * 60, 1):
        ts = start + timedelta(minutes=minute)
        power_w = 400.0 + 300.0 * ((minute // 90) % 3)
        register += power_w / 60_000
        readings.append(
            Reading("sm", ts, 0, 231.0, power_w / 231.0, power_w, None, 0.97, 50.0, register, 0.0)
        )
        extras.append(Extra("sm", ts, "temperature_c", 20.0 + (minute % 17) / 4))
    assert store.write_readings(readings).stored == len(readings)
    store.write_extras(extras)
    store.add_place(
        Place(
            "home",
            "Europe/Oslo",
            "Home",
            (("iam", Role.GRID), ("sm", Role.CONSUMPTION)),
            {"currency": "NOK", "import_series": "spot", "export_per_kwh": 0.1},
        )
    )
    day = (now - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    store.write_prices(
        [
            PricePoint(day + timedelta(hours=h), day + timedelta(hours=h + 1), 0.5 + (h % 24) / 40, "NOK",
                       Direction.IMPORT, "spot")
            for h in range(4 * 24)
        ]
    )  # fmt: skip
    security.create_user(store, "admin", UserRole.ADMIN, ADMIN_PASSWORD)
    security.create_user(store, "viewer", UserRole.VIEWER, VIEWER_PASSWORD)
    store.share("viewer", "place", "home")
    store.share("viewer", "meter", "um")
    admin_key = security.issue_api_key(store, "admin", "laptop")[1]
    viewer_key = security.issue_api_key(store, "viewer", "phone")[1]
    old, _ = security.issue_api_key(store, "viewer", "old phone")
    store.revoke_api_key(old.key_id)
    set_default_zone(store, "Europe/Oslo")
    return admin_key, viewer_key


class Served:
    """The API app on one database, served on a free loopback port."""

    def __init__(self, database_url: str) -> None:
        settings = Settings(database_url=database_url, api_rate_per_s=0)
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
        self._thread.start()
        wait_until(lambda: self._server.started or not self._thread.is_alive(), "the API to start")
        assert self._server.started
        self._clients: list[httpx.Client] = []

    def client(self, key: str | None = None) -> httpx.Client:
        """Return a client sending ``key`` as X-API-Key."""
        client = httpx.Client(base_url=self.base_url, headers={"X-API-Key": key} if key else {}, timeout=60)
        self._clients.append(client)
        return client

    def stop(self) -> None:
        """Stop serving."""
        for client in self._clients:
            client.close()
        self._server.should_exit = True
        self._thread.join(15)
        self._sock.close()


def _answer(client: httpx.Client, path: str, **params: str) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == 200, (path, response.status_code, response.text)
    return response.json()


ABS_TOLERANCE = 1e-6
"""Answers' numbers agree this closely (SQLite keeps energy to the microwatt-hour), or to one unit
in the last decimal they show (see :func:`_last_place`)."""


ASKED_WHEN = {"age_s"}
"""Fields measured from the moment of asking, which is never the same on two hubs."""


def _last_place(value: float) -> float:
    """Return one unit in the last decimal an answer shows (0.1 for 621.0, 0.001 for 5.194).

    Answers round averages for display; the backends sum in different arithmetic (SQLite in
    fixed-point, PostgreSQL its own way), so a value halfway between two shown decimals may
    round either way. A count, or any value a copy gets wrong, differs by far more.
    """
    text = repr(float(value))
    if "e" in text or "." not in text:
        return 0.0
    return 10.0 ** -len(text.split(".")[1])


def differences(theirs: Any, ours: Any, where: str = "") -> list[str]:
    """Return where two JSON answers differ: in structure, text, or numbers beyond ABS_TOLERANCE."""
    if isinstance(theirs, dict) and isinstance(ours, dict):
        if theirs.keys() != ours.keys():
            return [f"{where}: fields {sorted(theirs)} != {sorted(ours)}"]
        return [
            found
            for key in theirs
            if key not in ASKED_WHEN
            for found in differences(theirs[key], ours[key], f"{where}.{key}")
        ]
    if isinstance(theirs, list) and isinstance(ours, list):
        if len(theirs) != len(ours):
            return [f"{where}: {len(theirs)} items != {len(ours)}"]
        return [
            found
            for i, (a, b) in enumerate(zip(theirs, ours, strict=True))
            for found in differences(a, b, f"{where}[{i}]")
        ]
    numbers = (int, float)
    if isinstance(theirs, numbers) and isinstance(ours, numbers) and not isinstance(theirs, bool):
        allowed = max(ABS_TOLERANCE, _last_place(theirs), _last_place(ours))
        return [] if abs(theirs - ours) <= allowed * (1 + 1e-9) else [f"{where}: {theirs} != {ours}"]
    return [] if theirs == ours else [f"{where}: {theirs!r} != {ours!r}"]


def _without_use(keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop when each key was last used: asking with a key is a use, on either hub."""
    return [{name: value for name, value in key.items() if name != "last_used_at"} for key in keys]


def _routes(hub: Hub, meter_ids: list[str]) -> list[tuple[str, dict[str, str]]]:
    start, end = (ts.isoformat() for ts in hub.span)
    span = {"start": start, "end": end}
    routes: list[tuple[str, dict[str, str]]] = [
        ("/api/v1/meters", {}),
        ("/api/v1/latest", {}),
        ("/api/v1/places", {}),
        ("/api/v1/places/home", {}),
        ("/api/v1/places/home/tariff", {}),
        ("/api/v1/places/home/energy", {**span, "groupby": "day"}),
        ("/api/v1/places/home/energy", {**span, "groupby": "hour"}),
        ("/api/v1/places/home/cost", {**span, "groupby": "day"}),
        ("/api/v1/prices", {}),
        ("/api/v1/prices/spot", span),
        ("/api/v1/users", {}),
        ("/api/v1/users/viewer", {}),
    ]
    for meter_id in meter_ids:
        routes += [
            (f"/api/v1/meters/{meter_id}", {}),
            (f"/api/v1/meters/{meter_id}/latest", {}),
            (f"/api/v1/meters/{meter_id}/readings", span),
            (f"/api/v1/meters/{meter_id}/readings", {**span, "bucket": "1h"}),
            (f"/api/v1/meters/{meter_id}/readings", {**span, "bucket": "1d"}),
            (f"/api/v1/meters/{meter_id}/energy", {**span, "groupby": "day"}),
            (f"/api/v1/meters/{meter_id}/energy", {**span, "groupby": "15m"}),
            (f"/api/v1/meters/{meter_id}/intervals", span),
            (f"/api/v1/meters/{meter_id}/series", {}),
        ]
    return routes


def test_a_copy_interrupted_and_resumed_answers_as_the_hub_it_copies(hub: Hub, pg_url: str) -> None:
    # Interrupted: three batches of 100 rows, then the run stops as an interrupted one would.
    first = meterhub(hub.url, "db", "copy", "--to", pg_url, "--batch-rows", "100", "--max-batches", "3")
    assert first.returncode == 0, first.stderr
    paused = re.search(r"paused after 3 batches \((\d+) rows written\)", first.stdout)
    assert paused, first.stdout
    partial = open_store(pg_url)
    try:
        assert [m.id for m in partial.list_meters()] == ["ams", "iam", "im", "sm", "um"]
        assert partial.count_readings() == int(paused[1]) > 100  # the meter with 4 rows, then 2 of 100+
        assert partial.list_users() == []  # accounts and tokens come last, all in one transaction
    finally:
        partial.close()

    # A second step of the copy continues where the first stopped...
    second = meterhub(hub.url, "db", "copy", "--to", pg_url, "--batch-rows", "100", "--max-batches", "4")
    assert second.returncode == 0, second.stderr
    assert "resuming the copy" in second.stderr
    resumed = re.search(r"paused after 4 batches \((\d+) rows written\)", second.stdout)
    assert resumed, second.stdout
    partial = open_store(pg_url)
    try:  # every row written by the second step is a new one: nothing was sent twice
        assert partial.count_readings() == int(paused[1]) + int(resumed[1])
    finally:
        partial.close()
    # ...and the last one finishes and verifies.
    done = meterhub(hub.url, "db", "copy", "--to", pg_url, "--batch-rows", "100")
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert done.stdout.rstrip().endswith("verified: the copy equals the source")
    assert "MISMATCH" not in done.stdout
    counts = {
        match[1]: (int(match[2]), int(match[3]))
        for match in re.finditer(r"^(\w+) +(\d+) +(\d+)$", done.stdout, re.MULTILINE)
    }
    for table in ("meters", "readings", "intervals", "extras", "users", "api_keys", "shares", "places",
                  "place_meters", "prices", "meter_health", "tokens", "quota_ledger"):  # fmt: skip
        assert counts[table][0] == counts[table][1] > 0, table
    assert re.search(
        r"energy per local day: 5 meters, \d+ days, largest difference 0\.000000 kWh", done.stdout
    )
    for run in (first, second, done):
        assert DB_PASSWORD not in run.stdout + run.stderr
    assert "postgres:***@" in done.stdout

    source, copy = open_store(hub.url), open_store(pg_url)
    try:
        assert copy.list_meters() == source.list_meters()  # zone, interval, phases, vendor options
        assert copy.count_readings() == source.count_readings()
        oslo = copy.get_meter("iam")
        assert oslo.tz == "Europe/Oslo" and oslo.interval_s == 300 and oslo.options["sn"]
        for meter_id in ("iam", "sm", "im", "ams", "um"):
            assert anyio.run(BackfillLedger(copy).load, meter_id) == anyio.run(
                BackfillLedger(source).load, meter_id
            )
        assert copy.token_get(SETTING_SCOPE, DEFAULT_TZ_KEY) == source.token_get(
            SETTING_SCOPE, DEFAULT_TZ_KEY
        )
    finally:
        source.close()
        copy.close()

    served_source, served_copy = Served(hub.url), Served(pg_url)
    try:
        theirs, ours = served_source.client(hub.admin_key), served_copy.client(hub.admin_key)
        meter_ids = [meter["id"] for meter in _answer(theirs, "/api/v1/meters")]
        assert sorted(meter_ids) == ["ams", "iam", "im", "sm", "um"]
        compared = 0
        for path, params in _routes(hub, meter_ids):
            assert differences(_answer(theirs, path, **params), _answer(ours, path, **params)) == [], (
                path,
                params,
            )
            compared += 1
        assert compared == 12 + 9 * 5
        assert _without_use(_answer(ours, "/api/v1/keys")) == _without_use(_answer(theirs, "/api/v1/keys"))
        days = _answer(
            ours,
            "/api/v1/meters/sm/energy",
            **{"start": hub.span[0].isoformat(), "end": hub.span[1].isoformat(), "groupby": "day"},
        )
        assert days["tz"] == "Europe/Oslo"  # the meter's own zone, as on the original
        assert sum(row["energy_import_kwh"] for row in days["data"]) > 1  # a real day of data compared

        # The viewer's key sees the same shared things on the copy.
        viewer_theirs, viewer_ours = served_source.client(hub.viewer_key), served_copy.client(hub.viewer_key)
        for path in ("/api/v1/meters", "/api/v1/places", "/api/v1/session"):
            assert _answer(viewer_ours, path) == _answer(viewer_theirs, path), path
        assert viewer_ours.get("/api/v1/meters/im").status_code in {403, 404}

        # Sign in on the copy with a password set on the original.
        signed = served_copy.client().post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD},
        )
        assert signed.status_code == 200, signed.text
        bearer = served_copy.client()
        bearer.headers["Authorization"] = f"Bearer {signed.json()['access_token']}"
        assert _answer(bearer, "/api/v1/session")["user"] == "admin"
        wrong = served_copy.client().post(
            "/api/v1/auth/token", data={"grant_type": "password", "username": "admin", "password": "not-it-1"}
        )
        assert wrong.status_code in {400, 401}
    finally:
        served_source.stop()
        served_copy.stop()


def test_a_copy_refuses_a_target_holding_another_hub(hub: Hub, pg_url: str, tmp_path: Path) -> None:
    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    other = open_store(other_url)
    other.close()
    done = meterhub(other_url, "db", "copy", "--to", pg_url)  # an empty hub: the copy is empty too
    assert done.returncode == 0, done.stderr
    refused = meterhub(hub.url, "db", "copy", "--to", pg_url)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: ") and "holds a copy of another hub" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    target = open_store(pg_url)
    try:
        assert target.list_meters() == []  # nothing was written
        target.add_user("someone", UserRole.ADMIN, security.hash_password("someone-password-1"))
    finally:
        target.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TABLE hubcopy_state")
    refused = meterhub(hub.url, "db", "copy", "--to", pg_url)
    assert refused.returncode == 1
    assert "already holds a hub (1 users)" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    for run in (done, refused):
        assert DB_PASSWORD not in run.stdout + run.stderr

    same = meterhub(hub.url, "db", "copy", "--to", hub.url)
    assert same.returncode == 1 and "the same database" in same.stderr


def test_two_copies_into_one_database_never_run_at_once(hub: Hub, pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as running:
        # The session lock a copy holds while it runs, taken here as a running copy would.
        running.execute("SELECT pg_advisory_lock(hashtext('meterhub hub copy'), 0)")
        second = meterhub(hub.url, "db", "copy", "--to", pg_url)
        assert second.returncode == 1
        assert (
            "another copy into postgresql://postgres:***@" in second.stderr and "is running" in second.stderr
        )
    after = meterhub(hub.url, "db", "copy", "--to", pg_url)
    assert after.returncode == 0, after.stderr
    assert after.stdout.rstrip().endswith("verified: the copy equals the source")


def test_rows_written_to_the_source_during_a_copy_fail_the_check_and_the_next_run_copies_them(
    hub: Hub, pg_url: str
) -> None:
    done = meterhub(hub.url, "db", "copy", "--to", pg_url)
    assert done.returncode == 0, done.stderr
    source = open_store(hub.url)
    try:
        # A backfill still running writes older history of the meter after its readings were copied.
        first = next(source.iter_readings(["sm"], *hub.span))
        older = [
            first._replace(
                ts=first.ts - timedelta(minutes=m), energy_import_kwh=first.energy_import_kwh - m * 0.001
            )
            for m in range(1, 31)
        ]
        assert source.write_readings(older).stored == 30
    finally:
        source.close()
    checked = meterhub(hub.url, "db", "copy", "--to", pg_url)
    assert checked.returncode == 1
    assert "MISMATCH readings of meter sm: " in checked.stdout
    assert checked.stdout.rstrip().endswith("verification FAILED")
    assert "error: the copy differs from its source" in checked.stderr
    again = meterhub(hub.url, "db", "copy", "--to", pg_url)
    assert again.returncode == 0, again.stdout
    assert again.stdout.rstrip().endswith("verified: the copy equals the source")


def test_a_copy_killed_after_a_committed_batch_resumes_without_duplicates(hub: Hub, pg_url: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "meterhub", "--database-url", hub.url, "db", "copy", "--to", pg_url,
         "--batch-rows", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        def committed() -> bool:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                if conn.execute("SELECT to_regclass('hubcopy_state')").fetchone() == (None,):
                    return False
                row = conn.execute(
                    "SELECT count(*) FROM hubcopy_state WHERE part LIKE 'readings:%'"
                ).fetchone()
                return row is not None and row[0] > 0

        wait_until(committed, "the copy to commit its first batch of readings")
        process.kill()
    finally:
        process.wait(60)
    assert process.returncode == -9  # killed mid-copy, not finished
    target = open_store(pg_url)
    try:
        assert target.count_readings() > 0
        assert target.list_users() == []
    finally:
        target.close()

    resumed = meterhub(hub.url, "db", "copy", "--to", pg_url)
    assert resumed.returncode == 0, (resumed.stdout, resumed.stderr)
    assert "resuming the copy" in resumed.stderr
    assert resumed.stdout.rstrip().endswith("verified: the copy equals the source")
    source, copy = open_store(hub.url), open_store(pg_url)
    try:
        for meter in source.list_meters():
            assert copy.count_readings(meter.id) == source.count_readings(meter.id), meter.id
    finally:
        source.close()
        copy.close()
