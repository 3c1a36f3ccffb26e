"""Properties of energy and cost over random load, resets, swaps, gaps, records and zones."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterhub.analytics.calendar import local_boundaries
from meterhub.analytics.cost import bucket_costs
from meterhub.analytics.energy import EnergyBucket, energy_between
from meterhub.analytics.tariffs import Tariff
from meterhub.model import IntervalEnergy, Meter, PricePoint, Reading
from meterhub.store.sqlite import SQLiteStore

ZONES = (
    "Europe/Oslo",
    "America/New_York",
    "America/St_Johns",
    "Asia/Kathmandu",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Australia/Adelaide",
    "Pacific/Chatham",
    "UTC",
)
INTERVAL_S = 300
QUARTER = timedelta(minutes=15)


def transitions(tz: str, year: int = 2026) -> list[datetime]:
    """Return the UTC instants in ``year`` where the zone's offset changes (15-minute resolution)."""
    zone = ZoneInfo(tz)
    ts = datetime(year, 1, 1, tzinfo=UTC)
    found = []
    previous = ts.astimezone(zone).utcoffset()
    while ts.year == year:
        ts += QUARTER
        offset = ts.astimezone(zone).utcoffset()
        if offset != previous:
            found.append(ts)
            previous = offset
    return found


TRANSITIONS = {tz: transitions(tz) or [datetime(2026, 3, 29, 1, tzinfo=UTC)] for tz in ZONES}


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[str, list[Reading], list[IntervalEnergy]]:
    """A zone, readings near one of its clock changes, and interval records in random places."""
    tz = draw(st.sampled_from(ZONES))
    anchor = draw(st.sampled_from(TRANSITIONS[tz]))
    t = anchor - timedelta(minutes=draw(st.integers(0, 30 * 60)))
    imp, exp = draw(st.floats(0, 50_000)), draw(st.floats(0, 5_000))
    readings: list[Reading] = []
    for _ in range(draw(st.integers(2, 160))):
        power_w = draw(st.floats(-4000, 9000, allow_nan=False))
        event = draw(st.sampled_from(["normal"] * 10 + ["gap", "reset", "swap", "no_register"]))
        dt_s = draw(st.integers(10, 600)) if event != "gap" else draw(st.integers(601, 30_000))
        t += timedelta(seconds=dt_s)
        imp += max(power_w, 0) / 1000 * dt_s / 3600
        exp += max(-power_w, 0) / 1000 * dt_s / 3600
        if event == "reset":
            imp, exp = draw(st.floats(0, 0.01)), 0.0
        elif event == "swap":
            imp = draw(st.floats(0, 90_000))
        has_register = event != "no_register"
        readings.append(
            Reading(
                "m",
                t,
                power_w=round(power_w, 3),
                energy_import_kwh=round(imp, 6) if has_register else None,
                energy_export_kwh=round(exp, 6) if has_register else None,
            )
        )
    records: list[IntervalEnergy] = []
    first = readings[0].ts - timedelta(hours=2)
    for source, width in (("umeter", QUARTER), ("amsreader", timedelta(hours=1))):
        slots = draw(st.sets(st.integers(0, 60), max_size=12))
        base = datetime.fromtimestamp(first.timestamp() // width.total_seconds() * width.total_seconds(), UTC)
        for k in sorted(slots):
            records.append(
                IntervalEnergy(
                    "m",
                    base + k * width,
                    base + (k + 1) * width,
                    draw(st.floats(0, 5)),
                    draw(st.one_of(st.none(), st.floats(0, 2))),
                    source,
                )
            )
    return tz, readings, records


def assert_close(a: float, b: float, pieces: int = 1) -> None:
    """Assert equality up to float rounding and the store's 1e-9 kWh rollup resolution per piece."""
    assert abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b)) + 4e-9 * pieces, (a, b)


