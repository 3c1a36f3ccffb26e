"""A date in an export means midnight in the meters' zone, in the API and the CLI alike."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import httpx
from click.testing import CliRunner

from meterhub.cli import main
from meterhub.model import Meter, Reading
from meterhub.store.base import Store
from tests.api.conftest import ApiServer

# 23:30 UTC on 31 January is 00:30 on 1 February in Paris: inside "from 2007-02-01" there.
LATE_EVENING_UTC = datetime(2007, 1, 31, 23, 30, tzinfo=UTC)
EARLIER_UTC = datetime(2007, 1, 31, 22, 30, tzinfo=UTC)  # 23:30 on 31 January in Paris


def _seed(store: Store) -> None:
    store.add_meter(Meter("paris", "file", tz="Europe/Paris"))
    store.write_readings(
        [
            Reading("paris", ts, power_w=power)
            for ts, power in ((EARLIER_UTC, 100.0), (LATE_EVENING_UTC, 200.0))
        ]
    )


def test_the_api_reads_a_date_in_the_meters_zone(api: ApiServer, admin: httpx.Client) -> None:
    _seed(api.store)
    answer = admin.get(
        "/api/v1/export", params={"start": "2007-02-01", "end": "2007-02-02", "meter": "paris"}
    )
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(r["ts"], r["power_w"]) for r in rows] == [("2007-01-31T23:30:00+00:00", "200.0")]


def test_the_cli_reads_a_date_in_the_meters_zone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'paris.db'}"
    from meterhub.store import open_store

    store = open_store(url)
    _seed(store)
    store.close()
    result = CliRunner().invoke(
        main,
        ["--database-url", url, "export", "--start", "2007-02-01", "--end", "2007-02-02", "--meter", "paris"],
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["ts"], r["power_w"]) for r in rows] == [("2007-01-31T23:30:00+00:00", "200.0")]
