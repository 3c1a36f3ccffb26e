"""UMeter's late grid-operator data: the poller re-reads recent days until they settle.

The simulator's ``late_data`` variant shows nothing of a local day before 06:00 the next day,
its quarter hours up to noon from then and the whole day from 18:00. The hub polls once a
simulated hour (the simulator's clock is stepped with the hub's) for a bounded number of polls;
the late days end up complete in the store, and a settled day is not read again (the simulator
counts the days asked).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from meterhub.model import Meter
from meterhub.poller import Poller
from meterhub.store import Store, open_store
from meterhub.vendors.umeter import mapping
from meterhub.vendors.umeter.connector import QUARTER_SOURCE
from meterhub.vendors.umeter.measurements import Period, measurements
from meterhub.vendors.umeter.payloads import UMeterAccount, local_midnight
from tests.simservers import Sim, simulator
from tests.steppedtime import stepped

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)  # Tuesday 13:00 in Amsterdam (CET, no clock change near)
POLLS = 72  # hourly, to Friday 2026-03-06 12:00 local
MEASUREMENTS = "/api/v2/measurements/{kind}/{value}"
LATE_DAY = date(2026, 3, 3)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    yield opened
    opened.close()


def umeter_meter(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> Meter:
    info = sim.info()
    monkeypatch.setenv("T_UM_PASSWORD", info["credentials"]["password"])
    options = {"base_url": sim.base_url, "username": info["credentials"]["username"],
               "password": "env:T_UM_PASSWORD", "ean": info["eans"][0]}
    return Meter("um", "umeter", 1, "Europe/Amsterdam", 900, "", options)


def stored_day(store: Store, day: date) -> Day:
    records = store.intervals("um", local_midnight(day), local_midnight(day + timedelta(days=1)))
    return [(r.start, r.end, r.import_kwh, r.export_kwh) for r in records]


Day = list[tuple[datetime, datetime, float | None, float | None]]


def whole_day(account: UMeterAccount, day: date) -> Day:
    """Return the day as the simulator shows it once delivered (asked long after, no variant)."""
    answer = measurements(account, Period(day, day + timedelta(days=1), "quarter"),
                          ("r181", "r182", "r281", "r282"), datetime(2030, 1, 1, tzinfo=UTC), False)
    measured = mapping.map_measurements(answer, "um", QUARTER_SOURCE)
    return [(r.start, r.end, r.import_kwh, r.export_kwh) for r in measured.intervals]


async def test_late_days_end_up_complete_and_settled_days_are_not_read_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulator("umeter", speed=0.0, start=START) as sim:
        sim._control("POST", "/_sim/variants", {"late_data": True})
        meter = umeter_meter(sim, monkeypatch)
        store.add_meter(meter)
        seen: dict[datetime, int] = {}
        asked_when_settled: dict[str, int] = {}
        async with stepped(START, sim.base_url) as (driver, client):
            poller = Poller(store, client, clock=driver.clock)
            for poll in range(POLLS):
                at = START + timedelta(hours=poll)
                await driver.step_to(at)
                outcome = await poller.poll_once(meter.id)
                assert outcome.ok, outcome.error
                seen[at] = len(stored_day(store, LATE_DAY))
                if at == datetime(2026, 3, 4, 23, tzinfo=UTC):  # Thursday 00:00 local
                    asked_when_settled = dict(sim.info()["periods_asked"])
        asked = sim.info()["periods_asked"]
        calls = sim.calls()
        account = sim.app.state.server.account

    # Tuesday: nothing while it lasts, none before 06:00 Wednesday, its morning (48 quarter hours)
    # from then, all 96 from 18:00 Wednesday.
    assert seen[datetime(2026, 3, 3, 22, tzinfo=UTC)] == 0  # Tuesday 23:00
    assert seen[datetime(2026, 3, 4, 4, tzinfo=UTC)] == 0  # Wednesday 05:00
    assert seen[datetime(2026, 3, 4, 5, tzinfo=UTC)] == 48  # Wednesday 06:00
    assert seen[datetime(2026, 3, 4, 16, tzinfo=UTC)] == 48  # Wednesday 17:00
    assert seen[datetime(2026, 3, 4, 17, tzinfo=UTC)] == 96  # Wednesday 18:00
    for day in (date(2026, 3, 2), LATE_DAY, date(2026, 3, 4)):
        assert stored_day(store, day) == whole_day(account, day), day

    # Reads per day, worked out by hand from the schedule: every poll reads today; a recent day is
    # read again an hour after a read that changed it, then 2, 4, 8 hours after ones that did not,
    # until it is complete and two reads agree. At 18:00 the next day's opening register reading
    # (its midnight) appears, so the poller sees a gap after the half day it has and its recovery
    # backfill reads the day (complete by then); the next poll's re-read agrees.
    #   Mon 2nd (yesterday at the first poll): 13 (morning), 14, 16, 18 (backfill), 19 (agrees) = 5
    #   Tue 3rd: 11 as today (13..23), then 00, 02, 06 (morning), 07, 09, 13, 18 (backfill), 19 = 19
    #   Wed 4th: 24 as today, then the same 8 on Thursday = 32
    #   Thu 5th: 24 as today, then 00, 02, 06, 07, 09 on Friday (next due at 13:00) = 29
    #   Fri 6th: 13 as today (00..12)
    assert asked == {"date/20260302": 5, "date/20260303": 19, "date/20260304": 24 + 8,
                     "date/20260305": 24 + 5, "date/20260306": 13}
    assert calls[MEASUREMENTS] == 5 + 19 + 32 + 29 + 13  # and nothing else was asked
    # settled days were read no more after they settled (Mon on Tue 19:00, Tue on Wed 19:00)
    assert {day: asked_when_settled[day] for day in ("date/20260302", "date/20260303")} == {
        "date/20260302": 5, "date/20260303": 19}
