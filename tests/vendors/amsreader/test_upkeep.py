"""When the connector reads the reader's prices and peaks, what they become, and failures kept apart."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from tests.vendors.amsreader.test_connector import START, Rig, make_app

from meterhub.model import Extra
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.amsreader import upkeep
from meterhub.vendors.amsreader.connector import firmware_key, firmware_record
from meterhub.vendors.amsreader.tariff import ReaderPeak
from meterhub.vendors.base import TokenCache

OSLO = ZoneInfo("Europe/Oslo")
AT = datetime(2026, 3, 15, 10, 30, tzinfo=UTC)


# --- cadence ----------------------------------------------------------------------------------------
def test_prices_are_read_hourly_and_ten_minutes_after_a_failure() -> None:
    assert upkeep.prices_due(None, AT)
    assert not upkeep.prices_due((AT, True), AT + timedelta(minutes=59, seconds=59))
    assert upkeep.prices_due((AT, True), AT + timedelta(hours=1))
    assert not upkeep.prices_due((AT, False), AT + timedelta(minutes=9))
    assert upkeep.prices_due((AT, False), AT + timedelta(minutes=10))
    assert upkeep.prices_due((AT, True), AT - timedelta(seconds=1))  # a clock set back


def test_peaks_are_read_once_each_hour_has_settled() -> None:
    read = datetime(2026, 3, 15, 10, 40, tzinfo=UTC)
    assert not upkeep.peaks_due((read, True), datetime(2026, 3, 15, 11, 1, 59, tzinfo=UTC))
    assert upkeep.peaks_due((read, True), datetime(2026, 3, 15, 11, 2, tzinfo=UTC))
    # Read within two minutes of 11:00: the 10:00 hour may not have been counted yet.
    early = datetime(2026, 3, 15, 11, 0, 30, tzinfo=UTC)
    assert upkeep.peaks_due((early, True), datetime(2026, 3, 15, 11, 2, tzinfo=UTC))


def test_kept_records_survive_a_round_trip_and_junk_reads_as_none() -> None:
    assert upkeep.read_record(upkeep.upkeep_record(AT, False)) == (AT, False)
    for junk in (None, "", "{", "[]", '{"at": "x"}', '{"at": true}', '{"at": 1e300}'):
        assert upkeep.read_record(junk) is None


def test_price_route_follows_the_firmware_version() -> None:
    assert upkeep.price_route((2, 4, 9)) == "energyprice.json"
    assert upkeep.price_route((2, 5, 0)) == "importprice.json"
    assert upkeep.price_route(None) == "importprice.json"  # a development build


# --- what the answers become ------------------------------------------------------------------------
def test_peaks_become_extras_at_each_peak_hours_start_in_the_readers_month() -> None:
    now = datetime(2026, 3, 30, 22, 30, tzinfo=UTC)  # 31 March 00:30 in Oslo (CEST)
    peaks = [
        ReaderPeak(7, 18, 4.25),  # 7 March 18:00 CET = 17:00 UTC
        ReaderPeak(29, 2, 3.5),  # 29 March 02:00 does not exist (DST): zoneinfo reads it as 01:00 UTC
        ReaderPeak(30, None, 9.0),  # no hour: no instant
        ReaderPeak(31, 0, 1.0),  # the hour has not ended
    ]
    assert upkeep.peak_extras(peaks, "ams", now, OSLO) == [
        Extra("ams", datetime(2026, 3, 7, 17, tzinfo=UTC), upkeep.PEAK_EXTRA, 4.25),
        Extra("ams", datetime(2026, 3, 29, 1, tzinfo=UTC), upkeep.PEAK_EXTRA, 3.5),
    ]


def test_place_tariff_from_series_price_rows_and_thresholds() -> None:
    always = {"a": list(range(7)), "h": list(range(24)), "s": {"m": 1, "d": 1}, "e": {"m": 12, "d": 31}}
    grid_fee = {"t": 1, "n": "Nettleie", "d": 1, "v": 0.45, **always}
    support = {"t": 3, "n": "Stotte", "d": 1, "v": 0.1, **always}
    tariff = {"t": [2, 5, 10, 65535, 65535], "p": [{"d": 3, "h": 7, "v": 2.5}], "c": 5, "m": 2.5}
    fields, notes = upkeep.place_tariff("s", "nok", {"o": [grid_fee, support]}, tariff, 3)
    # 0.45 added, 0.10 subtracted: 0.35 on top of the series; one peak listed, three averaged.
    assert fields == {
        "import_adder_per_kwh": 0.35,
        "currency": "NOK",
        "import_series": "s",
        "capacity_thresholds_kwh": [2, 5, 10],
        "capacity_peak_days": 3,
    }
    assert notes == ()
    fixed = {"t": 0, "n": "Fastpris", "d": 1, "v": 1.2, **always}
    fields, _ = upkeep.place_tariff("s", "NOK", {"o": [fixed]}, None)
    assert fields == {"import_per_kwh": 1.2, "currency": "NOK"}  # a fixed price replaces the series


# --- the connector --------------------------------------------------------------------------------
@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def old_rig(store: SQLiteStore) -> AsyncIterator[Rig]:
    """A reader of firmware v2.3.9 (hourly /energyprice.json only) whose version the hub knows."""
    app = make_app()
    await TokenCache(store, "amsreader").put(
        firmware_key(Rig.base_url), firmware_record((2, 3, 9), None), None
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        yield Rig(app, http, store)


@pytest.mark.anyio
async def test_older_firmware_prices_come_from_energyprice_json(old_rig: Rig) -> None:
    connector = old_rig.connector(price_series="ams-import", capacity_peaks="true")
    first = await connector.latest()
    second = await connector.latest()
    calls = await old_rig.calls()
    document: dict[str, Any] = await old_rig.vendor("energyprice.json")  # the frozen reader's answer
    # START is 13:34 in Oslo: key 00 is the 13:00 hour (12:00 UTC) of the price day.
    hour = datetime(2026, 3, 15, 12, tzinfo=UTC)
    known = [(key, value) for key, value in document.items() if key.isdigit() and value is not None]
    assert [(p.start, p.end, p.price_per_kwh) for p in first.prices[:2]] == [
        (hour, hour + timedelta(hours=1), document["00"]),
        (hour + timedelta(hours=1), hour + timedelta(hours=2), document["01"]),
    ]
    assert len(first.prices) == len(known) and {p.series for p in first.prices} == {"ams-import"}
    assert first.readings and second.readings and second.prices == []
    assert any(extra.name == upkeep.PEAK_EXTRA for extra in second.extras)  # the next poll: peaks
    assert calls == {"/data.json": 2, "/energyprice.json": 1, "/tariff.json": 1}


@pytest.mark.anyio
async def test_a_failed_price_read_keeps_the_poll_and_waits_before_trying_again(
    old_rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    connector = old_rig.connector(price_series="ams-import")
    await old_rig.faults(error_status=503, error_every=2)  # every second call: the price read
    with caplog.at_level(logging.WARNING, "meterhub.vendors.amsreader.connector"):
        failed = await connector.latest()
    await old_rig.faults()
    again = await connector.latest()
    restarted = await old_rig.connector(price_series="ams-import").latest()
    kept = await TokenCache(old_rig.store, "amsreader").get(upkeep.upkeep_key("prices", Rig.base_url))
    assert failed.readings and failed.prices == []
    assert "reading the AMS reader's prices failed" in caplog.text and "HTTP 503" in caplog.text
    assert again.prices == [] and restarted.prices == []  # the same instant: not ten minutes later
    assert upkeep.read_record(kept) == (START.replace(microsecond=0), False)
    assert (await old_rig.calls())["/energyprice.json"] == 1


@pytest.mark.anyio
async def test_without_the_options_no_prices_or_peaks_are_read(old_rig: Rig) -> None:
    for _ in range(2):
        fetched = await old_rig.connector().latest()
        assert fetched.prices == [] and fetched.readings
    assert await old_rig.calls() == {"/data.json": 2}


@pytest.mark.anyio
async def test_the_simulator_serves_importprice_json_from_v2_5_0_only() -> None:
    answers = {}
    for version in ("v2.4.12", "v2.5.0"):
        app = make_app(firmware_version=version)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as http:
            answers[version] = await http.get("/importprice.json")
    body = answers["v2.5.0"].json()
    assert answers["v2.4.12"].status_code == 404
    # START is 13:34 in Oslo on 15 March: tomorrow is known (from 13:00), 24 + 24 hours from
    # midnight, and the cursor points at the 13:00 hour.
    assert (body["resolution"], body["direction"], body["cursor"]) == (60, "import", 13)
    assert len(body["prices"]) == 48 and all(isinstance(p, float) for p in body["prices"])
