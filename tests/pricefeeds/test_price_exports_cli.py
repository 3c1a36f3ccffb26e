"""``meterhub prices import`` of Nord Pool's and ENTSO-E's own exports, through the CLI subprocess.

Fixtures (provenance in tests/fixtures/README.md): two captured ENTSO-E A44 answers, and files
in the layouts of Nord Pool's data portal and of the ENTSO-E platform's CSV exports for the days
clocks change.
"""

from __future__ import annotations

import itertools
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from meterhub.model import PricePoint
from meterhub.store import open_store
from tests.pricefeeds.entsoesim import meterhub

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
NORDPOOL = FIXTURES / "nordpool" / "dayahead-2026-10-25-no1-no2.csv"
ENTSOE_CSV_LEGACY = FIXTURES / "entsoe" / "dayahead-prices-dk1-2022-10-30.csv"
ENTSOE_CSV_NEW = FIXTURES / "entsoe" / "dayahead-prices-no1-2026-03-29.csv"
ENTSOE_XML_CH = FIXTURES / "entsoe" / "a44-ch-pt60m-2025-11-26.xml"
ENTSOE_XML_DE = FIXTURES / "entsoe" / "a44-de-lu-pt15m-2025-10-31.xml"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'imports.db'}"


def stored(db_url: str, series: str | None = None) -> list[PricePoint]:
    store = open_store(db_url)
    try:
        return store.prices(
            datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC), "import", series
        )
    finally:
        store.close()


def contiguous(points: list[PricePoint]) -> bool:
    return all(a.end == b.start for a, b in itertools.pairwise(points))


def file_prices(path: Path, column: int, delimiter: str) -> list[float]:
    """The prices of one column of an export, per kWh, in file order (rows without one skipped)."""
    rows = [line.split(delimiter) for line in path.read_text().splitlines()[1:]]
    cells = [row[column].strip().strip('"') for row in rows]
    return [float(cell) / 1000 for cell in cells if cell]


@pytest.mark.parametrize("fmt", [None, "nordpool-csv"], ids=["recognised", "named"])
def test_a_nord_pool_export_of_the_25_hour_day_gives_100_quarter_hours(db_url: str, fmt: str | None) -> None:
    chosen = ["--format", fmt] if fmt else []
    result = meterhub(
        db_url, "prices", "import", str(NORDPOOL), "--series", "np-no2", "--zone", "NO2", *chosen
    )
    assert result.returncode == 0, result.stderr
    assert "series np-no2: 100 slots read, 100 stored" in result.stdout
    points = stored(db_url, "np-no2")
    assert len(points) == 100 and contiguous(points)
    assert points[0].start == datetime(2026, 10, 24, 22, tzinfo=UTC)
    assert points[-1].end == datetime(2026, 10, 25, 23, tzinfo=UTC)
    assert [p.price_per_kwh for p in points] == pytest.approx(file_prices(NORDPOOL, 3, ";"))
    # the repeated local 02:00-03:00: first in summer time (00:00Z), then in winter time (01:00Z)
    assert points[8].start == datetime(2026, 10, 25, 0, tzinfo=UTC)
    assert points[12].start == datetime(2026, 10, 25, 1, tzinfo=UTC)


def test_a_nord_pool_export_of_several_areas_needs_a_zone(db_url: str) -> None:
    result = meterhub(db_url, "prices", "import", str(NORDPOOL), "--series", "np")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: {NORDPOOL.name}: prices of several areas (NO1, NO2); choose one with --zone"
    )
    assert stored(db_url) == []


def test_the_legacy_entsoe_csv_of_the_25_hour_day_marks_the_repeated_hour(db_url: str) -> None:
    result = meterhub(db_url, "prices", "import", str(ENTSOE_CSV_LEGACY), "--series", "dk1")
    assert result.returncode == 0, result.stderr
    points = stored(db_url, "dk1")
    assert len(points) == 24  # 25 hours, the first without a price in the export
    assert points[0].start == datetime(2022, 10, 29, 23, tzinfo=UTC)
    assert points[-1].end == datetime(2022, 10, 30, 23, tzinfo=UTC) and contiguous(points)
    assert [p.price_per_kwh for p in points] == pytest.approx(file_prices(ENTSOE_CSV_LEGACY, 1, '","'))
    assert all(p.end - p.start == timedelta(hours=1) for p in points)


def test_the_newer_entsoe_csv_of_the_23_hour_day_gives_92_quarter_hours(db_url: str) -> None:
    result = meterhub(
        db_url, "prices", "import", str(ENTSOE_CSV_NEW), "--series", "no1", "--format", "entsoe-csv"
    )
    assert result.returncode == 0, result.stderr
    points = stored(db_url, "no1")
    assert len(points) == 92 and contiguous(points)
    assert points[0].start == datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert points[-1].end == datetime(2026, 3, 29, 22, tzinfo=UTC)
    assert [p.price_per_kwh for p in points] == pytest.approx(file_prices(ENTSOE_CSV_NEW, 3, '","'))


