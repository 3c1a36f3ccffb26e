"""An AMS reader's own price answers, placed by hand-worked slots, and imported through the CLI."""

from __future__ import annotations

import itertools
import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from meterhub.analytics.prices import import_prices, read_prices
from meterhub.analytics.tariffs import Tariff
from meterhub.cli import main
from meterhub.errors import ImportFileError
from meterhub.model import Direction, PricePoint
from meterhub.store.sqlite import SQLiteStore
from meterhub.vendors.amsreader.pricefile import (
    EnergyPriceError,
    is_reader_prices,
    prices_from_energyprice,
    tariff_fields_from_priceconfig,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "amsreader_prices"
OSLO = "Europe/Oslo"
QUARTER = timedelta(minutes=15)
HOUR = timedelta(hours=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def payload(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads((FIXTURES / name).read_bytes())
    return loaded


def slot(start: datetime, width: timedelta, price: float, currency: str = "NOK") -> PricePoint:
    return PricePoint(start, start + width, price, currency, Direction.IMPORT, "spot")


def test_15_minute_spring_day_has_92_quarters_from_midnight_cet() -> None:
    read_at = datetime.fromisoformat("2026-03-29T12:00:00+02:00")
    points = prices_from_energyprice(payload("importprice_15min_2026-03-29.json"), "spot", OSLO, read_at)
    # Midnight of 29 March in Oslo is 23:00 UTC on the 28th; quarter i starts 15*i minutes later.
    assert len(points) == 92
    assert points[0] == slot(utc(2026, 3, 28, 23), QUARTER, 1.0)
    # 00:00-02:00 CET are quarters 0-7; quarter 8 is 03:00 CEST, right after the jump.
    assert points[8] == slot(utc(2026, 3, 29, 1), QUARTER, 1.008)
    # Quarter 91 starts 22 h 45 min after midnight: 21:45 UTC, ending at midnight CEST.
    assert points[91] == slot(utc(2026, 3, 29, 21, 45), QUARTER, 1.091)
    assert all(b.start == a.end for a, b in itertools.pairwise(points))


def test_15_minute_autumn_day_has_100_quarters_and_the_repeated_hour() -> None:
    read_at = datetime.fromisoformat("2026-10-25T09:00:00+01:00")
    points = prices_from_energyprice(payload("importprice_15min_2026-10-25.json"), "spot", OSLO, read_at)
    # Midnight CEST is 22:00 UTC on the 24th; quarter 99 starts 24 h 45 min later.
    assert len(points) == 100
    assert points[0].start == utc(2026, 10, 24, 22)
    # Quarters 8-11 are 02:00-03:00 CEST (00:00 UTC), quarters 12-15 the repeated 02:00 CET (01:00 UTC).
    assert (points[8].start, points[8].price_per_kwh) == (utc(2026, 10, 25, 0), 1.008)
    assert (points[12].start, points[12].price_per_kwh) == (utc(2026, 10, 25, 1), 1.012)
    assert (points[99].start, points[99].end) == (utc(2026, 10, 25, 22, 45), utc(2026, 10, 25, 23))
    assert points[99].price_per_kwh == 1.099


def test_hourly_answer_skips_tomorrows_unknown_prices() -> None:
    read_at = datetime.fromisoformat("2026-01-15T20:10:00+01:00")
    points = prices_from_energyprice(payload("importprice_60min_2026-01-15.json"), "spot", OSLO, read_at)
    # 24 known hours from midnight (23:00 UTC on the 14th), 0.50 rising by 0.01; 24 nulls give nothing.
    assert len(points) == 24
    assert points[0] == slot(utc(2026, 1, 14, 23), HOUR, 0.5, "SEK")
    assert points[23] == slot(utc(2026, 1, 15, 22), HOUR, 0.73, "SEK")


def test_energyprice_keys_count_hours_from_the_hour_it_was_read() -> None:
    read_at = datetime.fromisoformat("2026-01-15T14:20:00+01:00")
    points = prices_from_energyprice(payload("energyprice.json"), "spot", OSLO, read_at)
    # Key 00 is 14:00 local (13:00 UTC); key 10 is midnight of the 16th; 15..35 are null.
    assert len(points) == 15
    assert points[0] == slot(utc(2026, 1, 15, 13), HOUR, 1.3967)
    assert points[10] == slot(utc(2026, 1, 15, 23), HOUR, 1.3063)
    assert points[14] == slot(utc(2026, 1, 16, 3), HOUR, 0.921)


def test_energyprice_on_the_spring_day_counts_points_from_midnight() -> None:
    # Read at 05:30 CEST: the wall hour is 5, so key 00 is point 5 of the day, which starts
    # 5 elapsed hours after midnight (23:00 UTC): 04:00 UTC, that is 06:00 CEST.
    read_at = datetime.fromisoformat("2026-03-29T05:30:00+02:00")
    points = prices_from_energyprice(payload("energyprice.json"), "spot", OSLO, read_at)
    assert points[0] == slot(utc(2026, 3, 29, 4), HOUR, 1.3967)


def test_export_answer_and_shape_recognition() -> None:
    answer = {
        "currency": "eur",
        "source": "EDS",
        "resolution": 60,
        "direction": "export",
        "prices": [0.1, None],
    }
    read_at = datetime.fromisoformat("2026-06-01T10:00:00+02:00")
    assert prices_from_energyprice(answer, "feed", "Europe/Copenhagen", read_at) == [
        PricePoint(utc(2026, 5, 31, 22), utc(2026, 5, 31, 23), 0.1, "EUR", Direction.EXPORT, "feed")
    ]
    assert is_reader_prices(answer) and is_reader_prices(payload("energyprice.json"))
    assert not is_reader_prices({"prices": [{"start": "2026-01-01T00:00:00Z"}]})
    assert not is_reader_prices([1.0])


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"currency": "NOK", "resolution": 30, "prices": [1.0]}, "neither 15 nor 60"),
        ({"currency": "kroner", "resolution": 60, "prices": [1.0]}, "three-letter"),
        ({"currency": "NOK", "00": "1,2"}, "not a number"),
    ],
)
def test_bad_answers_are_refused(answer: dict[str, Any], message: str) -> None:
    with pytest.raises(EnergyPriceError, match=message):
        prices_from_energyprice(answer, "spot", OSLO, datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(EnergyPriceError, match="UTC offset"):
        prices_from_energyprice(payload("energyprice.json"), "spot", OSLO, datetime(2026, 1, 1))


def test_an_answer_without_any_price_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "energyprice.json"
    empty.write_text(
        json.dumps({"currency": "NOK", "source": "EOE", **{f"{i:02d}": None for i in range(36)}})
    )
    with pytest.raises(ImportFileError, match="knows no prices"):
        read_prices(empty, "spot", read_at=datetime(2026, 1, 1, tzinfo=UTC))


def test_import_stores_the_reader_day(store: SQLiteStore) -> None:
    result = import_prices(
        store,
        FIXTURES / "importprice_15min_2026-10-25.json",
        "spot",
        read_at=datetime.fromisoformat("2026-10-25T20:00:00+01:00"),
    )
    assert (result.read, result.stored, result.unchanged) == (100, 100, 0)
    assert (result.first_start, result.last_end) == (utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))


