"""Database secrets never show: not in /healthz, the serve banner, db migrate, errors or logs.

The PostgreSQL server trusts local connections, so a URL may carry any password and still
connect: the tests put a marker secret in every libpq place for one and look for it in what the
hub shows.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from click.testing import CliRunner

from meterhub.cli.app import main
from meterhub.config import Settings
from meterhub.poller.hub import bind_socket
from meterhub.redact import RedactingFormatter, backend_kind, redact_text, redact_url
from meterhub.store import open_store
from meterhub.store.factory import redact_url as factory_redact_url
from tests.api.backends import postgres_schema_url
from tests.api.conftest import ApiServer
from tests.backends import require_postgres
from tests.waiting import wait_until

SECRET = "S3cr3tPw"

# (connection string, a part that must stay visible)
REDACTED = [
    (f"postgresql://u:{SECRET}@db.example:5432/meters", "postgresql://u:***@db.example:5432/meters"),
    (f"postgres://u:{SECRET}@h/db?sslmode=require", "postgres://u:***@h/db?sslmode=require"),
    (f"postgresql://u@h/db?sslmode=disable&password={SECRET}", "postgresql://u@h/db?sslmode=disable&password=***"),
    (f"postgresql://u@h/db?sslpassword={SECRET}&sslkey=/k.pem", "?sslpassword=***&sslkey=/k.pem"),
    (f"postgresql://u@h/db?oauth_client_secret={SECRET}", "oauth_client_secret=***"),
    (f"postgresql://u@h/db?PASSWORD={SECRET}", "PASSWORD=***"),
    (f"postgresql://u@h/db?pass%77ord={SECRET}", "pass%77ord=***"),
    (f"postgresql://u@h/db?%70assword={SECRET}&application_name=x", "&application_name=x"),
    (f"postgresql://u@h/db?password%3D{SECRET}", "postgresql://u@h/db?"),
    (f"postgresql://u:{SECRET}%40x@h/db", "postgresql://u:***@h/db"),
    (f"postgresql://u:pa?{SECRET}@h/db", "postgresql://u:***@h/db"),
    (f"postgresql://u:pa/{SECRET}@h/db", "postgresql://u:***@h/db"),
    (f"postgresql://u:p@{SECRET}@h/db", "@h/db"),
    (f"postgresql://u:with space{SECRET}@[::1/db", "postgresql://u:***@"),
    (f"postgresql://u@h1:5432,h2:5433/db?target_session_attrs=any&password={SECRET}", "h1:5432,h2:5433/db"),
    (f"host=h user=u password={SECRET} dbname=d", "host=h user=u password=*** dbname=d"),
    (f"host=h password = '{SECRET} with \\' quote' port=5", "port=5"),
    (f"host=h sslpassword={SECRET}", "host=h sslpassword=***"),
    (f"password='never closed {SECRET}", "password=***"),
    ("sqlite:///var/lib/meterhub.db", "sqlite:///var/lib/meterhub.db"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
]


@pytest.mark.parametrize(("url", "kept"), REDACTED)
def test_redact_url_hides_every_libpq_secret(url: str, kept: str) -> None:
    shown = redact_url(url)
    assert SECRET not in shown
    assert kept in shown
    assert factory_redact_url(url) == shown


@pytest.mark.parametrize(("url", "kept"), REDACTED)
def test_redact_text_hides_connection_strings_inside_messages(url: str, kept: str) -> None:
    shown = redact_text(f"cannot connect to {url}\nwhile starting")
    assert SECRET not in shown


def test_redact_text_hides_a_known_secret_in_any_form() -> None:
    secret = "p@ss w/rd"
    message = f'missing "=" after "{secret}" in connection info; also p%40ss%20w%2Frd'
    shown = redact_text(message, [secret, None])
    assert "p@ss" not in shown and "p%40ss" not in shown


def test_backend_kind_names_only_the_backend() -> None:
    assert backend_kind("sqlite:///x.db") == "sqlite"
    assert backend_kind(f"postgresql://u:{SECRET}@h/db") == "postgresql"
    assert backend_kind(f"postgres://u@h/db?password={SECRET}") == "postgresql"
    assert backend_kind("nonsense") == "unknown"


def test_log_lines_and_tracebacks_are_redacted() -> None:
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Capture()
    handler.setFormatter(RedactingFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("meterhub.test_secrets")
    logger.addHandler(handler)
    try:
        url = f"postgresql://u:{SECRET}@h/db?sslpassword={SECRET}"
        logger.warning("cannot reach %s", url)
        try:
            raise RuntimeError(f"failed on host=h password={SECRET}")
        except RuntimeError:
            logger.exception("store failed")
    finally:
        logger.removeHandler(handler)
    assert len(records) == 2
    assert all(SECRET not in line for line in records)
    assert "Traceback" in records[1]


@pytest.fixture
def secret_url() -> Iterator[str]:
    """Yield a URL of the test PostgreSQL in a fresh schema, with secrets in the query string."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    yield f"{postgres_schema_url(schema)}&sslmode=disable&password={SECRET}&sslpassword={SECRET}"
    with psycopg.connect(require_postgres(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_anonymous_healthz_shows_no_connection_string(secret_url: str) -> None:
    server = ApiServer(secret_url, Settings(database_url=secret_url)).start()
    try:
        answer = server.client().get("/healthz")
    finally:
        server.stop()
    assert answer.status_code == 200, answer.text
    assert SECRET not in answer.text
    assert "127.0.0.1" not in answer.text and "://" not in answer.text
    assert answer.json()["database"] == "postgresql"


def test_anonymous_healthz_on_sqlite_shows_no_path(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    server = ApiServer(url, Settings(database_url=url)).start()
    try:
        answer = server.client().get("/healthz")
    finally:
        server.stop()
    assert answer.json()["database"] == "sqlite"
    assert str(tmp_path) not in answer.text


def test_db_migrate_output_hides_the_secrets(secret_url: str) -> None:
    result = CliRunner().invoke(main, ["--database-url", secret_url, "db", "migrate"])
    assert result.exit_code == 0, result.output
    assert "applied" in result.output
    assert SECRET not in result.output
    assert "password=***" in result.output and "sslpassword=***" in result.output


def test_cli_errors_hide_the_secrets() -> None:
    url = f"postgresql://u:{SECRET}@127.0.0.1:1/db?sslpassword={SECRET}&connect_timeout=5"
    for bad in (url, f"postgresql://u:{SECRET}@[::1/db", f"{url}&bogus=1"):
        result = CliRunner().invoke(main, ["--database-url", bad, "db", "migrate"])
        assert result.exit_code == 1, result.output
        assert result.output.startswith("error: ")
        assert SECRET not in result.output


def test_serve_banner_and_log_hide_the_secrets(secret_url: str) -> None:
    with bind_socket("127.0.0.1", 0) as sock:
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "meterhub", "--database-url", secret_url]
    hub = subprocess.Popen(
        [*command, "serve", "--port", str(port), "-v"],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, "the hub to answer /healthz")
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).text
    finally:
        hub.send_signal(signal.SIGTERM)
        out, err = hub.communicate(timeout=60)
    assert "meterhub serving on" in out
    assert "password=***" in out
    assert SECRET not in out + err + health


def test_a_store_error_names_no_secret() -> None:
    with pytest.raises(Exception) as caught:
        open_store(f"postgresql://u:{SECRET}@127.0.0.1:1/db?password={SECRET}&connect_timeout=5")
    assert SECRET not in str(caught.value)
