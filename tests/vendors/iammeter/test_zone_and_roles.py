"""The account's zone from its local and GMT times, and a meter's role from a place's hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from meterhub.model import Meter
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.base import ConnectorContext, QuotaGuard, TokenCache
from meterhub.vendors.iammeter.connector import IammeterConnector
from meterhub.vendors.iammeter.placeroles import PlaceHour, best_role
from meterhub.vendors.iammeter.simulator import create_app
from meterhub.vendors.iammeter.zone import account_zone, fixed_zone, offset_samples

pytestmark = pytest.mark.anyio

H = timedelta(hours=1)
OCT, NOV = datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC)


def test_offsets_are_read_from_the_seeds_meterdata_and_meterdatalist2_times() -> None:
    meterdata = {"data": {"values": [[1, 2, 3, 4, 5]], "localTime": "2020/8/28 15:27:33",
                          "gmtTime": "2020/8/28 5:27:33"}, "successful": True, "message": None}
    assert offset_samples(meterdata) == [(datetime(2020, 8, 28, 5, 27, 33, tzinfo=UTC), 10 * H)]
    listed = {"data": [{"rtcTime": "2023/9/1 0:00:22", "gmtTime": "2023/8/31 16:00:22", "values": []},
                       {"rtcTime": "not a time", "gmtTime": "2023/9/1 0:00:49", "values": []}],
              "successful": True, "message": None}
    assert offset_samples(listed) == [(datetime(2023, 8, 31, 16, 0, 22, tzinfo=UTC), 8 * H)]


def test_fixed_zones_carry_posix_signs() -> None:
    assert [fixed_zone(h * H) for h in (-5, 0, 1, 10)] == ["Etc/GMT+5", "Etc/UTC", "Etc/GMT-1", "Etc/GMT-10"]
    assert fixed_zone(timedelta(hours=5, minutes=30)) is None


def test_the_zone_asked_with_wins_only_when_it_has_the_offsets_seen() -> None:
    summer = [(datetime(2026, 6, 1, tzinfo=UTC), 2 * H)]
    assert account_zone(summer, "Europe/Oslo") == "Europe/Oslo"
    assert account_zone(summer, "Europe/London") == "Etc/GMT-2"  # London is +1 in June
    assert account_zone(summer, None) == "Etc/GMT-2"
    assert account_zone([], "Europe/Oslo") is None


def test_a_daylight_saving_change_seen_picks_a_zone_with_both_offsets() -> None:
    central_europe = [(OCT, 2 * H), (NOV, 1 * H)]
    assert account_zone(central_europe, "UTC") == "Europe/Amsterdam"  # the first with both, by name
    assert account_zone(central_europe, "Europe/Berlin") == "Europe/Berlin"
    eastern = [(OCT, -4 * H), (NOV, -5 * H)]
    zone = account_zone(eastern, "Europe/Oslo")
    assert zone is not None and zone.startswith("America/")
    assert [ZoneInfo(zone).utcoffset(at) for at in (OCT, NOV)] == [-4 * H, -5 * H]
    india = [(OCT, timedelta(hours=5, minutes=30))]  # no Etc/ zone for half hours
    assert ZoneInfo(str(account_zone(india, "UTC"))).utcoffset(OCT) == timedelta(hours=5, minutes=30)


async def test_a_new_york_account_seen_across_its_autumn_change_gets_a_zone_with_new_yorks_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IAM_ZONE_PASSWORD", "123456")
    start = datetime(2026, 11, 20, 12, tzinfo=UTC)  # the month before holds 1 November, 2 a.m.
    app = create_app(seed=1, speed=0.0, start=start)
    app.state.kit.set_variant("account_new_york")
    store = SQLiteStore(tmp_path / "hub.db")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://sim") as http:
            options = {"base_url": "https://sim", "username": "test", "password": "env:IAM_ZONE_PASSWORD"}
            context = ConnectorContext(http, TokenCache(store, "iammeter", lambda: start),
                                       QuotaGuard(store, "iammeter", IammeterConnector.quotas, lambda: start),
                                       lambda: start)
            found = await IammeterConnector(Meter("probe", "iammeter", 1, "UTC", 300, "", options),
                                            context).discover()
    finally:
        store.close()
    [zone] = {d.tz for d in found}
    assert zone.startswith("America/")
    new_york = ZoneInfo("America/New_York")
    for at in (datetime(2026, 10, 25, tzinfo=UTC), datetime(2026, 11, 15, tzinfo=UTC),
               datetime(2027, 3, 20, tzinfo=UTC), datetime(2027, 7, 1, tzinfo=UTC)):
        assert ZoneInfo(zone).utcoffset(at) == new_york.utcoffset(at)


def hours(values: list[tuple[float, float, float, float]]) -> dict[datetime, PlaceHour]:
    return {OCT + i * H: PlaceHour(*row) for i, row in enumerate(values)}


def test_a_role_is_the_one_whose_hours_the_meter_repeats() -> None:
    # yield, fromGrid, toGrid, specialLoad per hour
    place = hours([(0.0, 0.5, 0.0, 0.2), (1.2, 0.0, 0.6, 0.3), (2.0, 0.1, 1.1, 0.2),
                   (1.5, 0.2, 0.4, 0.4), (0.3, 0.8, 0.0, 0.2), (0.0, 0.9, 0.0, 0.3)])
    grid = {OCT + i * H: pair for i, pair in enumerate([(0.5, 0.0), (0.0, 0.61), (0.1, 1.1), (0.21, 0.4),
                                                        (0.79, 0.0), (0.9, 0.0)])}
    solar = {OCT + i * H: (y, 0.0) for i, y in enumerate([0.0, 1.21, 1.98, 1.5, 0.3, 0.0])}
    special = {OCT + i * H: (s, 0.0) for i, s in enumerate([0.2, 0.3, 0.2, 0.41, 0.2, 0.3])}
    idle = {OCT + i * H: (0.0, 0.0) for i in range(6)}
    assert [m.role if (m := best_role(place, meter)) else None for meter in (grid, solar, special, idle)] == [
        "grid", "solar", "special", None,
    ]
    assert best_role(place, {OCT: (0.5, 0.0)}) is None  # too few hours to tell


def test_one_hour_booked_late_does_not_hide_the_meter() -> None:
    # the place booked an offline stretch's 12.05 kWh in the hour its meter came back (the first)
    place = hours([(0.0, 12.05, 0.0, 0.0)] + [(0.0, 0.3 + 0.1 * i, 0.0, 0.0) for i in range(1, 12)])
    meter = {OCT + i * H: (0.38 if i == 0 else 0.3 + 0.1 * i, 0.0) for i in range(12)}
    found = best_role(place, meter)
    assert found is not None and found.role == "grid"
    assert found.mismatch == pytest.approx(1 / 24)  # one value of 24 (12 hours, 2 directions) differs
