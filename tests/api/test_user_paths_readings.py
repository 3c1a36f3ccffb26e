"""The readings history: plain and fully validated requests answer alike, and a new reading shows at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from meterhub.api.routes.latest import CACHE_SWITCH
from meterhub.model import Meter, Reading
from meterhub.store.base import Store
from tests.api.conftest import ApiServer
from tests.api.formats import problem

HOUR = datetime(2026, 2, 10, 10, 0, tzinfo=UTC)
PATH = "/api/v1/meters/m1/readings"
RANGE = {"start": "2026-02-10T10:00:00Z", "end": "2026-02-10T12:00:00Z", "bucket": "1h"}


def _reading(minute: int, power_w: float) -> Reading:
    return Reading("m1", HOUR + timedelta(minutes=minute), 0, 230.0, 1.0, power_w,
                   None, None, None, 50.0 + minute / 1000, None, None, None)  # fmt: skip


def _seed(store: Store) -> None:
    store.add_meter(Meter("m1", "file", phases=1, tz="UTC", interval_s=60))
    store.write_readings([_reading(minute, 100.0) for minute in range(30)])


def _first_hour(client: httpx.Client, **extra: str) -> dict[str, object]:
    answer = client.get(PATH, params={**RANGE, **extra})
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, object]] = answer.json()["data"]
    assert rows[0]["start"] == "2026-02-10T10:00:00+00:00" and rows[0]["end"] == "2026-02-10T11:00:00+00:00"
    return rows[0]


def test_a_reading_written_by_another_store_shows_in_the_next_history(
    api: ApiServer, admin: httpx.Client
) -> None:
    _seed(api.store)
    assert _first_hour(admin)["count"] == 30
    assert _first_hour(admin)["power_avg_w"] == 100.0
    # Two late readings of 400 W: (30 * 100 + 2 * 400) / 32 = 118.75 W.
    api.store.write_readings([_reading(30, 400.0), _reading(31, 400.0)])
    first = _first_hour(admin)
    assert first["count"] == 32
    assert first["power_avg_w"] == 118.75
    assert first["power_max_w"] == 400.0


def test_a_reading_written_by_the_hubs_own_store_shows_in_the_next_history(
    api: ApiServer, admin: httpx.Client
) -> None:
    own: Store = api.app.state.store
    _seed(own)
    assert _first_hour(admin, format="json")["count"] == 30
    own.write_readings([_reading(45, 700.0)])
    assert _first_hour(admin, format="json")["count"] == 31
    assert _first_hour(admin, format="json")["power_max_w"] == 700.0


def test_plain_and_fully_validated_requests_answer_the_same_bytes(
    api: ApiServer, admin: httpx.Client
) -> None:
    _seed(api.store)
    plain = admin.get(PATH, params=RANGE)
    # An unknown parameter sends the request through FastAPI's own validation.
    validated = admin.get(PATH, params={**RANGE, "unrelated": "1"})
    assert plain.status_code == validated.status_code == 200
    assert plain.content == validated.content
    assert plain.json()["data"][0]["count"] == 30
    for fmt in ("csv", "ndjson"):
        assert admin.get(PATH, params={**RANGE, "format": fmt}).text == admin.get(
            PATH, params={**RANGE, "format": fmt, "unrelated": "1"}
        ).text


def test_bad_parameters_still_get_the_validation_problem(api: ApiServer, admin: httpx.Client) -> None:
    _seed(api.store)
    for bad in ({"points": "0"}, {"points": "abc"}, {"phase": "4"}, {"bucket": "2h"}, {"format": "pdf"}):
        problem(admin.get(PATH, params={"start": RANGE["start"], "end": RANGE["end"], **bad}), 422)
    problem(admin.get(PATH, params={**RANGE, "points": "10"}), 422)  # points and bucket together
    problem(admin.get("/api/v1/meters/nope/readings", params=RANGE), 404)


def test_the_history_of_a_meter_not_shared_is_not_found(api: ApiServer, admin: httpx.Client) -> None:
    _seed(api.store)
    api.store.add_meter(Meter("m2", "file", phases=1, tz="UTC", interval_s=60))
    member = api.user("mia", "member", [("meter", "m2")])
    assert _first_hour(admin)["count"] == 30  # the admin's answer is kept ...
    problem(member.get(PATH, params=RANGE), 404)  # ... and never handed to a caller who may not see m1


def test_with_sharing_off_every_request_reads_the_store(api: ApiServer, admin: httpx.Client) -> None:
    setattr(api.app.state, CACHE_SWITCH, False)
    _seed(api.store)
    assert _first_hour(admin)["count"] == 30
    api.store.write_readings([_reading(50, 100.0)])
    assert _first_hour(admin)["count"] == 31


def test_the_same_words_read_in_a_new_zone_once_the_meter_moves(
    api: ApiServer, admin: httpx.Client
) -> None:
    _seed(api.store)
    # Times without an offset are read in the meter's zone.
    local = {"start": "2026-02-10T10:00", "end": "2026-02-10T12:00", "bucket": "1h"}
    assert admin.get(PATH, params=local).json()["data"][0]["start"] == "2026-02-10T10:00:00+00:00"
    assert admin.get(PATH, params=local).json()["data"][0]["count"] == 30  # asked again, same answer
    api.store.update_meter(Meter("m1", "file", phases=1, tz="Europe/Oslo", interval_s=60))
    # 10:00-12:00 in Oslo (UTC+1 in February) is 09:00-11:00 UTC: an empty hour, then the 30 readings.
    rows = admin.get(PATH, params=local).json()["data"]
    assert [(row["start"], row["count"]) for row in rows] == [("2026-02-10T10:00:00+00:00", 30)]
    assert admin.get(PATH, params=local).json()["start"] == "2026-02-10T09:00:00+00:00"
