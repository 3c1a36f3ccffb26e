"""Vendor blocks go through ingest as columns and end up stored exactly as their readings would.

Every check runs the same blocks through :meth:`Ingestor.ingest_blocks` and, into a second store,
their readings through :meth:`Ingestor.ingest`; what each store holds afterwards, and what each
report says, must be the same.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from meterhub.ingest import Ingestor, IngestReport, validate_reading
from meterhub.livefeed import LiveFeed, newest_per_meter
from meterhub.model import Meter, Reading
from meterhub.poller.sink import Sink
from meterhub.readingblocks import ArrayRows, PlannedRows, ReadingBlock
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.base import Fetched
from meterhub.vendors.iammeter import mapping as iammeter_mapping
from meterhub.vendors.iammeter import payloads as iammeter_payloads
from meterhub.vendors.physics import Household, SiteConfig
from meterhub.vendors.smartmac import mapping as smartmac_mapping
from meterhub.vendors.smartmac import payloads as smartmac_payloads

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
FIRST = NOW - timedelta(hours=1)
STEP = timedelta(seconds=61)
ZONE = ZoneInfo("Europe/Oslo")
METERS = ("iam-3p", "iam-1p", "sm-3l", "sm-1l", "win-3p")
THREE_PHASES = Household(SiteConfig(seed=11, phases=3, pv_peak_w=6000.0))
ONE_PHASE = Household(SiteConfig(seed=13, phases=1))
EVERYTHING = (datetime(2000, 1, 1, tzinfo=UTC), NOW + timedelta(days=1))
Stores = tuple[SQLiteStore, SQLiteStore]
"""A store for blocks and one for the same readings taken one by one."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _store(path: Path) -> SQLiteStore:
    store = SQLiteStore(path)
    for meter_id in METERS:
        store.add_meter(Meter(meter_id, "iammeter" if meter_id.startswith(("iam", "win")) else "smartmac",
                              phases=1 if meter_id.endswith("1p") or meter_id.endswith("1l") else 3))
    return store


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Stores]:
    """Yield a store for blocks and one for the same readings taken one by one."""
    blocks, readings = _store(tmp_path / "blocks.db"), _store(tmp_path / "readings.db")
    try:
        yield blocks, readings
    finally:
        blocks.close()
        readings.close()


def _iammeter(meter: str, at: datetime, *, phases: int) -> ReadingBlock:
    household = THREE_PHASES if phases == 3 else ONE_PHASE
    data = iammeter_payloads.meterdata_payload(household.state_at(at), ZONE, advanced=True)
    if phases == 1:
        data["values"] = data["values"][0]  # a single-phase meter's flat row
    block = iammeter_mapping.meterdata_block(iammeter_payloads.success(data), meter)
    assert isinstance(block, PlannedRows)
    return block


def _meterdata(meter: str, at: datetime, values: list[Any]) -> ReadingBlock:
    """Return the block of a meterdata2 answer with these values."""
    payload = {"values": values, "gmtTime": iammeter_payloads.format_vendor_time(at, ZoneInfo("UTC"))}
    block = iammeter_mapping.meterdata_block(iammeter_payloads.success(payload), meter)
    assert isinstance(block, PlannedRows)
    return block


def _smartmac(meter: str, at: datetime, *, phases: int) -> ReadingBlock:
    household = THREE_PHASES if phases == 3 else ONE_PHASE
    answer = smartmac_payloads.getdata_payload("1728053249", household.state_at(at), at, True,
                                               newer_firmware=phases == 3, power_limit_w=3500)
    snapshot = smartmac_mapping.map_getdata(smartmac_mapping.decode(smartmac_payloads.render_json(answer)),
                                            meter, at)
    assert isinstance(snapshot.readings, PlannedRows)
    return snapshot.readings


def _window(meter: str, at: datetime, uploads: int) -> ReadingBlock:
    items = [iammeter_payloads.meterdatalist2_item(THREE_PHASES.state_at(at + k * STEP), ZONE)
             for k in range(uploads)]
    block = iammeter_mapping.meterdatalist2_block(iammeter_payloads.success(items), meter)
    assert isinstance(block, ArrayRows)
    return block


def _polls(first: datetime = FIRST) -> list[ReadingBlock]:
    """Return blocks of every kind, of every meter, some meters twice."""
    return [
        _iammeter("iam-3p", first, phases=3),
        _smartmac("sm-3l", first, phases=3),
        _iammeter("iam-1p", first, phases=1),
        _window("win-3p", first, 30),
        _smartmac("sm-1l", first, phases=1),
        _iammeter("iam-3p", first + STEP, phases=3),
        _smartmac("sm-3l", first + STEP, phases=3),
        _iammeter("iam-1p", first + STEP, phases=1),
    ]


