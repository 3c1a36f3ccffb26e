"""``/api/v1/latest`` keeps its answer only while the store is unchanged: a new reading shows at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from meterhub.api.routes.latest import CACHE_SWITCH
from meterhub.model import Meter, Reading
from meterhub.store.base import Store
from tests.api.conftest import ApiServer

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _reading(meter_id: str, minute: int, power_w: float) -> Reading:
    return Reading(meter_id, T0 + timedelta(minutes=minute), 0, 230.0, 1.0, power_w,
                   None, None, None, 100.0 + minute / 100, None, None, None)  # fmt: skip


def _power(client: httpx.Client) -> dict[str, float]:
    answer = client.get("/api/v1/latest")
    assert answer.status_code == 200, answer.text
    return {row["meter"]: row["power_w"] for row in answer.json()}


def test_a_reading_written_by_another_store_shows_in_the_next_answer(
    api: ApiServer, admin: httpx.Client
) -> None:
    # api.store is a second connection to the hub's database, as a poller process would be.
    api.store.add_meter(Meter("m1", "file", phases=1, interval_s=60))
    api.store.write_readings([_reading("m1", 0, 500.0)])
    assert _power(admin) == {"m1": 500.0}
    assert _power(admin) == {"m1": 500.0}  # answered again from the kept answer
    api.store.write_readings([_reading("m1", 1, 640.0)])
    assert _power(admin) == {"m1": 640.0}
    api.store.add_meter(Meter("m2", "file", phases=1, interval_s=60))
    api.store.write_readings([_reading("m2", 1, 75.0)])
    assert _power(admin) == {"m1": 640.0, "m2": 75.0}


def test_a_reading_written_by_the_hubs_own_store_shows_in_the_next_answer(
    api: ApiServer, admin: httpx.Client
) -> None:
    own: Store = api.app.state.store
    own.add_meter(Meter("m1", "file", phases=1, interval_s=60))
    own.write_readings([_reading("m1", 0, 10.0)])
    assert _power(admin) == {"m1": 10.0}
    for minute, power_w in ((1, 11.0), (2, 12.5), (3, 13.0)):
        own.write_readings([_reading("m1", minute, power_w)])
        assert _power(admin) == {"m1": power_w}


def test_each_caller_keeps_seeing_only_their_meters(api: ApiServer, admin: httpx.Client) -> None:
    for meter_id in ("m1", "m2"):
        api.store.add_meter(Meter(meter_id, "file", phases=1, interval_s=60))
    api.store.write_readings([_reading("m1", 0, 1.0), _reading("m2", 0, 2.0)])
    member = api.user("mia", "member", [("meter", "m2")])
    assert _power(admin) == {"m1": 1.0, "m2": 2.0}
    assert _power(member) == {"m2": 2.0}
    api.store.write_readings([_reading("m2", 1, 3.0)])
    assert _power(member) == {"m2": 3.0}
    assert _power(admin) == {"m1": 1.0, "m2": 3.0}


def test_the_change_count_moves_with_every_write_and_only_then(api: ApiServer) -> None:
    own: Store = api.app.state.store
    before = own.change_count()
    assert own.change_count() == before
    api.store.add_meter(Meter("m1", "file", phases=1, interval_s=60))
    after_meter = own.change_count()
    assert after_meter != before
    own.write_readings([_reading("m1", 0, 1.0)])
    assert own.change_count() != after_meter


def test_with_the_cache_off_every_request_reads_the_store(api: ApiServer, admin: httpx.Client) -> None:
    setattr(api.app.state, CACHE_SWITCH, False)
    api.store.add_meter(Meter("m1", "file", phases=1, interval_s=60))
    api.store.write_readings([_reading("m1", 0, 42.0)])
    assert _power(admin) == {"m1": 42.0}
    api.store.write_readings([_reading("m1", 1, 43.0)])
    assert _power(admin) == {"m1": 43.0}
    assert admin.get("/api/v1/latest", params={"format": "csv"}).text.splitlines()[0].startswith("meter,")