@contextmanager
def in_store(readings: list[Reading], records: list[IntervalEnergy], tz: str) -> Iterator[SQLiteStore]:
    """Yield a real SQLite file holding the readings and records, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="energy-prop-") as folder:
        store = SQLiteStore(Path(folder) / "p.db")
        try:
            store.add_meter(Meter("m", "file", tz=tz, interval_s=INTERVAL_S))
            store.write_readings(readings)
            store.write_intervals(records)
            yield store
        finally:
            store.close()


def sums(buckets: list[EnergyBucket]) -> tuple[float, float]:
    return sum(b.energy_import_kwh for b in buckets), sum(b.energy_export_kwh for b in buckets)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_energy_is_never_negative_and_adds_up_at_every_granularity(
    scenario: tuple[str, list[Reading], list[IntervalEnergy]],
) -> None:
    tz, readings, records = scenario
    with in_store(readings, records, tz) as store:
        lo = min(readings[0].ts, *(r.start for r in records)) if records else readings[0].ts
        hi = max(readings[-1].ts, *(r.end for r in records)) if records else readings[-1].ts
        day_edges = local_boundaries(lo, hi + timedelta(seconds=1), tz, "day")
        days = energy_between(store, "m", day_edges)
        hours = energy_between(store, "m", local_boundaries(day_edges[0], day_edges[-1], tz, "hour"))
        quarters = energy_between(store, "m", local_boundaries(day_edges[0], day_edges[-1], tz, "15m"))
        (whole,) = energy_between(store, "m", [day_edges[0], day_edges[-1]])
        for bucket in (*days, *hours, *quarters, whole):
            assert bucket.energy_import_kwh >= 0 and bucket.energy_export_kwh >= 0
            assert bucket.source
            assert bucket.estimated or bucket.covered_s >= bucket.width_s - 0.5
        for granularity in (days, hours, quarters):
            total_import, total_export = sums(granularity)
            assert_close(total_import, whole.energy_import_kwh, len(quarters))
            assert_close(total_export, whole.energy_export_kwh, len(quarters))
        for day in days:
            own = [h for h in hours if day.start <= h.start < day.end]
            assert sum(h.width_s for h in own) == day.width_s
            assert_close(sums(own)[0], day.energy_import_kwh, len(quarters))
            assert_close(sums(own)[1], day.energy_export_kwh, len(quarters))
        rollup_import = sum(
            b.energy_import_kwh for b in store.rollups("m", 0, day_edges[0], day_edges[-1], 900)
        )
        if not records:
            assert_close(whole.energy_import_kwh, rollup_import, len(quarters))


@st.composite
def price_series(draw: st.DrawFn, lo: datetime, hi: datetime) -> list[PricePoint]:
    """Random 15- or 60-minute price slots over [lo, hi), some missing."""
    width = draw(st.sampled_from([QUARTER, timedelta(hours=1)]))
    start = datetime.fromtimestamp(lo.timestamp() // width.total_seconds() * width.total_seconds(), UTC)
    points = []
    while start < hi:
        if draw(st.integers(0, 9)):
            price = draw(st.floats(-0.5, 3.0, allow_nan=False))
            points.append(PricePoint(start, start + width, price, "NOK", series="spot"))
        start += width
    return points


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), data=st.data(), groupby=st.sampled_from(["15m", "hour", "day"]))
def test_cost_is_energy_times_price_over_each_price_slot(
    scenario: tuple[str, list[Reading], list[IntervalEnergy]], data: st.DataObject, groupby: str
) -> None:
    tz, readings, records = scenario
    with in_store(readings, records, tz) as store:
        edges = local_boundaries(readings[0].ts, readings[-1].ts + timedelta(seconds=1), tz, groupby)
        points = data.draw(price_series(edges[0], edges[-1]))
        tariff = Tariff(currency="NOK", import_series="spot", export_per_kwh=0.1, fee_per_day=2.4)
        costs = bucket_costs(tariff, tz, edges, lambda cuts: energy_between(store, "m", cuts), points)
        expected_cost = expected_unpriced = 0.0
        priced_until = edges[0]
        for point in points:
            lo, hi = max(point.start, edges[0]), min(point.end, edges[-1])
            if lo >= hi:
                continue
            if lo > priced_until:
                expected_unpriced += energy_between(store, "m", [priced_until, lo])[0].energy_import_kwh
            (piece,) = energy_between(store, "m", [lo, hi])
            expected_cost += piece.energy_import_kwh * point.price_per_kwh
            priced_until = hi
        if priced_until < edges[-1]:
            expected_unpriced += energy_between(store, "m", [priced_until, edges[-1]])[0].energy_import_kwh
        pieces = 4 * (len(points) + len(edges))
        assert_close(sum(c.import_cost for c in costs), expected_cost, pieces)
        assert_close(sum(c.unpriced_import_kwh for c in costs), expected_unpriced, pieces)
        energy = energy_between(store, "m", edges)
        for cost, bucket in zip(costs, energy, strict=True):
            assert (cost.start, cost.end) == (bucket.start, bucket.end)
            assert_close(cost.energy_import_kwh, bucket.energy_import_kwh, pieces)
            assert_close(cost.export_credit, 0.1 * bucket.energy_export_kwh, pieces)
            assert_close(cost.total_cost, cost.import_cost + cost.fees - cost.export_credit)
        days = local_boundaries(edges[0], edges[-1], tz, "day")
        day_shares = sum(
            (min(b, edges[-1]) - max(a, edges[0])) / (b - a) for a, b in itertools.pairwise(days)
        )
        assert_close(sum(c.fees for c in costs), 2.4 * day_shares)
