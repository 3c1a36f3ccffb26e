"""Three poller workers on one PostgreSQL database and the real Mosquitto share 300 meters.

300 simulated meters of all five vendors (240 IAMMETER cloud meters, 40 Intellimeter points,
8 smart-MAC devices, 8 AMS readers, 4 UMeter accounts), served over loopback at 20 times real
time, and two AMS readers publishing JSON over MQTT (with and without the device's clock) to a
shared subscription group. Three worker processes run the hub as ``meterhub serve --role poller``
does, their clocks following the simulators. The test waits for conditions, never sleeps, and
shows:

- the workers divide the meters: each holds a third, no meter is held twice, none is left out;
- every meter is polled once per due time: consecutive calls of one meter, as the simulator
  (smart-MAC, AMS) or the booked quota ledger (IAMMETER, Intellimeter) saw them, are never closer
  than its poll interval, and every meter is polled round after round. The ledger is read from
  the moment every meter has succeeded once: before, a cloud meter's slot may be booked by a poll
  that then waits for a login slot, and a booking is a call only once the login is shared;
- the simulators count 0 quota breaches in their own call logs (``/_sim/calls?times=true``);
- 0 duplicate rows, and each MQTT message stored once;
- after one worker is killed with SIGKILL, the others take its meters once its leases expire,
  poll them, and backfill the window it missed (from its last poll to the survivors' first, its
  cloud meters' readings have no gap of two intervals, and no recovery backfill is left pending).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.publish as mqtt_publish
import psycopg
import pytest

from meterhub.model import Meter
from meterhub.poller.connectors import ConnectorClass
from meterhub.poller.recovery import recovery_key
from meterhub.vendors.amsreader.device import AmsReaderConfig, ReaderDevice
from meterhub.vendors.amsreader.mqttpayloads import json_classic
from meterhub.vendors.base import quota_ledger_key
from meterhub.vendors.iammeter.account import MeterSpec, SiteSpec
from meterhub.vendors.iammeter.payloads import METERSDATA_FLAT
from meterhub.vendors.registry import load_connector
from tests.backends import Backend, database_url
from tests.e2e_cases import QuotaCheck
from tests.mqttbroker import BROKER_HOST, BROKER_PORT, require_broker, unique_topic
from tests.simservers import Sim, simulator
from tests.waiting import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.mqtt, pytest.mark.slow, pytest.mark.timeout(1200)]

SPEED = 20.0
"""Simulated seconds per real second, for the simulators and the workers' clocks alike."""
LEASE_S = 30.0
"""Real seconds a worker's lease lasts unrenewed (600 simulated: a dead worker's cloud meters
miss at least two 5-minute polls, so their window must be backfilled)."""
MARGIN_S = 3.0
"""Simulated seconds between a quota window's edge and the next booking (150 real ms)."""
START = datetime(2026, 3, 2, 9, 3, tzinfo=UTC)
COUNTS = {"iammeter": 240, "intellimeter": 40, "smartmac": 8, "amsreader": 8, "umeter": 4}
INTERVALS_S = {"iammeter": 300, "intellimeter": 300, "smartmac": 60, "amsreader": 20, "umeter": 900}
ROUNDS = 2
"""Polls every meter gets before a worker is killed (UMeter's 15 minutes: one)."""
MQTT_MESSAGES = 12
DEADLINE_S = 600.0
"""Generous: at 20 times real time a busy machine falls behind the simulators and catches up."""
CHECK_EVERY_S = 1.0
"""The least time between two looks at an expensive condition (every simulator's call log)."""
ROOT = Path(__file__).resolve().parents[2]
SECRETS = {"SCALE_IAM_PASSWORD": "123456", "SCALE_IM_PASSWORD": "test", "SCALE_UM_PASSWORD": "umeter-demo"}


@dataclass
class Fleet:
    """The simulators, the meters on them, and where each meter's calls are counted."""

    sims: dict[str, list[Sim]] = field(default_factory=dict)
    meters: list[Meter] = field(default_factory=list)
    device_sims: dict[str, Sim] = field(default_factory=dict)
    """Meters with a simulator of their own (smart-MAC, AMS): their calls are the device's log."""
    secrets: dict[str, str] = field(default_factory=lambda: dict(SECRETS))
    """The environment the meters' ``env:`` references name."""


