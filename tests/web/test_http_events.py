"""The live event stream over real loopback HTTP: a viewer hears the meters shared with them, only.

The hub runs under uvicorn in a thread (tests/api/conftest.py's ApiServer); readings are stored
through the Ingestor in this process, which announces each committed batch on the live feed.
Every read of the stream is bounded by the client's read timeout, a generous deadline.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx

from meterhub.ingest import Ingestor
from meterhub.model import Meter, Reading, UserRole, utc_now
from tests.api.conftest import ApiServer, no_unexpected_errors, serve_api
from tests.waiting import DEADLINE_S

__all__ = ["no_unexpected_errors", "serve_api"]

SEEN, HIDDEN = "kitchen", "neighbour"


def events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    """Yield (event, data) of a server-sent event stream, skipping comments (pings)."""
    name, data = "message", list[str]()
    for line in lines:
        if line.startswith(":"):
            continue
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", list[str]()
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def reading(meter: str, seconds_ago: int, power_w: float, register: float) -> Reading:
    ts = utc_now().replace(microsecond=0) - timedelta(seconds=seconds_ago)
    return Reading(
        meter, ts, 0, 231.0, power_w / 231, power_w, energy_import_kwh=register, energy_export_kwh=0.0
    )


def store(api: ApiServer, one: Reading) -> None:
    report = Ingestor(api.store).ingest([one])
    assert report.stored == 1, report.reasons()


def test_a_viewer_hears_readings_of_shared_meters_and_never_of_others(
    serve_api: Callable[..., ApiServer],
) -> None:
    api = serve_api(api_rate_per_s=0)
    for meter in (SEEN, HIDDEN):
        api.store.add_meter(Meter(meter, "file", 1, "Europe/Oslo", 60, meter.title()))
    viewer = api.user("vera", UserRole.VIEWER, [("meter", SEEN)])
    timeout = httpx.Timeout(10.0, read=DEADLINE_S)
    with viewer.stream("GET", "/api/v1/events", timeout=timeout) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        stream = events(answer.iter_lines())
        assert next(stream) == ("hello", {"user": "vera"})

        first = reading(SEEN, 30, 1234.5, 10.0)
        store(api, first)
        name, data = next(stream)
        assert name == "readings"
        assert data == [
            {
                "meter": SEEN,
                "phase": 0,
                "ts": first.ts.isoformat(),
                "power_w": 1234.5,
                "voltage_v": 231.0,
                "current_a": round(1234.5 / 231, 2),
                "energy_import_kwh": 10.0,
                "energy_export_kwh": 0.0,
            }
        ]

        store(api, reading(HIDDEN, 20, 999.0, 50.0))
        second = reading(SEEN, 10, 321.0, 10.5)
        store(api, second)
        name, data = next(stream)  # the hidden meter's batch sent nothing: next comes the second
        assert name == "readings"
        assert [(d["meter"], d["ts"], d["power_w"]) for d in data] == [(SEEN, second.ts.isoformat(), 321.0)]


def test_the_stream_needs_a_sign_in(serve_api: Callable[..., ApiServer]) -> None:
    api = serve_api(api_rate_per_s=0)
    with api.client().stream("GET", "/api/v1/events") as answer:
        answer.read()
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")