def _readings(blocks: Sequence[ReadingBlock]) -> list[Reading]:
    return list(itertools.chain.from_iterable(blocks))


def _stored(store: SQLiteStore) -> list[str]:
    return [repr(reading) for reading in store.iter_readings(None, *EVERYTHING)]


def _rejections(report: IngestReport) -> list[tuple[str, str]]:
    return sorted((rejection.where, rejection.reason) for rejection in report.rejections)


def _both(stores: Stores, blocks: list[ReadingBlock]) -> tuple[IngestReport, IngestReport]:
    """Ingest ``blocks`` into the first store and their readings into the second; check both agree."""
    by_blocks = Ingestor(stores[0], now=lambda: NOW, feed=None).ingest_blocks(blocks)
    by_readings = Ingestor(stores[1], now=lambda: NOW, feed=None).ingest(_readings(blocks))
    assert (by_blocks.received, by_blocks.stored, by_blocks.duplicates, by_blocks.rejected_count) == (
        by_readings.received, by_readings.stored, by_readings.duplicates, by_readings.rejected_count)
    assert _rejections(by_blocks) == _rejections(by_readings)
    assert _stored(stores[0]) == _stored(stores[1])
    return by_blocks, by_readings


def test_blocks_store_what_their_readings_store(stores: Stores) -> None:
    blocks = _polls()
    rows = sum(map(len, blocks))
    assert rows == 4 + 4 + 1 + 30 * 4 + 1 + 4 + 4 + 1
    report, _ = _both(stores, blocks)
    assert (report.received, report.stored, report.duplicates, report.rejected_count) == (rows, rows, 0, 0)
    assert report.received_committed == rows
    assert stores[0].count_readings() == rows
    assert stores[0].count_readings("win-3p") == 120
    again, _ = _both(stores, blocks)
    assert (again.received, again.stored, again.duplicates, again.rejected_count) == (rows, 0, rows, 0)
    later = _polls(FIRST + timedelta(minutes=30))
    more, _ = _both(stores, [*later, *blocks[:2]])
    assert (more.stored, more.duplicates) == (sum(map(len, later)), len(blocks[0]) + len(blocks[1]))
    assert stores[0].count_readings() == rows + more.stored


def test_a_block_of_an_unknown_meter_is_rejected_whole(stores: Stores) -> None:
    known = _iammeter("iam-3p", FIRST, phases=3)
    ghost = _smartmac("ghost", FIRST, phases=3)
    report, _ = _both(stores, [ghost, known, _window("ghost", FIRST, 3)])
    assert (report.received, report.stored, report.rejected_count) == (4 + 4 + 12, 4, 16)
    assert {rejection.reason for rejection in report.rejections} == {"unknown meter 'ghost'"}
    assert {rejection.where for rejection in report.rejections} == {
        f"ghost {(FIRST + k * STEP).isoformat()}" for k in range(3)}
    assert stores[0].count_readings() == stores[0].count_readings("iam-3p") == 4
    assert [reading.phase for reading in stores[0].iter_readings(None, *EVERYTHING)] == [0, 1, 2, 3]


def test_a_reading_out_of_bounds_is_rejected_and_its_block_stored(stores: Stores) -> None:
    at = FIRST + timedelta(minutes=2)
    bad = _meterdata("iam-3p", at, [[230.1, 4.0, 900.0, 0.98, 1000.0, 20.0],
                                    [5000.0, 4.1, 910.0, 0.97, 1100.0, 21.0],
                                    [231.0, 4.2, 920.0, 0.96, 1200.0, 22.0]])
    expected = [(f"iam-3p {at.isoformat()}", reason) for reading in bad
                if (reason := validate_reading(reading, NOW + timedelta(minutes=5))) is not None]
    assert [reason for _, reason in expected] == [
        f"voltage {(230.1 + 5000.0 + 231.0) / 3} V outside 0..1000 V",  # phase 0: the mean of live phases
        "voltage 5000.0 V outside 0..1000 V",
    ]
    good = _iammeter("iam-1p", at, phases=1)
    report, _ = _both(stores, [bad, good])
    assert (report.received, report.stored, report.rejected_count) == (5, 3, 2)
    assert _rejections(report) == sorted(expected)
    stored = list(stores[0].iter_readings(["iam-3p"], *EVERYTHING))
    assert [(reading.ts, reading.phase) for reading in stored] == [(at, 1), (at, 3)]
    assert [reading.voltage_v for reading in stored] == [230.1, 231.0]
    assert stores[0].count_readings("iam-1p") == 1


