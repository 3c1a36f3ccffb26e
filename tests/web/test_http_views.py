"""The dashboard's data routes over loopback HTTP: a meter's view of a period, and the overview cards.

A meter in Europe/Oslo reports every minute through both DST days of 2026 and the days before
them (written through the Ingestor into a real SQLite file), with a three-hour silence on
2026-03-29. Energy bars must equal what /api/v1/meters/{id}/energy says for the same periods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from meterhub.ingest import Ingestor
from meterhub.model import Meter, Reading, UserRole, utc_now
from tests.api.conftest import ApiServer, no_unexpected_errors, serve_api
from tests.web.helpers import served

__all__ = ["no_unexpected_errors", "serve_api"]

OSLO = ZoneInfo("Europe/Oslo")
HOUSE, SHED = "house", "shed"
SPANS = [
    (datetime(2026, 3, 27, 22, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC)),
    (datetime(2026, 10, 23, 22, tzinfo=UTC), datetime(2026, 10, 26, tzinfo=UTC)),
]
"""The local days before and of each DST change, in UTC, with some margin."""
SILENCE = (datetime(2026, 3, 29, 10, tzinfo=UTC), datetime(2026, 3, 29, 13, tzinfo=UTC))
"""Three hours (12:00 to 15:00 CEST) in which the house's meter sent nothing."""


def power_w(ts: datetime) -> float:
    return 400.0 + 25.0 * ts.hour + 3.0 * ts.minute + (300.0 if ts.day % 2 else 0.0)


def readings(meter: str, start: datetime, end: datetime, register: float) -> Iterator[Reading]:
    ts = start
    while ts < end:
        watts = power_w(ts)
        if not SILENCE[0] <= ts < SILENCE[1] or meter != HOUSE:
            yield Reading(
                meter, ts, 0, 230.0, watts / 230, watts, energy_import_kwh=register, energy_export_kwh=0.0
            )
        register += watts / 60_000
        ts += timedelta(minutes=1)


@pytest.fixture
def hub(serve_api: Callable[..., ApiServer]) -> ApiServer:
    meters = [Meter(meter, "file", 1, "Europe/Oslo", 60, meter.title()) for meter in (HOUSE, SHED)]
    rows = (r for start, end in SPANS for meter in (HOUSE, SHED) for r in readings(meter, start, end, 1000.0))
    return served(serve_api, meters, rows)


@pytest.fixture
def viewer(hub: ApiServer) -> httpx.Client:
    return hub.user("vera", UserRole.VIEWER, [("meter", HOUSE)])


def wall(t: str | int) -> datetime:
    """Return a chart time as naive local wall clock: text, or wall-clock ms counted as if UTC."""
    if isinstance(t, str):
        return datetime.fromisoformat(t)
    return datetime.fromtimestamp(t / 1000, UTC).replace(tzinfo=None)