def cli(db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--database-url", f"sqlite:///{db}", *args])


def test_cli_imports_the_readers_files(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    spring = cli(
        db,
        "prices",
        "import",
        str(FIXTURES / "importprice_15min_2026-03-29.json"),
        "--series",
        "spot",
        "--read-at",
        "2026-03-29T08:00:00+02:00",
    )
    assert spring.exit_code == 0, spring.output
    assert spring.stdout.strip() == (
        "series spot: 92 slots read, 92 stored, 0 unchanged, "
        "2026-03-28T23:00:00+00:00 to 2026-03-29T22:00:00+00:00"
    )
    # Without --read-at the file's modification time places it: 15 Jan 2026 14:20 CET.
    hourly = tmp_path / "energyprice.json"
    shutil.copy(FIXTURES / "energyprice.json", hourly)
    mtime = datetime(2026, 1, 15, 13, 20, tzinfo=UTC).timestamp()
    os.utime(hourly, (mtime, mtime))
    legacy = cli(db, "prices", "import", str(hourly), "--series", "hourly")
    assert legacy.exit_code == 0, legacy.output
    assert "15 slots read, 15 stored" in legacy.stdout
    assert "2026-01-15T13:00:00+00:00 to 2026-01-16T04:00:00+00:00" in legacy.stdout
    listed = cli(db, "prices", "list", "--format", "json")
    assert [(row["series"], row["slots"], row["currency"]) for row in json.loads(listed.stdout)] == [
        ("hourly", 15, "NOK"),
        ("spot", 92, "NOK"),
    ]
    bad = cli(db, "prices", "import", str(hourly), "--read-at", "2026-01-15 14:20")
    assert bad.exit_code != 0 and "no UTC offset" in bad.output


def always(kind: int, direction: int, value: float) -> dict[str, Any]:
    """A priceconfig.json row for every day, hour and date."""
    return {
        "t": kind,
        "n": "",
        "d": direction,
        "a": list(range(7)),
        "h": list(range(24)),
        "v": value,
        "s": {"m": 1, "d": 1},
        "e": {"m": 12, "d": 31},
    }


def test_priceconfig_amounts_become_adders_and_the_rest_is_named() -> None:
    fields, skipped = tariff_fields_from_priceconfig(payload("priceconfig.json"), "NOK")
    # Import: +0.45 - 0.10 + 0.05 = 0.40; export: +0.05 - 0.02 = 0.03 (Paslag counts both ways).
    assert fields == {"import_adder_per_kwh": 0.4, "export_adder_per_kwh": 0.03, "currency": "NOK"}
    assert skipped == (
        "MVA: a percentage of the price (25 %) has no tariff field",
        "Dagtariff: applies only on some days and hours; the tariff has no such field",
        "Vinterpris: applies only on some dates; the tariff has no such field",
    )
    tariff = Tariff.from_data({**fields, "import_series": "spot"})
    assert (tariff.import_adder_per_kwh, tariff.export_adder_per_kwh) == (0.4, 0.03)


def test_priceconfig_fixed_prices_add_up_and_an_empty_one_sets_nothing() -> None:
    # Month 0 and day 0 mean the year's first and last, as the reader reads them.
    rows = [
        always(0, 3, 1.2),
        always(0, 1, 0.3),
        {**always(1, 2, 0.1), "s": {"m": 0, "d": 0}, "e": {"m": 0, "d": 0}},
    ]
    fields, skipped = tariff_fields_from_priceconfig({"o": rows}, "sek")
    assert fields == {
        "import_per_kwh": 1.5,
        "export_per_kwh": 1.2,
        "export_adder_per_kwh": 0.1,
        "currency": "SEK",
    }
    assert skipped == ()
    assert tariff_fields_from_priceconfig({"o": []}, "NOK") == ({}, ())


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"o": "none"}, "list of objects"),
        ({"o": [always(7, 1, 1.0)]}, "type 7"),
        ({"o": [{**always(1, 1, 1.0), "a": [7]}]}, "days"),
        ({"o": [always(1, 1, 1.0)]}, "three-letter"),
    ],
)
def test_bad_priceconfig_answers_are_refused(answer: dict[str, Any], message: str) -> None:
    currency = "kroner" if message == "three-letter" else "NOK"
    with pytest.raises(EnergyPriceError, match=message):
        tariff_fields_from_priceconfig(answer, currency)
