"""``/metrics`` serves every meter's values beside the hub's own counters, read from the store.

Over real HTTP on loopback, on a real SQLite file: per-phase gauges, registers as counters,
reading age and online status with meter, vendor and phase labels; the same answer from a second
replica of the API; a new reading in the next scrape; and the shipped Grafana dashboard, whose
every query must name metrics and labels that ``/metrics`` exposes.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from meterhub.api.app import create_app
from meterhub.meternow import MeterNowCache
from meterhub.metrics import METER_METRICS
from meterhub.model import Meter, Place, Reading, Role, utc_now
from meterhub.poller.hub import QuietServer, bind_socket
from meterhub.store.base import Store
from tests.api.conftest import ApiServer
from tests.waiting import wait_until

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "meterhub.json"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _seed(store: Store) -> None:
    now = utc_now()
    store.add_meter(Meter("house", "iammeter", 3, "Europe/Oslo", 60, "House"))
    store.add_meter(Meter("pv", "file", 1, "Europe/Oslo", 60))
    store.add_meter(Meter("new", "umeter", 1, "Europe/Oslo", 60))
    ts = now - timedelta(seconds=30)
    store.write_readings(
        [
            Reading("house", ts, 0, power_w=1500.0, energy_import_kwh=12345.678, energy_export_kwh=12.5,
                    frequency_hz=50.01),
            Reading("house", ts, 1, voltage_v=231.0, current_a=2.0, power_w=400.0),
            Reading("house", ts, 2, voltage_v=229.5, current_a=3.0, power_w=600.0),
            Reading("house", ts, 3, voltage_v=230.5, current_a=2.2, power_w=500.0),
            Reading("pv", now - timedelta(hours=2), 0, power_w=-900.0, energy_export_kwh=4321.0),
        ]
    )  # fmt: skip
    store.record_health("house", True, now)
    store.add_place(Place("home", "Europe/Oslo", "Home"))
    store.attach_meter("home", "house", Role.GRID)
    store.attach_meter("home", "pv", Role.SOLAR)


def _scrape(client: httpx.Client) -> tuple[str, Samples]:
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return answer.text, samples


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_metrics_serve_each_meters_values_with_labels(api: ApiServer, admin: httpx.Client) -> None:
    _seed(api.store)
    text, samples = _scrape(admin)
    house = {"meter": "house", "vendor": "iammeter"}
    assert _value(samples, "meterhub_meter_power_watts", **house, phase="total") == 1500.0
    assert _value(samples, "meterhub_meter_power_watts", **house, phase="L2") == 600.0
    assert _value(samples, "meterhub_meter_voltage_volts", **house, phase="L1") == 231.0
    assert _value(samples, "meterhub_meter_voltage_volts", **house, phase="L3") == 230.5
    assert _value(samples, "meterhub_meter_current_amperes", **house, phase="L2") == 3.0
    assert _value(samples, "meterhub_meter_frequency_hertz", **house, phase="total") == 50.01
    assert _value(samples, "meterhub_meter_energy_import_kwh_total", **house, phase="total") == 12345.678
    assert _value(samples, "meterhub_meter_energy_export_kwh_total", **house, phase="total") == 12.5
    assert re.search(r"^# TYPE meterhub_meter_energy_import_kwh(_total)? counter$", text, re.MULTILINE)
    assert _value(samples, "meterhub_meter_online", **house) == 1.0
    age = _value(samples, "meterhub_meter_reading_age_seconds", **house)
    assert age is not None and 30.0 <= age < 3600.0

    pv = {"meter": "pv", "vendor": "file"}
    assert _value(samples, "meterhub_meter_energy_export_kwh_total", **pv, phase="total") == 4321.0
    pv_age = _value(samples, "meterhub_meter_reading_age_seconds", **pv)
    assert pv_age is not None and pv_age >= 7200.0
    assert _value(samples, "meterhub_meter_online", **pv) == 0.0  # no poll health, and its data is stale
    assert _value(samples, "meterhub_meter_online", meter="new", vendor="umeter") == 0.0
    assert _value(samples, "meterhub_meter_reading_age_seconds", meter="new", vendor="umeter") is None
    assert _value(samples, "meterhub_meter_place_info", meter="house", place="home", role="grid") == 1.0
    assert _value(samples, "meterhub_meter_place_info", meter="pv", place="home", role="solar") == 1.0
    assert _value(samples, "meterhub_meters") == 3.0
    # The hub's own counters are still there beside them.
    assert "# TYPE meterhub_http_request_duration_seconds histogram" in text
    assert re.search(r"^# TYPE meterhub_polls(_total)? counter$", text, re.MULTILINE)
    # No meter has a value it did not report: pv has no voltage.
    assert not any(
        name == "meterhub_meter_voltage_volts" and ("meter", "pv") in labels for name, labels in samples
    )


def test_metrics_need_authentication(api: ApiServer, anon: httpx.Client) -> None:
    _seed(api.store)
    answer = anon.get("/metrics")
    assert answer.status_code == 401
    assert "meterhub_meter" not in answer.text


def test_a_member_sees_only_the_meters_shared_with_them(api: ApiServer) -> None:
    _seed(api.store)
    viewer = api.user("grafana", "viewer", shares=[("meter", "pv")], how="bearer")  # as prometheus.yml
    text, samples = _scrape(viewer)
    meters = {dict(labels).get("meter") for name, labels in samples if name.startswith("meterhub_meter_")}
    assert meters == {"pv"}
    assert '"house"' not in text
    assert _value(samples, "meterhub_meters") == 1.0
    assert _value(samples, "meterhub_meter_place_info", meter="pv", place="home", role="solar") is None
    member = api.user("family", "member", shares=[("place", "home")])
    _, shared = _scrape(member)
    assert _value(shared, "meterhub_meter_place_info", meter="pv", place="home", role="solar") == 1.0
    assert _value(shared, "meterhub_meters") == 2.0


def test_a_new_reading_shows_in_the_next_scrape(api: ApiServer, admin: httpx.Client) -> None:
    _seed(api.store)
    _, before = _scrape(admin)
    assert _value(before, "meterhub_meter_power_watts", meter="pv", vendor="file", phase="total") == -900.0
    api.store.write_readings([Reading("pv", utc_now(), 0, power_w=-2500.0, energy_export_kwh=4322.5)])
    _, after = _scrape(admin)
    assert _value(after, "meterhub_meter_power_watts", meter="pv", vendor="file", phase="total") == -2500.0
    assert (
        _value(after, "meterhub_meter_energy_export_kwh_total", meter="pv", vendor="file", phase="total")
        == 4322.5
    )
    assert _value(after, "meterhub_meter_online", meter="pv", vendor="file") == 1.0  # fresh again


@contextmanager
def _replica(api: ApiServer) -> Iterator[str]:
    """Serve a second app on the same database, as a second API process would; yield its URL."""
    sock = bind_socket("127.0.0.1", 0)
    config = uvicorn.Config(create_app(api.database_url, api.settings), log_level="warning", lifespan="on")
    server = QuietServer(config)
    thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[sock]),), daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), "the replica to start")
        assert server.started
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def test_every_replica_answers_the_same(api: ApiServer, admin: httpx.Client) -> None:
    _seed(api.store)
    with (
        _replica(api) as base_url,
        httpx.Client(base_url=base_url, headers={"X-API-Key": api.admin_key}) as other,
    ):
        _, first = _scrape(admin)
        _, second = _scrape(other)

    def meters(samples: Samples) -> Samples:
        return {
            key: value
            for key, value in samples.items()
            if key[0].startswith("meterhub_meter") and key[0] != "meterhub_meter_reading_age_seconds"
        }

    assert meters(first) and meters(first) == meters(second)


def test_the_store_is_read_again_only_when_it_changed(api: ApiServer) -> None:
    _seed(api.store)
    cache = MeterNowCache(api.store)
    first = cache.snapshot()
    assert cache.snapshot() is first  # unchanged: nothing read
    api.store.write_readings([Reading("new", utc_now(), 0, power_w=10.0)])
    second = cache.snapshot()
    assert second is not first
    assert [r.power_w for r in second.readings["new"]] == [10.0]


def test_a_thousand_meters_cost_a_few_samples_each(api: ApiServer, admin: httpx.Client) -> None:
    now = utc_now()
    count = 1000
    for n in range(count):
        api.store.add_meter(Meter(f"m{n:04d}", "file", 1, "UTC", 60))
    api.store.write_readings(
        [Reading(f"m{n:04d}", now, 0, 230.0, 1.0, float(n), None, None, None, 10.0 + n) for n in range(count)]
    )
    _, samples = _scrape(admin)
    names = [name for name, _ in samples if name.startswith("meterhub_meter_")]
    assert names.count("meterhub_meter_online") == count
    assert names.count("meterhub_meter_power_watts") == count
    assert _value(samples, "meterhub_meter_power_watts", meter="m0999", vendor="file", phase="total") == 999.0
    # power, voltage, current, import register, age, timestamp, online, failures: eight each
    assert len(names) == count * 8
    assert _value(samples, "meterhub_meters") == count


def _exprs(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                found.append(value)
            elif key == "query" and isinstance(value, dict) and isinstance(value.get("query"), str):
                found.append(value["query"])
            else:
                found.extend(_exprs(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_exprs(item))
    return found


_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}


def test_grafana_dashboard_queries_name_exposed_metrics(api: ApiServer, admin: httpx.Client) -> None:
    _seed(api.store)
    _scrape(admin)  # an HTTP request counted before the scrape that is checked
    text, samples = _scrape(admin)
    exposed: set[str] = set()
    for family in text_string_to_metric_families(text):
        exposed.add(family.name)
        exposed.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
    labels_of: dict[str, set[str]] = {}
    for name, labels in samples:
        labels_of.setdefault(name, set()).update(key for key, _ in labels)

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = _exprs(dashboard)
    assert len(exprs) >= 10
    used: set[str] = set()
    for expr in exprs:
        names = set(re.findall(r"\bmeterhub_[a-z_]+", expr))
        assert names, f"a query names no meterhub metric: {expr}"
        unknown = names - exposed
        assert not unknown, f"{expr} names metrics /metrics does not expose: {sorted(unknown)}"
        used |= names
        for name, matchers in re.findall(r"\b(meterhub_[a-z_]+)\{([^}]*)\}", expr):
            for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers):
                assert label in labels_of.get(name, set()), f"{expr}: {name} has no label {label}"
    panel_titles = {panel["title"] for panel in dashboard["panels"]}
    assert {"Power per meter", "Energy per day", "Voltage per phase", "Reading age", "Online"} <= panel_titles
    assert any("increase(meterhub_meter_energy_import_kwh_total" in expr for expr in exprs)
    assert set(METER_METRICS) & used  # the dashboard is built on the meter metrics
