"""``meterhub import`` on hostile and broken files: the real CLI on real files and a real SQLite file.

Every rejected row is named by the line it starts on (the header is line 1) with its reason, and
never stops the rest of the file; a header that cannot be trusted refuses the file before
anything is written; the exit status says when nothing was stored.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meterhub.exporter import export_lines
from meterhub.model import Reading
from meterhub.store import open_store
from tests.cli.conftest import Run

T0 = "2026-01-01T00:00:00Z"
FIELD_LIMIT_CHARS = 131_072


def _stored(db_url: str) -> list[tuple[str, str, float | None]]:
    """Return (meter, ts, power_w) of every stored reading."""
    store = open_store(db_url)
    try:
        start, end = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
        return [(r.meter, r.ts.isoformat(), r.power_w) for r in store.iter_readings(None, start, end)]
    finally:
        store.close()


def _meter_ids(run: Run) -> list[str]:
    return [m["id"] for m in json.loads(run("meters", "list", "--format", "json").stdout)]


def _rejections(stdout: str) -> list[tuple[int, str]]:
    """Return (line, reason) of every rejection the summary lists."""
    return [(int(m[1]), m[2]) for m in re.finditer(r"^  line (\d+): (.*)$", stdout, re.M)]


def test_a_field_over_the_limit_rejects_its_row_and_the_rest_is_stored(
    run: Run, tmp_path: Path, db_url: str
) -> None:
    path = tmp_path / "big.csv"
    huge = "9" * (FIELD_LIMIT_CHARS + 1)
    path.write_text(
        "meter,ts,power_w\n"
        "m1,2026-01-01T00:00:00Z,1\n"
        f"m1,2026-01-01T00:01:00Z,{huge}\n"
        "m1,2026-01-01T00:02:00Z,3\n"
        f'm1,2026-01-01T00:03:00Z,"{huge}"\n'
        "m1,2026-01-01T00:04:00Z,5\n"
    )
    result = run("import", str(path))
    assert "rows read: 5, stored: 3, duplicates: 0, rejected: 2" in result.stdout
    rejections = _rejections(result.stdout)
    assert [line for line, _ in rejections] == [3, 5]
    assert all("field larger than field limit (131072)" in reason for _, reason in rejections)
    assert [(ts, power) for _, ts, power in _stored(db_url)] == [
        ("2026-01-01T00:00:00+00:00", 1.0),
        ("2026-01-01T00:02:00+00:00", 3.0),
        ("2026-01-01T00:04:00+00:00", 5.0),
    ]


def test_a_repeated_header_column_refuses_the_file_before_anything_is_written(
    run: Run, tmp_path: Path, db_url: str
) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("meter,ts,power_w,voltage_v,power_w\nm1,2026-01-01T00:00:00Z,1,230,2\n")
    result = run("import", str(path), ok=False)
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: the header names column(s) power_w more than once"
    assert result.stdout == ""
    assert _meter_ids(run) == []
    assert _stored(db_url) == []


def test_a_file_whose_rows_are_all_rejected_fails_with_its_summary(
    run: Run, tmp_path: Path, db_url: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("meter,ts,power_w\nm1,nope,1\nm1,2026-01-01T00:00:00Z,abc\n")
    result = run("import", str(path), ok=False)
    assert result.exit_code == 1
    assert "rows read: 2, stored: 0, duplicates: 0, rejected: 2" in result.stdout
    assert [line for line, _ in _rejections(result.stdout)] == [2, 3]
    assert result.stderr.strip() == "error: nothing stored: all 2 rows were rejected"
    assert _stored(db_url) == []


def test_a_file_without_rows_fails(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("meter,ts,power_w\n\n")
    result = run("import", str(path), ok=False)
    assert result.exit_code == 1
    assert "rows read: 0, stored: 0" in result.stdout
    assert result.stderr.strip() == "error: nothing stored: the file holds no rows"


def test_importing_again_with_nothing_new_succeeds(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "partly.csv"
    path.write_text("meter,ts,power_w\nm1,2026-01-01T00:00:00Z,1\nm1,bad,2\n")
    first = run("import", str(path))
    assert "rows read: 2, stored: 1, duplicates: 0, rejected: 1" in first.stdout
    second = run("import", str(path))
    assert "rows read: 2, stored: 0, duplicates: 1, rejected: 1" in second.stdout


def test_rejected_rows_are_named_by_the_exact_line_they_start_on(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "lines.csv"
    path.write_bytes(
        b"meter,ts,power_w\r\n"  # 1
        b"m1,2026-01-01T00:00:00Z,1\r\n"  # 2
        b"m1,not-a-time,2\r\n"  # 3
        b"\r\n"  # 4 (blank, skipped)
        b'm1,2026-01-01T00:01:00Z,"3\r\n'  # 5: a quoted field over two lines
        b'"\r\n'  # 6
        b"m1,2026-01-01T00:02:00Z,four\r\n"  # 7
        b'"m\r\n'  # 8: a meter id over two lines
        b'1",2026-01-01T00:03:00Z,5\r\n'  # 9
        b"m1,2026-01-01T00:04:00Z,6,7\r\n"  # 10: a field too many
        b"m1,2026-01-01T00:05:00Z\r\n"  # 11: a field too few
        b"m1,2026-01-01T00:06:00Z,8\r\n"  # 12
    )
    result = run("import", str(path))
    assert "rows read: 8, stored: 3, duplicates: 0, rejected: 5" in result.stdout
    assert _rejections(result.stdout) == [
        (3, "bad ts 'not-a-time': Invalid isoformat string: 'not-a-time'"),
        (7, "power_w is not a number: 'four'"),
        (8, "bad meter id: meter id 'm\\r\\n1' may hold only letters, digits and _ . : -"),
        (10, "4 fields where the header has 3"),
        (11, "2 fields where the header has 3"),
    ]


def test_ndjson_rejections_are_named_by_their_exact_line(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "lines.ndjson"
    path.write_text(
        f'{{"meter": "m1", "ts": "{T0}", "power_w": 1}}\n'  # 1
        "\n"  # 2 (blank, skipped)
        '{"meter": "m1\\u0000", "ts": 1767225660, "power_w": 2}\n'  # 3
        '{"meter": "m1", "ts": 1767225720, "power_w": 3, "colour": 1}\n'  # 4
        '{"meter": "m1", "ts": 1767225780, "power_w": 4}\n'  # 5
    )
    result = run("import", str(path))
    assert "rows read: 4, stored: 2, duplicates: 0, rejected: 2" in result.stdout
    assert _rejections(result.stdout) == [
        (3, "bad meter id: meter id 'm1\\x00' may hold only letters, digits and _ . : -"),
        (4, "unknown field(s) colour"),
    ]


HOSTILE_IDS = [
    "ams\x00",
    "../../etc/passwd",
    "a" * 100_000,
    '=HYPERLINK("http://x")',
    "-1+2",
    "@SUM(A1)",
    "house grid",
    "",
    "house/grid",
]


def test_meter_ids_outside_the_id_rule_are_rejected_and_create_no_meter(
    run: Run, tmp_path: Path, db_url: str
) -> None:
    path = tmp_path / "ids.csv"
    with path.open("w", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(["meter", "ts", "power_w"])
        for meter_id in HOSTILE_IDS:
            writer.writerow([meter_id or " ", T0, 1])
        writer.writerow(["Grid-1:a_b.c", T0, 2])
    result = run("import", str(path))
    assert f"rows read: {len(HOSTILE_IDS) + 1}, stored: 1, duplicates: 0" in result.stdout
    lines = {line: reason for line, reason in _rejections(result.stdout)}
    assert sorted(lines) == list(range(2, len(HOSTILE_IDS) + 2))
    assert lines[2] == "bad meter id: meter id 'ams\\x00' may hold only letters, digits and _ . : -"
    assert lines[3] == "bad meter id: meter id '../../etc/passwd' must start with a letter or digit"
    assert lines[4] == (
        f"bad meter id: meter id {'a' * 40!r}... (100000 characters) is longer than 64 characters"
    )
    assert lines[5].startswith("bad meter id: meter id '=HYPERLINK")
    assert lines[9] == "no meter: add a meter column or pass --meter"
    assert _meter_ids(run) == ["Grid-1:a_b.c"]
    assert _stored(db_url) == [("Grid-1:a_b.c", "2026-01-01T00:00:00+00:00", 2.0)]


def test_a_bad_meter_option_refuses_the_file(run: Run, tmp_path: Path, db_url: str) -> None:
    path = tmp_path / "nometer.csv"
    path.write_text(f"ts,power_w\n{T0},1\n")
    result = run("import", str(path), "--meter", "../x", ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --meter '../x' must start with a letter or digit")
    assert _meter_ids(run) == []


@pytest.mark.parametrize("meter_id", HOSTILE_IDS)
def test_meters_add_refuses_ids_outside_the_rule(run: Run, meter_id: str) -> None:
    result = run("meters", "add", "--vendor", "file", "--", meter_id, ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: meter id ")
    assert len(result.stderr) < 300
    place = run("places", "add", "--tz", "UTC", "--", meter_id, ok=False)
    assert place.exit_code == 1
    assert place.stderr.startswith("error: place id ")
    assert _meter_ids(run) == []


def test_cli_csv_tables_neutralise_formula_text_and_keep_numbers(run: Run, tmp_path: Path) -> None:
    run("meters", "add", "m1", "--vendor", "file", "--name", '=HYPERLINK("http://x")')
    run("meters", "add", "m2", "--vendor", "file", "--name", "+1 -2 @3")
    path = tmp_path / "power.csv"
    path.write_text(f"meter,ts,power_w\nm1,{T0},-250.0\n")
    run("import", str(path))
    rows = list(csv.DictReader(io.StringIO(run("meters", "list", "--format", "csv").stdout)))
    assert [row["name"] for row in rows] == ['\'=HYPERLINK("http://x")', "'+1 -2 @3"]
    assert rows[0]["power_w"] == "-250.0"
    latest = list(csv.DictReader(io.StringIO(run("latest", "--format", "csv").stdout)))
    assert latest[0]["power_w"] == "-250.0"


def test_export_csv_neutralises_a_formula_meter_id_of_an_old_database(run: Run, db_url: str) -> None:
    run("meters", "add", "m1", "--vendor", "file")
    # A database written before the id rule may hold such an id: rename the meter behind the store.
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE meters SET id = ? WHERE id = 'm1'", ('=HYPERLINK("http://x")',))
    store = open_store(db_url)
    try:
        at = datetime(2026, 1, 1, tzinfo=UTC)
        store.write_readings([Reading('=HYPERLINK("http://x")', at, 0, power_w=-250.0)])
    finally:
        store.close()
    exported = run("export", "--start", "2025-12-31", "--end", "2026-01-02").stdout
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[1][:3] == ['\'=HYPERLINK("http://x")', "2026-01-01T00:00:00+00:00", "0"]
    assert rows[1][5] == "-250.0"


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r"])
def test_export_lines_quote_every_formula_lead(lead: str) -> None:
    reading = Reading(f"{lead}cmd", datetime(2026, 1, 1, tzinfo=UTC), 0, power_w=-250.0)
    text = "".join(export_lines([reading], "csv"))
    row = list(csv.reader(io.StringIO(text)))[1]
    assert row[0] == f"'{lead}cmd"
    assert row[5] == "-250.0"


def test_exported_csv_of_a_normal_meter_imports_again_identically(
    run: Run, tmp_path: Path, db_url: str
) -> None:
    path = tmp_path / "house.csv"
    path.write_text(
        "meter,ts,phase,voltage_v,current_a,power_w,reactive_power_var,power_factor,frequency_hz,"
        "energy_import_kwh,energy_export_kwh,reactive_import_kvarh,reactive_export_kvarh\n"
        "Grid-1:a_b.c,2026-01-01T00:00:00Z,0,230.1,-4.5,-250.0,-12.5,-0.98,50.01,1000.125,2.5,0.5,0.25\n"
        "Grid-1:a_b.c,2026-01-01T00:00:00Z,1,229.9,1.5,345.5,,0.99,,,,,\n"
        "house,2026-01-01T00:01:00+01:00,0,,,0.0,,,,,,,\n"
    )
    run("import", str(path))
    exported = run("export", "--start", "2025-12-31", "--end", "2026-01-02").stdout
    again = tmp_path / "again.csv"
    again.write_text(exported)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    from click.testing import CliRunner

    from meterhub.cli import main

    imported = CliRunner().invoke(main, ["--database-url", other, "import", str(again)])
    assert imported.exit_code == 0 and "stored: 3, duplicates: 0, rejected: 0" in imported.stdout
    reexported = CliRunner().invoke(
        main, ["--database-url", other, "export", "--start", "2025-12-31", "--end", "2026-01-02"]
    )
    assert reexported.stdout == exported
    assert "-250.0" in exported and "'" not in exported
    assert _stored(other) == _stored(db_url)


def test_a_byte_that_is_not_utf8_rejects_only_its_row(run: Run, tmp_path: Path, db_url: str) -> None:
    csv_path = tmp_path / "latin.csv"
    csv_path.write_bytes(
        b"meter,ts,power_w\nm1,2026-01-01T00:00:00Z,1\nm1,2026-01-01T00:01:00Z,2\xff\nm1,2026-01-01T00:02:00Z,3\n"
    )
    result = run("import", str(csv_path))
    assert "rows read: 3, stored: 2, duplicates: 0, rejected: 1" in result.stdout
    assert _rejections(result.stdout) == [(3, "not UTF-8 text (byte 0xff)")]
    ndjson_path = tmp_path / "latin.ndjson"
    ndjson_path.write_bytes(
        b'{"meter": "m\xe9", "ts": 1767225600}\n{"meter": "m2", "ts": 1767225600, "power_w": 1}\n'
    )
    result = run("import", str(ndjson_path))
    assert _rejections(result.stdout) == [(1, "not UTF-8 text (byte 0xe9)")]
    assert [meter for meter, _, _ in _stored(db_url)] == ["m1", "m1", "m2"]


def test_a_header_that_is_not_utf8_refuses_the_file(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "utf16.csv"
    path.write_bytes("meter,ts,power_w\nm1,2026-01-01T00:00:00Z,1\n".encode("utf-16"))
    result = run("import", str(path), ok=False)
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        == "error: line 1: the header is not UTF-8 text (byte 0xff); save the file as UTF-8"
    )
    assert _meter_ids(run) == []
