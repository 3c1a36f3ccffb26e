"""Real data: the UCI household trace, imported as readings, gives the energy of its minute rows."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from meterhub.analytics.energy import meter_energy
from meterhub.datasets import UCI_HOUSEHOLD, bundled, uci_readings
from meterhub.model import Meter, Reading
from meterhub.store.sqlite import SQLiteStore
from meterhub.timeutil import get_zone

PARIS = "Europe/Paris"
TOLERANCE = 0.005
"""The acceptance bound: 0.5% of the directly computed energy."""


def minute_energy(rows: list[Reading], key: str) -> dict[datetime, float]:
    """Return kWh per local hour or day straight from the minute rows (Global_active_power / 60)."""
    zone = get_zone(PARIS)
    totals: dict[datetime, float] = defaultdict(float)
    for row in rows:
        if row.power_w is None:
            continue  # the closing register reading, one minute after the last row
        local = row.ts.astimezone(zone)
        start = (
            local.replace(minute=0, second=0) if key == "hour" else local.replace(hour=0, minute=0, second=0)
        )
        totals[start.astimezone(get_zone("UTC"))] += row.power_w / 1000 / 60
    return totals


def test_uci_hourly_and_daily_energy_match_the_minute_rows(store: SQLiteStore) -> None:
    rows = list(uci_readings(bundled(UCI_HOUSEHOLD), "uci", tz=PARIS))
    assert len(rows) == 2881  # 2,880 minute rows and the register at the end of the last minute
    store.add_meter(Meter("uci", "file", tz=PARIS, interval_s=60))
    store.write_readings(rows)
    first, last = rows[0].ts, rows[-1].ts
    for unit, expected_count in (("hour", 48), ("day", 2)):
        buckets = meter_energy(store, "uci", first, last, unit)
        direct = minute_energy(rows, unit)
        assert [b.start for b in buckets] == sorted(direct)
        assert len(buckets) == expected_count
        for bucket in buckets:
            want = direct[bucket.start]
            # Every minute of the period ends at a later reading: the registers know it, up to
            # their 1e-6 kWh rounding at both ends.
            assert abs(bucket.energy_import_kwh - want) <= 2e-6, (unit, bucket, want)
            assert abs(bucket.energy_import_kwh - want) / want < TOLERANCE
            assert (bucket.source, bucket.estimated) == ("registers", False)
    hours = meter_energy(store, "uci", first, last, "hour")
    days = meter_energy(store, "uci", first, last, "day")
    for day in days:
        own = [h.energy_import_kwh for h in hours if day.start <= h.start < day.end]
        assert abs(sum(own) - day.energy_import_kwh) < 1e-6


def test_uci_energy_per_15_minutes_adds_up_to_the_hours(store: SQLiteStore) -> None:
    rows = list(uci_readings(bundled(UCI_HOUSEHOLD), "uci", tz=PARIS))
    store.add_meter(Meter("uci", "file", tz=PARIS, interval_s=60))
    store.write_readings(rows)
    start = rows[0].ts
    quarters = meter_energy(store, "uci", start, start + timedelta(hours=24), "15m")
    hours = meter_energy(store, "uci", start, start + timedelta(hours=24), "hour")
    assert len(quarters) == 96
    for hour in hours:
        own = sum(q.energy_import_kwh for q in quarters if hour.start <= q.start < hour.end)
        assert abs(own - hour.energy_import_kwh) < 1e-6
