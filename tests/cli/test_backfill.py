"""``meterhub backfill`` against the IAMMETER simulator over loopback HTTP, on a real SQLite file.

The backfill is interrupted by faults the simulator injects, resumed by running the same command
again, and run once more to show it is idempotent; the simulator's call counts show what reached
the vendor.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise
from typing import cast

import anyio
import pytest

from meterhub.poller import BackfillLedger, ConnectorClass, declared_plan, history_chunk_s
from meterhub.store import open_store
from meterhub.vendors.registry import CONNECTORS, load_connector
from tests.cli.conftest import Run
from tests.simservers import Sim, simulator

LIST = "/api/v1/site/meterdatalist2/{sn}"


@pytest.fixture
def iammeter(monkeypatch: pytest.MonkeyPatch, run: Run) -> Iterator[Sim]:
    with simulator("iammeter") as sim:
        info = sim.info()
        monkeypatch.setenv("T_IAM_PASSWORD", info["password"])
        run(
            "meters", "add", "iam", "--vendor", "iammeter", "--tz", info["tz"],
            "--base-url", sim.base_url, "--sn", info["meters"][0]["sn"],
            "--username", info["user_name"], "--password-env", "T_IAM_PASSWORD",
        )  # fmt: skip
        yield sim


def test_backfill_resumes_after_an_interruption_and_is_idempotent(
    run: Run, db_url: str, iammeter: Sim
) -> None:
    until = (iammeter.now() - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    since = (until - timedelta(days=6)).isoformat()
    args = ("backfill", "iam", "--since", since, "--until", until.isoformat(), "--retries", "0")
    iammeter.faults(error_status=502, error_every=4)  # the login, two days, then a failure
    first = run(*args, ok=False)
    assert first.exit_code == 1
    assert "history windows of 1 day" in first.stdout
    assert first.stdout.count("iam: stored up to") == 2
    assert "progress is saved up to" in first.stderr and "run the same command again" in first.stderr
    assert len(first.stderr.strip().splitlines()) == 1
    calls_interrupted = iammeter.calls()[LIST]
    store = open_store(db_url)
    try:
        stored_first = store.count_readings("iam")
    finally:
        store.close()
    assert stored_first > 0

    iammeter.faults()
    second = run(*args)
    assert "iam: resuming at" in second.stdout
    assert "(0 readings already there" in second.stdout
    calls_resumed = iammeter.calls()[LIST]
    assert calls_resumed - calls_interrupted == 5  # the days not stored yet, and no more

    third = run(*args)
    assert "is stored already" in third.stdout
    assert iammeter.calls()[LIST] == calls_resumed  # nothing asked of the vendor

    again = run(*args[:-2], "--restart")
    assert "stored 0 readings" in again.stdout  # everything fetched again was there already

    store = open_store(db_url)
    try:
        readings = list(store.iter_readings(["iam"], until - timedelta(days=6), until, phase=0))
        job = anyio.run(BackfillLedger(store).load, "iam")
    finally:
        store.close()
    times = [r.ts for r in readings]
    assert times == sorted(set(times))
    assert job is not None and job.finished
    interval_s = 300
    widest = max((b - a).total_seconds() for a, b in pairwise(times))
    assert widest <= 2 * interval_s or widest > 3600  # only the simulated meter's offline hours


def test_backfill_says_what_the_quota_allows(run: Run, iammeter: Sim) -> None:
    out = run("backfill", "iam", "--since", "now-3d", "--until", "now-1h").stdout
    first_line = out.splitlines()[0]
    assert re.fullmatch(
        r"iammeter: [34] history windows of 1 day; no documented quota limits them, so no waits",
        first_line,
    )
    assert "fetched; stored" in out


@pytest.mark.parametrize("vendor", [name for name, _ in CONNECTORS])
def test_every_vendor_declares_what_its_history_costs(vendor: str) -> None:
    connector_class = cast(ConnectorClass, load_connector(vendor))
    plan = declared_plan(connector_class, 400)
    assert plan.measured, f"{vendor} leaves the backfill estimate to a measurement"
    assert plan.chunk_s == history_chunk_s(connector_class)
    text = plan.describe()
    assert text.startswith(f"{vendor}: 400 history windows of ")
    assert "measured after the first window" not in text
    if plan.uses:  # a rule: 400 calls against it take at least a window of waiting
        assert "the quota makes this take at least" in text


def test_umeter_backfill_says_how_long_the_quota_makes_it_take() -> None:
    connector_class = cast(ConnectorClass, load_connector("umeter"))
    year = declared_plan(connector_class, 365).describe()
    assert year == (
        "umeter: 365 history windows of 1 day (1 api call(s) each, at most 240 per 1 h per account);"
        " the quota makes this take at least 1 h"
    )


def test_backfill_refuses_a_reversed_range(run: Run, iammeter: Sim) -> None:
    result = run("backfill", "iam", "--since", "now-1d", "--until", "now-2d", ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --since")


def test_backfill_of_an_unknown_meter_is_one_line(run: Run) -> None:
    result = run("backfill", "nope", "--since", "now-1d", ok=False)
    assert result.stderr.strip() == "error: unknown meter 'nope' (see 'meterhub meters list')"


def test_a_device_without_history_is_refused_at_once_saying_why(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulator("smartmac") as sim:
        info = sim.info()
        monkeypatch.setenv("T_PIN", info["devpass"])
        run(
            "meters", "add", "sm", "--vendor", "smartmac", "--base-url", sim.base_url,
            "--devid", info["devid"], "--devpass-env", "T_PIN",
        )  # fmt: skip
        result = run("backfill", "sm", "--since", "now-31d", ok=False)
        calls = sim.calls()
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: meter 'sm' (smartmac): the device keeps no history, so there is nothing to backfill; "
        "its readings are collected by polling, from when it was added"
    )
    assert result.stdout == ""  # no plan of 31 windows, no progress
    assert sum(calls.values()) == 0