def view(client: httpx.Client, meter: str = HOUSE, **params: str) -> dict[str, Any]:
    answer = client.get(f"/api/v1/dashboard/meters/{meter}/view", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def energy_rows(
    client: httpx.Client, start: str, end: str, groupby: str, meter: str = HOUSE
) -> list[dict[str, Any]]:
    answer = client.get(
        f"/api/v1/meters/{meter}/energy", params={"start": start, "end": end, "groupby": groupby}
    )
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()["data"]
    return rows


@pytest.mark.parametrize(("day", "bars"), [("2026-03-29", 23), ("2026-10-25", 25)])
def test_a_dst_days_energy_bars_are_its_hours_with_unique_labels(
    admin: httpx.Client, day: str, bars: int
) -> None:
    body = view(admin, range="day", anchor=day)
    energy = body["energy"]
    assert energy["unit"] == "hour"
    assert len(energy["label"]) == len(energy["start"]) == len(energy["import_kwh"]) == bars
    assert len(set(energy["label"])) == bars
    if bars == 25:
        assert [label for label in energy["label"] if label.startswith("02:00")] == [
            "02:00 CEST",
            "02:00 CET",
        ]
    else:
        assert "02:00" not in energy["label"] and energy["label"][:3] == ["00:00", "01:00", "03:00"]
    rows = energy_rows(admin, body["start"], body["end"], "hour")
    assert [datetime.fromisoformat(r["start"]) for r in rows] == [
        datetime.fromisoformat(s) for s in energy["start"]
    ]
    api_kwh = [None if r["source"] == "none" else r["energy_import_kwh"] for r in rows]  # rounded alike
    assert energy["import_kwh"] == api_kwh
    assert any(value for value in api_kwh)


def test_the_dst_day_view_spans_its_local_day(admin: httpx.Client) -> None:
    body = view(admin, range="day", anchor="2026-10-25")
    assert (body["start"], body["end"]) == ("2026-10-24T22:00:00+00:00", "2026-10-25T23:00:00+00:00")
    assert (body["x_start"], body["x_end"]) == ("2026-10-25 00:00:00", "2026-10-26 00:00:00")
    assert (body["previous_anchor"], body["next_anchor"]) == ("2026-10-24", "2026-10-26")


def test_a_silence_breaks_the_power_line_exactly_there(admin: httpx.Client) -> None:
    power = view(admin, range="day", anchor="2026-03-29")["power"]
    assert len(power["t"]) == len(power["avg_w"]) == len(power["min_w"]) == len(power["max_w"])
    breaks = [i for i, value in enumerate(power["avg_w"]) if value is None]
    assert len(breaks) == 1
    at = breaks[0]
    assert power["min_w"][at] is None and power["max_w"][at] is None
    width = timedelta(seconds=power["bucket_s"])
    before = wall(power["t"][at - 1]).replace(tzinfo=OSLO)
    after = wall(power["t"][at + 1]).replace(tzinfo=OSLO)
    assert before.astimezone(UTC) < SILENCE[0] <= before.astimezone(UTC) + width
    assert after.astimezone(UTC) - width < SILENCE[1] <= after.astimezone(UTC)
    assert power["t"][at] == power["t"][at + 1]  # the break sits where the line resumes


def test_a_year_views_power_is_at_most_1000_points_in_local_wall_clock(admin: httpx.Client) -> None:
    body = view(admin, range="year", anchor="2026-06-01")
    power = body["power"]
    assert 0 < len(power["t"]) <= 1000
    assert all(len(power[name]) == len(power["t"]) for name in ("avg_w", "min_w", "max_w"))
    times = [wall(t) for t in power["t"]]
    assert times == sorted(times)
    assert body["energy"]["unit"] == "month" and len(body["energy"]["label"]) == 12
    local_days = {t.date().isoformat() for t in times}
    assert {"2026-03-28", "2026-03-29", "2026-10-24", "2026-10-25"} <= local_days
    width = timedelta(seconds=power["bucket_s"])
    # the first reading is 22:00 UTC on 27 March, 23:00 on Oslo's wall clock: its bucket holds that
    assert min(times) <= datetime(2026, 3, 27, 23) < min(times) + width
    # each t is its bucket's start read on Oslo's wall clock (CET in March, CEST after the jump)
    instants = [t.replace(tzinfo=OSLO).astimezone(UTC) for t in times]
    assert width < timedelta(days=1)
    assert all(i.timestamp() % width.total_seconds() == 0 for i in instants)
    assert {t.hour - i.hour for t, i in zip(times, instants, strict=True)} == {1, 2}


def test_comparing_adds_the_previous_days_numbers(admin: httpx.Client) -> None:
    body = view(admin, range="day", anchor="2026-10-25", compare="true")
    before = view(admin, range="day", anchor="2026-10-24")
    compare = body["compare"]
    assert compare["energy"]["import_kwh"] == before["energy"]["import_kwh"]
    assert compare["power"]["avg_w"] == before["power"]["avg_w"]
    assert compare["title"] == before["title"]
    shifted = [wall(t) for t in compare["power"]["t"][:3]]
    assert [t - timedelta(days=1) for t in shifted] == [wall(t) for t in before["power"]["t"][:3]]
    assert all(t.date().isoformat() == "2026-10-25" for t in shifted)  # drawn over this day
    assert "compare" not in view(admin, range="day", anchor="2026-10-25")


def test_a_viewer_reads_a_shared_meters_view_and_gets_404_for_another(viewer: httpx.Client) -> None:
    assert view(viewer, HOUSE, range="day", anchor="2026-03-29")["meter"] == HOUSE
    hidden = viewer.get(
        f"/api/v1/dashboard/meters/{SHED}/view", params={"range": "day", "anchor": "2026-03-29"}
    )
    missing = viewer.get("/api/v1/dashboard/meters/no-such-meter/view")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.headers["content-type"].startswith("application/problem+json")
    assert SHED.title() not in hidden.text


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"range": "decade"}, 422, "range"),
        ({"range": "day", "anchor": "yesterday"}, 422, "YYYY-MM-DD"),
        ({"range": "day", "anchor": "2026-02-30"}, 422, "anchor"),
        ({"range": "day", "anchor": "x" * 40}, 422, "anchor"),
        ({"range": "custom", "start": "2026-03-29T00:00:00Z", "end": "2026-03-28T00:00:00Z"}, 422, "after"),
        (
            {"range": "custom", "start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
            422,
            "three years",
        ),
        ({"range": "custom", "start": "soon", "end": "2026-01-01T00:00:00Z"}, 422, "start"),
        ({"range": "day", "points": "5"}, 422, "points"),
    ],
)
def test_bad_ranges_and_anchors_are_readable_problems(
    admin: httpx.Client, params: dict[str, str], status: int, words: str
) -> None:
    answer = admin.get(f"/api/v1/dashboard/meters/{HOUSE}/view", params=params)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert words in answer.text


def test_overview_cards_list_every_meter_for_an_admin_and_shared_ones_for_a_viewer(
    hub: ApiServer, admin: httpx.Client, viewer: httpx.Client
) -> None:
    start = utc_now().replace(second=0, microsecond=0) - timedelta(minutes=40)
    register = 5000.0
    rows = []
    for minute in range(40):
        ts = start + timedelta(minutes=minute)
        rows.append(
            Reading(HOUSE, ts, 0, 230.0, 2.0, 460.0, energy_import_kwh=register, energy_export_kwh=0.0)
        )
        register += 0.5  # 30 kW: a fast register, so today's energy is large and exact
    assert Ingestor(hub.store, feed=None).ingest(rows).stored == len(rows)
    cards = admin.get("/api/v1/dashboard/overview").json()["cards"]
    assert sorted(card["meter"] for card in cards) == [HOUSE, SHED]
    shown = viewer.get("/api/v1/dashboard/overview").json()["cards"]
    assert [card["meter"] for card in shown] == [HOUSE]
    card = shown[0]
    assert card["power_w"] == 460.0
    midnight = datetime.combine(utc_now().astimezone(OSLO).date(), datetime.min.time(), OSLO)
    today = energy_rows(viewer, midnight.isoformat(), utc_now().isoformat(), "day")
    assert len(today) == 1
    assert card["import_today_kwh"] == round(today[0]["energy_import_kwh"], 3)
    assert card["import_today_kwh"] > 0