@dataclass
class Worker:
    """One worker process and the port its /healthz answers on."""

    name: str
    process: subprocess.Popen[str]
    port: int

    def status(self) -> dict[str, Any]:
        answer = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=30)
        answer.raise_for_status()
        worker: dict[str, Any] = answer.json()["worker"]
        return worker

    def held(self) -> set[str]:
        return set(self.status()["meters"])


@contextmanager
def fleet() -> Iterator[Fleet]:
    """Serve every simulator on loopback and yield the fleet with its meters."""
    built = Fleet()
    with ExitStack() as stack:
        serials = [f"{0x5C000000 + n:08X}" for n in range(COUNTS["iammeter"])]
        site = SiteSpec("scale", phases=1, base_load_w=450.0, initial_import_kwh=1766.59)
        iam = stack.enter_context(
            simulator(
                "iammeter",
                start=START,
                sites=(site,),
                meters=tuple(MeterSpec(sn, "scale", METERSDATA_FLAT) for sn in serials),
                places=(),
            )
        )
        info = iam.info()
        for sn in serials:
            options = {
                "base_url": iam.base_url,
                "username": info["user_name"],
                "password": "env:SCALE_IAM_PASSWORD",
                "sn": sn,
            }
            built.meters.append(Meter(f"iam-{sn}", "iammeter", 1, info["tz"], 300, "", options))
        points = tuple(f"p{n:03d}" for n in range(COUNTS["intellimeter"]))
        im = stack.enter_context(simulator("intellimeter", start=START, meters=points))
        login = im.info()["login"]
        for point in points:
            options = {
                "base_url": im.base_url,
                "username": login["username"],
                "password": "env:SCALE_IM_PASSWORD",
                "point": point,
            }
            built.meters.append(Meter(f"im-{point}", "intellimeter", 3, im.info()["tz"], 300, "", options))
        built.sims = {"iammeter": [iam], "intellimeter": [im], "smartmac": [], "amsreader": [], "umeter": []}
        for n in range(COUNTS["smartmac"]):
            devid, pin = str(1728053249 + n), f"{n:06d}"
            sm = stack.enter_context(simulator("smartmac", start=START, devid=devid, devpass=pin))
            built.secrets[f"SCALE_SM_PIN_{n}"] = pin
            options = {"base_url": sm.base_url, "devid": devid, "devpass": f"env:SCALE_SM_PIN_{n}"}
            built.meters.append(Meter(f"sm-{n}", "smartmac", 3, "Europe/Oslo", 60, "", options))
            built.sims["smartmac"].append(sm)
            built.device_sims[f"sm-{n}"] = sm
        for n in range(COUNTS["amsreader"]):
            ams = stack.enter_context(simulator("amsreader", start=START))
            interval_s = INTERVALS_S["amsreader"]
            built.meters.append(
                Meter(f"ams-{n}", "amsreader", 3, "Europe/Oslo", interval_s, "", {"base_url": ams.base_url})
            )
            built.sims["amsreader"].append(ams)
            built.device_sims[f"ams-{n}"] = ams
        for n in range(COUNTS["umeter"]):
            um = stack.enter_context(simulator("umeter", start=START))
            umeter_info = um.info()
            options = {
                "base_url": um.base_url,
                "username": umeter_info["credentials"]["username"],
                "password": "env:SCALE_UM_PASSWORD",
                "ean": umeter_info["eans"][0],
            }
            built.meters.append(Meter(f"um-{n}", "umeter", 1, umeter_info["zone"], 900, "", options))
            built.sims["umeter"].append(um)
        yield built


def align(sims: list[Sim]) -> tuple[datetime, float]:
    """Set every simulator to one instant at SPEED; return (that instant, the monotonic second of it)."""
    now = START + timedelta(minutes=1)
    for sim in sims:
        httpx.post(
            f"{sim.base_url}/_sim/clock", json={"now": now.isoformat(), "speed": SPEED}
        ).raise_for_status()
    clock, _ = sims[0].clock_and_round_trip()
    return clock.now(), time.monotonic()


