"""The meter page's energy bars read as columns equal ``meter_energy``'s buckets, on both backends.

A meter with a silent stretch, interval records filling part of it and a month with only a record
is drawn as a year, a month and the autumn DST day; every bar is checked against the buckets of
``meter_energy`` for the same periods: label, UTC start, rounded energy (None where nothing
measured), estimated flag and sources.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from meterhub.analytics.calendar import CalendarUnit
from meterhub.analytics.energy import SOURCE_NONE, EnergyBucket, meter_energy
from meterhub.analytics.offline import gaps_within
from meterhub.model import Gap, IntervalEnergy, Meter, Reading
from meterhub.precision import round_value
from meterhub.store.base import Store
from meterhub.web.periods import energy_unit, period_of
from meterhub.web.views import energy_bars, meter_view
from tests.backends import Backend

OSLO = "Europe/Oslo"
METER = "m"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
FIRST = datetime(2025, 10, 20, tzinfo=UTC)
LAST = datetime(2025, 11, 10, tzinfo=UTC)
SILENT = (datetime(2025, 10, 27, 6, tzinfo=UTC), datetime(2025, 10, 28, 18, tzinfo=UTC))
"""No reading in between (the day after the clocks went back, and more)."""
FORMATS = {"15m": "%H:%M", "hour": "%H:%M", "day": "%a %d", "month": "%b %Y"}


def _seed(store: Store) -> None:
    store.add_meter(Meter(METER, "file", tz=OSLO, interval_s=300))
    readings = []
    ts, register = FIRST, 1000.0
    while ts <= LAST:
        watts = 400.0 + 300.0 * ((ts.hour * 60 + ts.minute) % 97) / 97
        if not SILENT[0] < ts < SILENT[1]:
            readings.append(
                Reading(
                    METER,
                    ts,
                    0,
                    230.0,
                    watts / 230.0,
                    watts,
                    energy_import_kwh=round(register, 6),
                    energy_export_kwh=0.0,
                )
            )
        register += watts / 1000 / 12
        ts += timedelta(minutes=5)
    store.write_readings(readings)
    hour = timedelta(hours=1)
    store.write_intervals(
        [
            # Hourly records of part of the silence, and a month no reading covers.
            *(
                IntervalEnergy(METER, SILENT[0] + k * hour, SILENT[0] + (k + 1) * hour, 0.55, 0.0, "umeter")
                for k in range(6)
            ),
            IntervalEnergy(
                METER,
                datetime(2025, 5, 31, 22, tzinfo=UTC),
                datetime(2025, 6, 30, 22, tzinfo=UTC),
                310.0,
                1.5,
                "umeter",
            ),
        ]
    )


def _label(bucket: EnergyBucket, unit: CalendarUnit, all_buckets: list[EnergyBucket]) -> str:
    zone = ZoneInfo(OSLO)
    text = bucket.start.astimezone(zone).strftime(FORMATS.get(unit, "%Y-%m-%d"))
    same = [
        b for b in all_buckets if b.start.astimezone(zone).strftime(FORMATS.get(unit, "%Y-%m-%d")) == text
    ]
    return f"{text} {bucket.start.astimezone(zone).tzname()}" if len(same) > 1 else text


def _kwh(bucket: EnergyBucket, value: float) -> float | None:
    return None if bucket.source == SOURCE_NONE else round_value("energy_kwh", value)


@pytest.mark.parametrize(
    ("kind", "anchor", "periods"),
    [("year", "2025-06-01", 12), ("month", "2025-10-01", 31), ("day", "2025-10-26", 25)],
)
def test_bars_equal_meter_energy_period_by_period(
    backend: Backend, kind: str, anchor: str, periods: int
) -> None:
    store = backend.open()
    _seed(store)
    meter = store.get_meter(METER)
    period = period_of(kind, anchor, OSLO, NOW)
    unit = energy_unit(period)
    bars = energy_bars(store, meter, period.start, period.end, unit)
    buckets = meter_energy(store, METER, period.start, period.end, unit)
    assert len(buckets) == periods
    assert bars["unit"] == unit
    assert bars["label"] == [_label(b, unit, buckets) for b in buckets]
    assert bars["start"] == [b.start.astimezone(UTC).isoformat() for b in buckets]
    assert bars["import_kwh"] == [_kwh(b, b.energy_import_kwh) for b in buckets]
    assert bars["export_kwh"] == [_kwh(b, b.energy_export_kwh) for b in buckets]
    assert bars["estimated"] == [b.estimated for b in buckets]
    assert bars["source"] == [b.source for b in buckets]
    assert bars["total_import_kwh"] == round(sum(b.energy_import_kwh for b in buckets), 3)
    # The seed reaches each kind of period: measured, filled from records, estimated, empty.
    sources = set(bars["source"])
    if kind == "year":
        assert {"none", "interval:umeter", "registers+estimated"} <= sources
        assert bars["import_kwh"][5] == 310.0 and bars["import_kwh"][0] is None
    if kind == "month":
        assert "registers+interval:umeter+estimated" in sources and "registers" in sources
    if kind == "day":
        assert (
            len(set(bars["label"])) == 25 and "02:00 CEST" in bars["label"] and "02:00 CET" in bars["label"]
        )


def test_a_repeated_view_and_its_comparison_answer_alike(backend: Backend) -> None:
    store = backend.open()
    _seed(store)
    meter = store.get_meter(METER)
    period = period_of("month", "2025-11-01", OSLO, NOW)
    previous = period_of("month", period.previous, OSLO, NOW)
    first = meter_view(store, meter, period, previous, power=False)
    again = meter_view(store, meter, period, previous, power=False)
    assert first == again
    compared = energy_bars(store, meter, previous.start, previous.end, "day")
    assert first["compare"]["energy"] == compared
    assert first["energy"]["label"][0] == "Sat 01" and len(first["energy"]["label"]) == 30
    assert (first["start"], first["x_start"]) == (period.start.isoformat(), "2025-11-01 00:00:00")


def test_gaps_within_clips_only_the_gaps_reaching_past_the_range(backend: Backend) -> None:
    store = backend.open()
    _seed(store)
    (silence,) = store.gaps(METER, FIRST, LAST)
    assert (silence.start, silence.end) == SILENT
    start = local(2025, 10, 28)
    end = local(2025, 10, 29)
    clipped = gaps_within(store, METER, start, end)
    assert clipped == [Gap(METER, start, silence.end)]
    inside = gaps_within(store, METER, FIRST, LAST)
    assert inside == [silence]
    assert gaps_within(store, METER, LAST, LAST + timedelta(days=1)) == []


def local(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=ZoneInfo(OSLO))
