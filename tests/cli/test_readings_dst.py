"""Daily buckets of ``meterhub readings`` follow the meter's local calendar across DST.

A meter in Europe/Oslo draws a steady 1 kW, read every 15 minutes, over the spring and autumn
changes of 2026. A local day then holds exactly as many kWh as it has hours: 23 on 29 March,
25 on 25 October, 24 on every other day.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from meterhub.model import Reading
from tests.cli.conftest import Run

OSLO = ZoneInfo("Europe/Oslo")
POWER_KW = 1.0
STEP = timedelta(minutes=15)
SPRING = ("2026-03-28", "2026-03-31")
AUTUMN = ("2026-10-24", "2026-10-27")
EXPECTED_DAYS = {
    SPRING: [
        ("2026-03-28T00:00:00+01:00", 24),
        ("2026-03-29T00:00:00+01:00", 23),  # clocks jump from 02:00 to 03:00
        ("2026-03-30T00:00:00+02:00", 24),
    ],
    AUTUMN: [
        ("2026-10-24T00:00:00+02:00", 24),
        ("2026-10-25T00:00:00+02:00", 25),  # clocks fall back from 03:00 to 02:00
        ("2026-10-26T00:00:00+01:00", 24),
    ],
}
"""Per range: each local day's start with its UTC offset, and its length in hours (= its kWh)."""


def steady_readings(first_day: str, days: int) -> list[Reading]:
    """Return 15-minute readings of a steady 1 kW from local midnight of ``first_day`` on."""
    start = datetime.fromisoformat(first_day).replace(tzinfo=OSLO)
    end = (start + timedelta(days=days)).replace(tzinfo=OSLO)  # local midnight, whatever DST did
    utc_start, utc_end = start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))
    readings: list[Reading] = []
    ts, register_kwh = utc_start, 1000.0
    while ts <= utc_end:
        readings.append(Reading("house", ts, 0, 230.0, POWER_KW * 1000 / 230, POWER_KW * 1000,
                                energy_import_kwh=register_kwh))  # fmt: skip
        ts += STEP
        register_kwh += POWER_KW * STEP.total_seconds() / 3600
    return readings


def _write_csv(path: Path, readings: list[Reading]) -> Path:
    lines = ["meter,ts,phase,power_w,energy_import_kwh"]
    lines += [f"{r.meter},{r.ts.isoformat()},0,{r.power_w},{r.energy_import_kwh!r}" for r in readings]
    path.write_text("\n".join(lines) + "\n")
    return path


def day_start(text: str) -> datetime:
    """Read a bucket start as the CLI or API writes it, as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def check_days(rows: list[dict[str, object]], expected: list[tuple[str, int]]) -> None:
    """Check daily rows: local midnights with their offsets, 23/24/25-hour days, 1 kWh per hour."""
    starts = [day_start(str(row["start"])) for row in rows]
    assert starts == [datetime.fromisoformat(text) for text, _ in expected]
    for start, (text, _) in zip(starts, expected, strict=True):
        local = start.astimezone(OSLO)
        assert (local.hour, local.minute) == (0, 0), f"{start} is not a local midnight"
        assert local.utcoffset() == datetime.fromisoformat(text).utcoffset()
    spans_h = [(b - a) / timedelta(hours=1) for a, b in itertools.pairwise(starts)]
    assert spans_h == [hours for _, hours in expected[:-1]]
    assert [row["energy_import_kwh"] for row in rows] == [pytest.approx(hours) for _, hours in expected]
    readings_per_day = [hours * 4 for _, hours in expected]
    assert [row["count"] for row in rows] == readings_per_day


@pytest.mark.parametrize("days", [SPRING, AUTUMN], ids=["spring", "autumn"])
def test_cli_daily_buckets_are_local_days_of_23_24_and_25_hours(
    run: Run, tmp_path: Path, days: tuple[str, str]
) -> None:
    run("meters", "add", "house", "--vendor", "file", "--tz", "Europe/Oslo", "--interval-s", "900")
    first = datetime.fromisoformat(days[0]) - timedelta(days=1)
    run("import", str(_write_csv(tmp_path / "steady.csv", steady_readings(first.date().isoformat(), 5))))
    answer = run(
        "readings", "house", "--start", days[0], "--end", days[1], "--bucket", "1d", "--format", "json"
    )
    check_days(json.loads(answer.stdout), EXPECTED_DAYS[days])