def test_a_reading_too_far_in_the_future_is_rejected(stores: Stores) -> None:
    late = _smartmac("sm-3l", NOW + timedelta(minutes=5, seconds=1), phases=3)
    edge = _smartmac("sm-1l", NOW + timedelta(minutes=5), phases=1)
    report, _ = _both(stores, [late, edge, _iammeter("iam-1p", NOW, phases=1)])
    assert (report.received, report.stored, report.rejected_count) == (6, 2, 4)
    late_at = (NOW + timedelta(minutes=5, seconds=1)).isoformat()
    reason = f"timestamp {late_at} is more than 5 minutes in the future"
    assert {rejection.reason for rejection in report.rejections} == {reason}
    assert stores[0].count_readings("sm-3l") == 0
    assert stores[0].count_readings("sm-1l") == stores[0].count_readings("iam-1p") == 1


def test_no_readings_no_write(stores: Stores) -> None:
    empty = iammeter_mapping.meterdatalist2_block(iammeter_payloads.success([]), "win-3p")
    assert isinstance(empty, ArrayRows)
    report = Ingestor(stores[0], now=lambda: NOW, feed=None).ingest_blocks([empty])
    assert (report.received, report.stored, report.rejected_count) == (0, 0, 0)
    ghost_block = _iammeter("ghost", FIRST, phases=1)
    ghost = Ingestor(stores[0], now=lambda: NOW, feed=None).ingest_blocks([ghost_block])
    assert (ghost.received, ghost.stored, ghost.rejected_count, ghost.received_committed) == (1, 0, 1, 0)
    assert stores[0].count_readings() == 0


class _RecordingFeed(LiveFeed):
    """A live feed that also keeps every batch offered to it."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[list[Reading]] = []

    def publish(self, readings: Sequence[Reading]) -> None:
        self.published.append(list(readings))
        super().publish(readings)


@pytest.mark.anyio
async def test_the_live_feed_gets_the_newest_reading_per_meter_and_phase(tmp_path: Path) -> None:
    store = _store(tmp_path / "feed.db")
    try:
        feed = _RecordingFeed()
        ingestor = Ingestor(store, now=lambda: NOW, feed=feed)
        blocks = [*_polls(), _smartmac("ghost", NOW, phases=1)]
        async with feed.subscribe() as subscription:
            assert feed.listening
            report = ingestor.ingest_blocks(blocks)
            batch = await subscription.get()
        assert report.stored == sum(map(len, blocks)) - 1
        expected = newest_per_meter(_readings(blocks[:-1]))
        assert sorted(map(repr, batch)) == sorted(map(repr, expected))
        assert len(batch) == 4 + 4 + 1 + 4 + 1  # each meter's phases, once
        assert {(reading.meter, reading.ts) for reading in batch if reading.phase == 0} == {
            ("iam-3p", FIRST + STEP), ("sm-3l", FIRST + STEP), ("iam-1p", FIRST + STEP),
            ("win-3p", FIRST + 29 * STEP), ("sm-1l", FIRST)}
        assert len(feed.published) == 1
        assert sorted(map(repr, feed.published[0])) == sorted(map(repr, _readings(blocks[:-1])))
    finally:
        store.close()


def test_without_listeners_nothing_is_published(tmp_path: Path) -> None:
    store = _store(tmp_path / "quiet.db")
    try:
        feed = _RecordingFeed()
        assert not feed.listening
        report = Ingestor(store, now=lambda: NOW, feed=feed).ingest_blocks(_polls())
        assert report.stored == store.count_readings() > 0
        assert feed.published == []
    finally:
        store.close()


@pytest.mark.anyio
async def test_the_sink_stores_a_block_and_counts_it(stores: Stores) -> None:
    store, reference = stores
    sink = Sink(store, Ingestor(store, now=lambda: NOW, feed=None))
    at = NOW - timedelta(minutes=1)
    household_answer = smartmac_payloads.getdata_payload("1728053249", THREE_PHASES.state_at(at), at, True,
                                                         newer_firmware=True, power_limit_w=3500)
    snapshot = smartmac_mapping.map_getdata(
        smartmac_mapping.decode(smartmac_payloads.render_json(household_answer)), "sm-3l", at)
    assert isinstance(snapshot.readings, ReadingBlock)
    await sink.write(Fetched(readings=snapshot.readings, extras=snapshot.extras))
    assert (sink.totals.readings, sink.totals.extras, sink.totals.rejected, sink.totals.duplicates) == (
        4, len(snapshot.extras), 0, 0)
    assert len(snapshot.extras) > 0
    window = _window("win-3p", FIRST, 5)
    await sink.write(Fetched(readings=window))
    await sink.write(Fetched(readings=window))
    await sink.write(Fetched(readings=_iammeter("ghost", FIRST, phases=3)))
    assert (sink.totals.readings, sink.totals.rejected, sink.totals.duplicates) == (4 + 20, 4, 20)
    Ingestor(reference, now=lambda: NOW, feed=None).ingest([*snapshot.readings, *window])
    assert _stored(store) == _stored(reference)
    assert store.count_readings() == 24