def write_config(path: Path, topics: dict[str, str]) -> None:
    """Write the workers' meterhub.toml: short leases, the quota margin, two shared MQTT sources."""
    lines = [
        "[poller]",
        f"lease_s = {LEASE_S}",
        f"quota_margin_s = {MARGIN_S}",
        "startup_spread_s = 5",
        "",
    ]
    for meter_id, topic in topics.items():
        lines += [
            "[[mqtt]]",
            f'host = "{BROKER_HOST}"',
            f"port = {BROKER_PORT}",
            f'topic = "{topic}"',
            f'meter_id = "{meter_id}"',
            'format = "json"',
            'group = "scale"',
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")


def start_worker(
    name: str, url: str, config: Path, anchor: tuple[datetime, float], secrets: dict[str, str]
) -> Worker:
    """Start one worker process and wait for its port."""
    argument = json.dumps(
        {
            "database_url": url,
            "config": str(config),
            "worker_id": name,
            "sim_now": anchor[0].isoformat(),
            "sim_monotonic_s": anchor[1],
            "speed": SPEED,
        }
    )
    env = {**os.environ, **secrets}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.scale.worker", argument],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("port "), f"worker {name} did not start: {line!r}"
    return Worker(name, process, int(line.split()[1]))


def poll_rule(meter: Meter) -> str:
    """Return the quota rule one poll of ``meter`` books once (its latest-data call)."""
    return {"iammeter": "meterdata", "intellimeter": "data"}[meter.vendor]


def ledger_key(meter: Meter) -> str:
    """Return the quota-ledger key one poll of a cloud meter books."""
    vendor_class: ConnectorClass = load_connector(meter.vendor)
    rule = next(r for r in vendor_class.quotas if r.name == poll_rule(meter))
    return quota_ledger_key(meter.vendor, rule, vendor_class.quota_scope_keys(meter)[rule.name])


def booked(conn: psycopg.Connection[Any], keys: dict[str, str]) -> dict[str, list[datetime]]:
    """Return each cloud meter's booked calls, oldest first."""
    rows = conn.execute(
        "SELECT key, ts_ms FROM quota_ledger WHERE key = ANY(%s) ORDER BY ts_ms", (list(keys.values()),)
    ).fetchall()
    by_key: dict[str, list[datetime]] = {key: [] for key in keys.values()}
    for key, ts_ms in rows:
        by_key[key].append(datetime.fromtimestamp(ts_ms / 1000, UTC))
    return {meter_id: by_key[key] for meter_id, key in keys.items()}


def device_calls(sim: Sim) -> list[datetime]:
    """Return the simulated instants of a device's data calls."""
    times = sim.call_times()
    path = "/" if sim.vendor == "smartmac" else "/data.json"
    return sorted(times.get(path, []))


def polls(
    fleet_: Fleet, conn: psycopg.Connection[Any], keys: dict[str, str], since: datetime
) -> dict[str, list[datetime]]:
    """Return the instants every meter was polled at from ``since`` (by its simulator or the ledger)."""
    seen = booked(conn, keys)
    for meter_id, sim in fleet_.device_sims.items():
        seen[meter_id] = device_calls(sim)
    return {meter_id: [at for at in times if at >= since] for meter_id, times in seen.items()}


def quota_breaches(fleet_: Fleet) -> list[str]:
    """Return every window of a simulator's own call log that holds one call too many."""
    checks = {
        "iammeter": (QuotaCheck("login per hour", ("/api/v1/user/login",), 5, 3600),),
        "intellimeter": (
            QuotaCheck("session", ("/session",), 10, 3600),
            QuotaCheck("point", ("/point",), 60, 3600),
        ),
        "smartmac": (QuotaCheck("getdata (standard rate class)", ("/",), 1, 60),),
        "amsreader": (
            QuotaCheck(
                "one call per 2 s",
                ("/data.json", "/dayplot.json", "/monthplot.json", "/sysinfo.json", "/configuration.json"),
                1,
                2,
            ),
        ),
        "umeter": (
            QuotaCheck("token", ("/token",), 10, 3600),
            QuotaCheck(
                "api",
                ("/api/customer", "/api/v2/measurements/{kind}/{value}", "/api/P4/{ean}/{start}/{end}"),
                240,
                3600,
            ),
        ),
    }
    found = []
    for vendor, sims in fleet_.sims.items():
        for sim in sims:
            times = sim.call_times()
            found += [f"{sim.base_url}: {text}" for check in checks[vendor] for text in check.breaches(times)]
    return found


def publish(topic: str, device: ReaderDevice, at: datetime, timed: bool) -> None:
    """Publish one JSON document of the reader; without its clock when not ``timed``."""
    document = json.loads(json.dumps(json_classic(device, device.snapshot(at))))
    if not timed:
        document["t"] = int((at - device.config.start).total_seconds())  # seconds since boot
    mqtt_publish.single(topic, json.dumps(document), qos=1, hostname=BROKER_HOST, port=BROKER_PORT)


def throttled(condition: Callable[[], bool]) -> Callable[[], bool]:
    """Return ``condition`` looked at no more often than every CHECK_EVERY_S (False in between).

    Its looks read every simulator's call log and the ledger: looked at as often as
    :func:`~tests.waiting.wait_until` may, they would take the processor the workers need.
    """
    last_s = -math.inf

    def check() -> bool:
        nonlocal last_s
        if time.monotonic() - last_s < CHECK_EVERY_S:
            return False
        last_s = time.monotonic()
        return condition()

    return check


def test_three_workers_share_three_hundred_meters(tmp_path: Path) -> None:
    require_broker()
    backend = Backend("postgres", tmp_path)
    workers: list[Worker] = []
    try:
        store = backend.open()
        url = database_url(backend)
        with (
            fleet() as built,
            psycopg.connect(
                backend.postgres_url, options=f"-c search_path={backend.schema}", autocommit=True
            ) as conn,
        ):
            assert len(built.meters) == sum(COUNTS.values()) >= 300
            for meter in built.meters:
                store.add_meter(meter)
            topics = {"mq-timed": unique_topic(), "mq-untimed": unique_topic()}
            for meter_id in topics:
                store.add_meter(Meter(meter_id, "amsreader", 3, "Europe/Oslo", 10, "", {}))
            readers = {
                meter_id: ReaderDevice(
                    AmsReaderConfig(start=START, ntp=meter_id == "mq-timed"), seed=n, speed=0.0
                )
                for n, meter_id in enumerate(topics)
            }
            all_sims = [sim for sims in built.sims.values() for sim in sims]
            anchor = align(all_sims)
            config = tmp_path / "meterhub.toml"
            write_config(config, topics)
            workers = [start_worker(f"w{n}", url, config, anchor, built.secrets) for n in (1, 2, 3)]
            wanted = {meter.id for meter in built.meters}
            keys = {m.id: ledger_key(m) for m in built.meters if m.vendor in ("iammeter", "intellimeter")}
            intervals = {meter.id: INTERVALS_S[meter.vendor] for meter in built.meters}

            # the workers divide the meters: a third each, none twice, none left out
            def divided() -> bool:
                held = [worker.held() for worker in workers]
                return sorted(map(len, held)) == [100, 100, 100] and set().union(*held) == wanted

            wait_until(throttled(divided), "three workers to hold a third of the meters each", DEADLINE_S)
            shares = {worker.name: worker.held() for worker in workers}
            assert sum(map(len, shares.values())) == len(wanted)  # no meter held twice

            # every meter polled round after round (UMeter, every 15 minutes, once)
            def succeeded() -> bool:
                health = store.health(sorted(wanted))
                return all(health.get(m) is not None and health[m].last_success for m in wanted)

            wait_until(succeeded, "every meter to be polled successfully", DEADLINE_S)
            steady_from = built.sims["amsreader"][0].now()
            rounds_of = {m: ROUNDS for m in keys.keys() | built.device_sims.keys()}

            def polled() -> bool:
                seen = polls(built, conn, keys, steady_from)
                return all(len(seen[m]) >= rounds for m, rounds in rounds_of.items())

            wait_until(throttled(polled), f"every meter to be polled {ROUNDS} more times", DEADLINE_S)

            # MQTT: each message to one worker of the group, each stored once
            sim_now = built.sims["amsreader"][0].now()
            for n in range(MQTT_MESSAGES):
                for meter_id, topic in topics.items():
                    publish(
                        topic, readers[meter_id], sim_now + timedelta(seconds=10 * n), meter_id == "mq-timed"
                    )
            far = START + timedelta(days=30)

            def mqtt_stored(count: int) -> bool:
                return all(
                    len(list(store.iter_readings([m], START - timedelta(days=1), far, phase=0))) >= count
                    for m in topics
                )

            wait_until(lambda: mqtt_stored(MQTT_MESSAGES), "every MQTT message to be stored", DEADLINE_S)

            # one worker dies: the others take its meters once its leases expire, and poll them
            victim = workers[2]
            dead = shares[victim.name]
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait(DEADLINE_S)
            killed_s = time.monotonic()
            killed_at = built.sims["amsreader"][0].now()
            survivors = workers[:2]

            def taken_over() -> bool:
                held = [worker.held() for worker in survivors]
                return set().union(*held) == wanted and sum(map(len, held)) == len(wanted)

            wait_until(
                throttled(taken_over), "the surviving workers to take the dead worker's meters", DEADLINE_S
            )
            takeover_s = time.monotonic() - killed_s
            # within the lease time, plus the renewal that notices it and the look that sees it
            assert takeover_s <= LEASE_S + 2 * LEASE_S / 3 + 10

            def dead_meters_polled() -> bool:
                seen = polls(built, conn, keys, steady_from)
                cloud = [m for m in dead if m in seen]
                return all(seen[m] and seen[m][-1] > killed_at for m in cloud)

            wait_until(
                throttled(dead_meters_polled), "the dead worker's meters to be polled again", DEADLINE_S
            )
            first_polls = {m: min(times) for m, times in polls(built, conn, keys, killed_at).items() if times}

            dead_cloud = sorted(m for m in dead if m in keys)
            assert dead_cloud  # the victim held cloud meters whose window must be backfilled

            unfilled: dict[str, object] = {}

            def backfilled() -> bool:
                rows = conn.execute(
                    "SELECT key, value FROM tokens WHERE scope = 'backfill' AND key = ANY(%s)",
                    ([recovery_key(m) for m in dead],),
                ).fetchall()
                unfilled.clear()
                unfilled.update({str(key): str(value) for key, value in rows})
                for m in dead_cloud:
                    # The window the dead worker missed, from its last poll to the survivors' first,
                    # is covered from its start on: by the dead worker's last reading or the backfill.
                    interval = timedelta(seconds=intervals[m])
                    since, until = killed_at - interval, first_polls.get(m, far)
                    times = [r.ts for r in store.iter_readings([m], since, until, phase=0)]
                    gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(times)]
                    if not times or times[0] > killed_at + interval:
                        unfilled[m] = f"first reading of the window at {times[0] if times else None}"
                    elif max(gaps, default=0) >= 2 * intervals[m]:
                        unfilled[m] = f"gaps {sorted(gaps)[-3:]}"
                return not unfilled

            try:
                wait_until(
                    throttled(backfilled), "the dead worker's missed window to be backfilled", DEADLINE_S
                )
            except AssertionError as exc:
                shown = dict(sorted(unfilled.items())[:8])
                raise AssertionError(f"{exc}; {len(unfilled)} left, such as {shown}") from None

            for n in range(MQTT_MESSAGES, 2 * MQTT_MESSAGES):  # still each stored once
                for meter_id, topic in topics.items():
                    publish(
                        topic, readers[meter_id], sim_now + timedelta(seconds=10 * n), meter_id == "mq-timed"
                    )
            wait_until(lambda: mqtt_stored(2 * MQTT_MESSAGES), "the later MQTT messages", DEADLINE_S)

            for worker in survivors:  # a clean stop gives the leases back
                worker.process.send_signal(signal.SIGTERM)
            for worker in survivors:
                assert worker.process.wait(DEADLINE_S) == 0

            seen = polls(built, conn, keys, steady_from)
            too_soon = [
                f"{meter_id}: polled at {earlier} and {later}"
                for meter_id, times in seen.items()
                for earlier, later in pairwise(times)
                if (later - earlier).total_seconds() < intervals[meter_id] - MARGIN_S
            ]
            breaches = quota_breaches(built)
            duplicates = conn.execute(
                "SELECT count(*) FROM (SELECT meter, phase, ts FROM readings GROUP BY meter, phase, ts "
                "HAVING count(*) > 1) AS twice"
            ).fetchone()
            mqtt_rows = {
                m: len(list(store.iter_readings([m], START - timedelta(days=1), far, phase=0)))
                for m in topics
            }
            leases_left = conn.execute("SELECT count(*) FROM work_leases WHERE worker <> ''").fetchone()
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait(DEADLINE_S)
            if worker.process.stdout is not None:
                worker.process.stdout.close()
        backend.close()
    assert too_soon == []  # once per due time: never two polls of one meter within its interval
    assert breaches == []  # as the simulators counted their calls
    assert duplicates is not None and duplicates[0] == 0
    assert mqtt_rows == {"mq-timed": 2 * MQTT_MESSAGES, "mq-untimed": 2 * MQTT_MESSAGES}
    assert leases_left is not None and leases_left[0] == 0  # the survivors gave theirs back
