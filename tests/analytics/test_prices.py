"""Price files: CSV and JSON, end or resolution, and one clear reason per bad row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from meterhub.analytics.prices import import_prices, parse_prices, read_prices
from meterhub.errors import ImportFileError
from meterhub.model import Direction, PricePoint
from meterhub.store.sqlite import SQLiteStore

T0 = datetime(2026, 3, 28, 23, tzinfo=UTC)
QUARTER = timedelta(minutes=15)


def test_csv_with_resolution_and_end_and_directions() -> None:
    text = (
        "start,end,resolution,price,currency,direction,area\n"
        "2026-03-29T00:00:00+01:00,,PT15M,1.5,nok,,NO1\n"
        "2026-03-29T00:15:00+01:00,2026-03-29T00:30:00+01:00,,1.25,NOK,import,NO1\n"
        "2026-03-28T23:00:00Z,,60m,0.1,NOK,export,NO1\n"
    )
    assert parse_prices(text, "no1") == [
        PricePoint(T0, T0 + QUARTER, 1.5, "NOK", Direction.IMPORT, "no1"),
        PricePoint(T0 + QUARTER, T0 + 2 * QUARTER, 1.25, "NOK", Direction.IMPORT, "no1"),
        PricePoint(T0, T0 + 4 * QUARTER, 0.1, "NOK", Direction.EXPORT, "no1"),
    ]


def test_semicolon_csv_with_decimal_commas() -> None:
    text = "start;resolution;price;currency\n2026-03-28T23:00:00Z;1h;0,875;EUR\n"
    (point,) = parse_prices(text, "s")
    assert (point.price_per_kwh, point.end - point.start) == (0.875, timedelta(hours=1))


def test_json_array_or_object() -> None:
    rows = [{"start": "2026-03-28T23:00:00Z", "resolution": "15m", "price": 0.2, "currency": "EUR"}]
    assert parse_prices(orjson.dumps(rows).decode(), "s") == parse_prices(
        orjson.dumps({"prices": rows}).decode(), "s"
    )


def test_every_bad_row_is_named_and_nothing_is_kept() -> None:
    text = (
        "start,resolution,price,currency,direction\n"
        "2026-03-29T00:00:00,15m,1,NOK,import\n"
        "2026-03-29T00:00:00Z,15m,abc,NOK,import\n"
        "2026-03-29T00:05:00Z,15m,1,NOK,import\n"
        "2026-03-29T00:30:00Z,15,1,NOK,import\n"
        "2026-03-29T00:45:00Z,15m,1,NOK,sideways\n"
        "2026-03-29T01:00:00Z,15m,1,kroner,import\n"
        "2026-03-29T01:15:00Z,15m,1,NOK,import\n"
    )
    with pytest.raises(ImportFileError) as caught:
        parse_prices(text, "s", "p.csv")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("p.csv: 6 bad row(s), nothing imported: line 2: start")
    for reason in (
        "has no UTC offset",
        "'abc' is not a number",
        "off the 15-minute grid",
        "resolution '15'",
        "(and 1 more)",
    ):
        assert reason in message


def test_overlaps_and_mixed_currencies_are_refused() -> None:
    overlap = (
        "start,resolution,price,currency\n2026-03-29T00:00:00Z,1h,1,EUR\n2026-03-29T00:30:00Z,15m,1,EUR\n"
    )
    with pytest.raises(ImportFileError, match="line 3: slot 2026-03-29T00:30:00\\+00:00 overlaps"):
        parse_prices(overlap, "s")
    mixed = "start,resolution,price,currency\n2026-03-29T00:00:00Z,1h,1,EUR\n2026-03-29T01:00:00Z,1h,1,SEK\n"
    with pytest.raises(ImportFileError, match="currency SEK differs from EUR"):
        parse_prices(mixed, "s")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("when,price\n", "the header lacks start, currency"),
        ("start,price,currency\n", "no price rows"),
        ("[1, 2", "not valid JSON"),
        ('{"rows": []}', "expected an array"),
        (
            '[{"start": "2026-03-29T00:00:00Z", "end": "2026-03-29T00:15:00Z", '
            '"resolution": "15m", "price": 1, "currency": "EUR"}]',
            "exactly one of end and resolution",
        ),
        (
            '[{"start": "2026-03-29T00:15:00Z", "end": "2026-03-29T00:00:00Z", '
            '"price": 1, "currency": "EUR"}]',
            "not after start",
        ),
        (
            '[{"start": "2026-03-29T00:00:00Z", "resolution": "15m", "price": true, "currency": "EUR"}]',
            "not a number",
        ),
        ('["x"]', "item 0: not an object"),
    ],
)
def test_malformed_files(text: str, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        parse_prices(text, "s")


def test_import_stores_updates_and_guards_the_currency(store: SQLiteStore, tmp_path: Path) -> None:
    path = tmp_path / "spot.csv"
    path.write_text(
        "start,resolution,price,currency\n2026-03-29T00:00:00Z,1h,1,NOK\n2026-03-29T01:00:00Z,1h,2,NOK\n"
    )
    first = import_prices(store, path, "spot")
    assert (first.read, first.stored, first.unchanged) == (2, 2, 0)
    assert (first.first_start, first.last_end) == (T0 + timedelta(hours=1), T0 + timedelta(hours=3))
    path.write_text(
        "start,resolution,price,currency\n2026-03-29T00:00:00Z,1h,1,NOK\n2026-03-29T01:00:00Z,1h,3,NOK\n"
    )
    again = import_prices(store, path, "spot")
    assert (again.stored, again.unchanged) == (1, 1)
    assert [p.price_per_kwh for p in store.prices(T0, T0 + timedelta(days=1), "import", "spot")] == [1.0, 3.0]
    path.write_text("start,resolution,price,currency\n2026-03-29T02:00:00Z,1h,1,EUR\n")
    with pytest.raises(ImportFileError, match="holds import prices in NOK"):
        import_prices(store, path, "spot")
    with pytest.raises(ImportFileError, match="not found"):
        read_prices(tmp_path / "missing.csv", "spot")