def test_captured_entsoe_documents_import_with_gaps_filled_and_the_first_sequence(db_url: str) -> None:
    swiss = meterhub(db_url, "prices", "import", str(ENTSOE_XML_CH), "--series", "ch")
    german = meterhub(
        db_url, "prices", "import", str(ENTSOE_XML_DE), "--series", "de", "--format", "entsoe-xml"
    )
    assert swiss.returncode == 0 and german.returncode == 0, (swiss.stderr, german.stderr)
    ch = stored(db_url, "ch")
    assert len(ch) == 48 and contiguous(ch)
    assert ch[0].price_per_kwh == pytest.approx(0.10406) and ch[-1].price_per_kwh == pytest.approx(0.1118)
    de = stored(db_url, "de")
    assert len(de) == 96 and contiguous(de)
    assert de[0].start == datetime(2025, 10, 30, 23, tzinfo=UTC)
    assert de[0].price_per_kwh == pytest.approx(0.10281)  # sequence 1, listed second in the document
    assert de[19].price_per_kwh == pytest.approx(0.08461)


def test_the_sequence_2_gaps_repeat_the_price_before(tmp_path: Path, db_url: str) -> None:
    only_second = tmp_path / "de-seq2.xml"
    text = ENTSOE_XML_DE.read_text()
    cut = text.index("      <TimeSeries>\n        <mRID>2</mRID>")
    only_second.write_text(text[:cut] + "  </Publication_MarketDocument>\n")
    result = meterhub(db_url, "prices", "import", str(only_second), "--series", "de2")
    assert result.returncode == 0, result.stderr
    points = stored(db_url, "de2")
    assert len(points) == 96
    assert (
        points[19].price_per_kwh == points[18].price_per_kwh == pytest.approx(0.0805)
    )  # position 20 left out
    assert points[71].price_per_kwh == points[70].price_per_kwh == pytest.approx(0.11996)  # position 72


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "bad-row.csv",
            "Delivery Start (CET);Delivery End (CET);NO1 Price (EUR)\n"
            "25.10.2026 00:00:00;25.10.2026 00:15:00;41.50\n"
            "25.10.2026 00:15:00;25.10.2026 00:30:00;lots\n",
            "1 bad row(s), nothing imported: line 3: price 'lots' is not a number",
        ),
        ("garbage.xml", "<Publication_MarketDocument><TimeSeries>", "not well-formed XML"),
        (
            "ack.xml",
            '<?xml version="1.0"?><Acknowledgement_MarketDocument xmlns="urn:x"><Reason><code>999</code>'
            "<text>No matching data found for Data item Day-ahead Prices</text></Reason>"
            "</Acknowledgement_MarketDocument>",
            "an acknowledgement without prices",
        ),
        (
            "dtd.xml",
            '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Publication_MarketDocument/>',
            "declares a DTD",
        ),
    ],
    ids=["bad-price", "garbage-xml", "acknowledgement", "entities"],
)
def test_a_bad_export_is_one_line_and_imports_nothing(
    tmp_path: Path, db_url: str, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    result = meterhub(db_url, "prices", "import", str(path), "--series", "bad")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert stored(db_url) == []


def test_a_row_file_still_imports_as_before(tmp_path: Path, db_url: str) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("start,resolution,price,currency\n2026-10-25T00:00:00+02:00,15m,0.5,EUR\n")
    result = meterhub(db_url, "prices", "import", str(rows), "--series", "rows")
    assert result.returncode == 0, result.stderr
    assert [p.price_per_kwh for p in stored(db_url, "rows")] == [0.5]
    copy = tmp_path / "export.csv"
    shutil.copy(NORDPOOL, copy)
    wrong = meterhub(db_url, "prices", "import", str(copy), "--series", "x", "--format", "rows")
    assert wrong.returncode == 1 and "the header lacks" in wrong.stderr


def test_an_export_in_another_currency_than_its_series_is_refused(tmp_path: Path, db_url: str) -> None:
    rows = tmp_path / "nok.csv"
    rows.write_text("start,resolution,price,currency\n2026-10-20T00:00:00+02:00,15m,1.25,NOK\n")
    assert meterhub(db_url, "prices", "import", str(rows), "--series", "mixed").returncode == 0
    result = meterhub(db_url, "prices", "import", str(NORDPOOL), "--series", "mixed", "--zone", "NO1")
    assert result.returncode == 1
    assert "holds import prices in NOK, these are in EUR" in result.stderr
    assert [p.currency for p in stored(db_url, "mixed")] == ["NOK"]
