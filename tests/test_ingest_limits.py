"""Ingest rejects times before its floor and values beyond what any meter reports, with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from meterhub.ingest import EARLIEST_TS, MAX_REGISTER, IngestReport, validate_reading
from meterhub.model import REGISTER_FIELDS, Reading

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LATEST = NOW + timedelta(minutes=5)


def reason_for(**fields: object) -> str | None:
    values: dict[str, object] = {"meter": "m", "ts": NOW, "power_w": 100.0, **fields}
    return validate_reading(Reading(**values), LATEST)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "ts",
    [
        EARLIEST_TS - timedelta(milliseconds=1),
        datetime(1900, 1, 1, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(2000, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),  # 23:30Z the day before
    ],
)
def test_a_time_before_the_floor_is_rejected_with_its_reason(ts: datetime) -> None:
    reason = reason_for(ts=ts)
    assert reason == (
        f"timestamp {ts.isoformat()} is before 2000-01-01T00:00:00Z, the earliest time meterhub keeps"
    )


def test_the_floor_itself_and_the_uci_household_years_are_accepted() -> None:
    assert datetime(2000, 1, 1, tzinfo=UTC) == EARLIEST_TS
    assert reason_for(ts=EARLIEST_TS) is None
    assert reason_for(ts=datetime(2006, 12, 16, 17, 24, tzinfo=UTC)) is None


@pytest.mark.parametrize("field", REGISTER_FIELDS)
@pytest.mark.parametrize("value", [1e17, 1e300, -1e300, -0.001, MAX_REGISTER * 1.000001])
def test_an_impossible_register_is_rejected_with_its_reason(field: str, value: float) -> None:
    unit = "kWh" if field.endswith("_kwh") else "kvarh"
    assert reason_for(**{field: value}) == (
        f"register {field} {value} {unit} outside 0..10,000,000,000 {unit}"
    )


@pytest.mark.parametrize("field", REGISTER_FIELDS)
@pytest.mark.parametrize("value", [0.0, 123_456_789.123456, MAX_REGISTER])
def test_every_real_register_is_accepted(field: str, value: float) -> None:
    assert reason_for(**{field: value}) is None


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"current_a": 100_000.001}, "current 100000.001 A beyond ±100 kA"),
        ({"current_a": -1e300}, "current -1e+300 A beyond ±100 kA"),
        ({"reactive_power_var": 1e17}, "reactive power 1e+17 var beyond ±10 Mvar"),
        ({"frequency_hz": 1e300}, "frequency 1e+300 Hz outside 0..1000 Hz"),
        ({"frequency_hz": -50.0}, "frequency -50.0 Hz outside 0..1000 Hz"),
    ],
)
def test_other_values_beyond_any_meter_are_rejected(fields: dict[str, object], reason: str) -> None:
    assert reason_for(**fields) == reason


def test_values_at_their_bounds_are_accepted() -> None:
    assert (
        reason_for(
            current_a=-100_000.0,
            reactive_power_var=10_000_000.0,
            frequency_hz=1000.0,
            voltage_v=1000.0,
            power_w=-10_000_000.0,
            power_factor=-1.0,
        )
        is None
    )


def test_rejections_of_one_kind_count_together_whatever_their_instants() -> None:
    report = IngestReport()
    for day in (1, 2, 3):
        report.reject(
            f"line {day + 1}", f"timestamp 1999-12-{day:02d}T10:30:00+00:00 is before 2000-01-01T00:00:00Z"
        )
    report.reject("line 5", "bad meter id: '=HYPERLINK(1)' is not 1 to 64 letters")
    assert report.reasons() == {"timestamp <time> is before <time>": 3, "bad meter id": 1}
