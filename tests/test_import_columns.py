"""Importing by columns stores and rejects exactly what the row reader does, on both backends.

Each file is imported twice into fresh databases: by ``import_file`` (pyarrow blocks, vector
checks, column writes) and by ``import_file_by_rows`` (one reading per row through the Ingestor,
the importer as it always was). Readings, rollups, latest values, gaps, counts, rejections with
their lines and reasons, and the meters created must be the same. Small blocks put the edges
of blocks, and the switch to the row reader on a quote, inside the files.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from meterhub.importcolumns import csv_blocks
from meterhub.importer import import_file, import_file_by_rows
from meterhub.ingest import IngestReport
from meterhub.store.base import Store
from tests.backends import BACKENDS, Backend

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HEADER = (
    "meter,ts,phase,voltage_v,current_a,power_w,reactive_power_var,power_factor,frequency_hz,"
    "energy_import_kwh,energy_export_kwh,reactive_import_kvarh,reactive_export_kvarh"
)


@dataclass
class Pair:
    """Two fresh databases of one backend: one for each import path."""

    columns: Store
    rows: Store


@pytest.fixture(params=BACKENDS)
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    backends = []
    for name in ("columns", "rows"):
        folder = tmp_path / name
        folder.mkdir()
        backends.append(Backend(request.param, folder))
    try:
        yield Pair(backends[0].open(), backends[1].open())
    finally:
        for backend in backends:
            backend.close()


def _iso(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def tricky_csv() -> str:
    """Good rows around every kind of row the vectors hand to the row reader."""
    lines = [HEADER]
    register = 100.0
    for k in range(120):
        register += 0.125
        lines.append(f"house,{_iso(k)},0,230.{k % 10},1.5,{250 + k},,,,{register:.3f},,,")
        lines.append(f"house,{_iso(k)},1,231,0.5,{100 + k},,,,,,,")
    lines += [
        f"shed,{_iso(3)},0,,,-42.5,,,,,,,",  # a second meter, created on first sight
        f"shed,{_iso(3)},0,,,-43.5,,,,,,,",  # same key again: a duplicate, the first wins
        f"shed,{_iso(1)},0,,,-41.0,,,,,,,",  # older than the series: the late path
        f"shed, {_iso(4)},0,,,7,,,,,,,",  # a space before the time: the row reader's float()/iso
        f"shed,{_iso(5)}, 2 ,,,8,,,,,,,",  # phase with spaces
        f"shed,{_iso(6)},1.0,,,9,,,,,,,",  # phase written as a float
        f"shed,{_iso(7)},4,,,9,,,,,,,",  # phase out of range
        f"shed,{_iso(7)},nan,,,9,,,,,,,",
        f"shed,{_iso(7)},-inf,,,9,,,,,,,",
        f"shed,{_iso(8)},0,,,nan,,,,,,,",
        f"shed,{_iso(9)},0,,,inf,,,,,,,",
        f"shed,{_iso(10)},0,,,1e400,,,,,,,",
        f"shed,{_iso(11)},0,,,10000001,,,,,,,",  # beyond 10 MW
        f"shed,{_iso(12)},0,1001,,,,,,,,,",
        f"shed,{_iso(13)},0,,,,,1.5,,,,,",
        f"shed,{_iso(14)},0,,,,,,,-1,,,",  # a negative register
        f"shed,{_iso(15)},0,,,,,,,,,,",  # no value at all
        f"shed,{_iso(16)},0,,,1_000,,,,,,,",  # Python's float() reads underscores
        f"shed,{_iso(17)},0,,,+5,,,,,,,",
        f"shed,{_iso(18)},0,,,.5,,,,,,,",
        f"shed,{_iso(19)},0,,,5.,,,,,,,",
        f"shed,{_iso(20)},0,,, 6 ,,,,,,,",  # spaces around a number
        f"shed,{_iso(21)},0,,,0x10,,,,,,,",
        f"shed,{_iso(22)},0,,,.,,,,,,,",
        f"shed,{_iso(23)},0,,,-,,,,,,,",
        f"shed,{_iso(24)},0,,,e5,,,,,,,",
        f"shed,{_iso(25)},0,,,1.5e,,,,,,,",
        f"shed,{_iso(26)},0,,,1..2,,,,,,,",
        f"shed,{_iso(27)},0,,,-0,,,,,,,",
        f"shed,{_iso(28)},0,,,1E+2,,,,,,,",
        f"shed,{_iso(29)},0,,,\t7,,,,,,,",
        f"shed,{_iso(30)},0,,,Infinity,,,,,,,",
        f"shed,{_iso(31)},0,,,0.1000000000000000055511151231257827,,,,,,,",
        "shed,1999-12-31T23:59:59Z,0,,,1,,,,,,,",
        "shed,2999-01-01T00:00:00Z,0,,,1,,,,,,,",
        "shed,2026-02-30T00:00:00Z,0,,,1,,,,,,,",
        "shed,2026-01-01T24:00:00Z,0,,,1,,,,,,,",
        "shed,2026-01-01T00:30:00,0,,,1,,,,,,,",  # no offset
        "shed,2026-01-01T01:30:00+01:00,0,,,2,,,,,,,",  # = 00:30Z
        "shed,2026-01-01T00:31:00.123456+00:00,0,,,3,,,,,,,",
        "shed,2026-01-01T00:32:00.1234567Z,0,,,3,,,,,,,",  # seven digits: truncated by Python
        "shed,2026-01-01 00:33:00Z,0,,,4,,,,,,,",
        "shed,2026-01-01T00:34Z,0,,,4,,,,,,,",
        "shed,2026-01-01T00:35:00+0100,0,,,4,,,,,,,",
        "shed,1767228960,0,,,5,,,,,,,",  # epoch seconds: 2026-01-01T00:56:00Z
        "shed,1767229020.5,0,,,5,,,,,,,",
        "shed,now,0,,,5,,,,,,,",
        ",2026-01-01T01:00:00Z,0,,,6,,,,,,,",  # no meter
        "Shed-2,2026-01-01T01:00:00Z,0,,,6,,,,,,,",
        "sh ed,2026-01-01T01:00:00Z,0,,,6,,,,,,,",
        " shed,2026-01-01T01:01:00Z,0,,,6,,,,,,,",
        "shed,2026-01-01T01:02:00Z,0,,,6",  # too few fields
        "shed,2026-01-01T01:03:00Z,0,,,6,,,,,,,,",  # too many
        "",
        " , , , , , , , , , , , , ",  # blank record: not a row
        "shed,2026-01-01T01:04:00Z,0,,,six,,,,,,,",
    ]
    for k in range(60):  # good rows after the odd ones
        lines.append(f"shed,{_iso(100 + k)},0,,,{k},,,,,{k / 10:.1f},,")
    return "\r\n".join(lines[:150]) + "\r\n" + "\n".join(lines[150:]) + "\n"


def _both(
    pair: Pair, path: Path, meter: str | None = None, block_bytes: int = 2048
) -> tuple[IngestReport, IngestReport]:
    by_columns = import_file(pair.columns, path, meter, batch_rows=37, block_bytes=block_bytes)
    by_rows = import_file_by_rows(pair.rows, path, meter, batch_rows=37)
    return by_columns, by_rows


def _state(store: Store) -> dict[str, object]:
    start, end = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    meters = sorted((m.id, m.vendor, m.tz) for m in store.list_meters())
    hours = [T0 + timedelta(hours=h) for h in range(0, 73)]
    days = [T0 - timedelta(days=1) + timedelta(days=d) for d in range(4)]
    return {
        "meters": meters,
        "readings": list(store.iter_readings(None, start, end)),
        "latest": sorted(store.latest(None, None)),
        "hours": {(m, p): store.aggregate(m, p, hours) for m, _, _ in meters for p in range(4)},
        "days": {(m, p): store.aggregate(m, p, days) for m, _, _ in meters for p in range(4)},
        "gaps": {m: store.gaps(m, start, end) for m, _, _ in meters},
    }


def _report(report: IngestReport) -> tuple[object, ...]:
    return (
        report.received,
        report.stored,
        report.duplicates,
        report.rejected_count,
        report.rejections,
        report.added_meters,
    )


@pytest.mark.parametrize("block_bytes", [40, 2048, 1 << 22])
def test_a_tricky_csv_stores_and_rejects_exactly_what_the_row_reader_does(
    pair: Pair, tmp_path: Path, block_bytes: int
) -> None:
    path = tmp_path / "tricky.csv"
    path.write_text(tricky_csv(), newline="")
    by_columns, by_rows = _both(pair, path, block_bytes=block_bytes)
    assert _report(by_columns) == _report(by_rows)
    # Worked out from the file: 240 + 60 plain rows and 54 odd ones (56 lines, two of them blank);
    # 29 of the odd ones are rejected (phase 4, nan and -inf, NaN, inf, 1e400, 10 MW, 1001 V, power
    # factor 1.5, a negative register, no value, 0x10, '.', '-', 'e5', '1.5e', '1..2', Infinity,
    # 1999, 2999, 30 February, 24:00, no offset, 'now', no meter, 'sh ed', too few and too many
    # fields, 'six'), one repeats a key.
    assert by_columns.received == 240 + 54 + 60
    assert by_columns.rejected_count == 29
    assert by_columns.duplicates == 1
    assert by_columns.stored == 354 - 29 - 1
    assert [r.where for r in by_columns.rejections][:3] == ["line 248", "line 249", "line 250"]
    assert _state(pair.columns) == _state(pair.rows)
    assert [line.split()[2] for line in by_columns.added_meters] == ["house", "shed", "Shed-2"]


def test_a_quote_hands_the_rest_of_the_file_to_the_row_reader_with_its_lines(
    pair: Pair, tmp_path: Path
) -> None:
    lines = [HEADER] + [f"m1,{_iso(k)},0,,,{k},,,,,,," for k in range(200)]
    lines[150] = f'm1,{_iso(149)},0,,,"14\n9",,,,,,,'  # line 151, running over two lines
    lines[180] = f"m1,{_iso(179)},0,,,x,,,,,,,"  # after the quote: line 182
    path = tmp_path / "quoted.csv"
    path.write_text("\n".join(lines) + "\n")
    by_columns, by_rows = _both(pair, path)
    assert _report(by_columns) == _report(by_rows)
    assert [(r.where, r.reason) for r in by_columns.rejections] == [
        ("line 151", "power_w is not a number: '14\\n9'"),
        ("line 182", "power_w is not a number: 'x'"),
    ]
    assert by_columns.stored == 198
    assert _state(pair.columns) == _state(pair.rows)


def test_an_ndjson_file_stores_and_rejects_exactly_what_the_row_reader_does(
    pair: Pair, tmp_path: Path
) -> None:
    lines = [f'{{"meter": "m1", "ts": "{_iso(k)}", "power_w": {k}, "phase": 0}}' for k in range(100)]
    lines += [f'{{"meter": "m2", "ts": {1767225600 + 60 * k}, "energy_import_kwh": {k}}}' for k in range(100)]
    lines[10] = '{"meter": "m1", "ts": "2026-01-01T00:10:00Z", "power_w": NaN}'
    lines[20] = '{"meter": "m1", "ts": "2026-01-01T00:20:00Z", "power_w": "20"}'
    lines[30] = '{"meter": "m1", "ts": "2026-01-01T00:30:00Z", "colour": 1}'
    lines[40] = ""
    lines[50] = '{"meter": "m1", "ts": 1767228600, "power_w": 50}'
    lines[150] = '{"meter": "m2", "ts": 1767234600.25, "energy_import_kwh": 150}'
    lines[160] = '{"meter": "m2", "ts": 946684799, "energy_import_kwh": 160}'
    lines[170] = "[1, 2]"
    lines[180] = '{"meter": "m2", "ts": true, "energy_import_kwh": 180}'
    path = tmp_path / "mixed.ndjson"
    path.write_text("\n".join(lines) + "\n")
    by_columns, by_rows = _both(pair, path, block_bytes=1024)
    assert _report(by_columns) == _report(by_rows)
    assert [r.where for r in by_columns.rejections] == [
        "line 11",
        "line 31",
        "line 161",
        "line 171",
        "line 181",
    ]
    assert by_columns.stored == 199 - 5
    assert _state(pair.columns) == _state(pair.rows)


def test_rows_without_a_meter_column_take_the_meter_option(pair: Pair, tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("ts,power_w\n" + "".join(f"{_iso(k)},{k}\n" for k in range(50)) + "bad,1\n")
    by_columns, by_rows = _both(pair, path, meter="solo")
    assert _report(by_columns) == _report(by_rows)
    assert by_columns.stored == 50
    assert by_columns.rejections[0].where == "line 52"
    assert _state(pair.columns) == _state(pair.rows)


def test_blocks_stay_bounded_and_number_every_line(tmp_path: Path) -> None:
    body = "".join(f"m1,{_iso(k)},{k:04d}\n" for k in range(5000))  # 29 bytes a line
    stream = io.BytesIO(("meter,ts,power_w\n" + body).encode())
    blocks = list(csv_blocks(stream, None, lambda: 2**62, block_bytes=4096))
    # A block is one read of 4096 bytes plus the rest of a line: at most 142 lines of 29 bytes.
    assert max(block.size for block in blocks) <= 142
    assert len(blocks) >= 5000 * 29 // (4096 + 28)
    lines = [int(n) for block in blocks for n in block.lines.tolist()]
    assert lines == list(range(2, 5002))
    assert all(block.ok.all() for block in blocks)


def test_the_same_file_imported_again_counts_every_row_as_a_duplicate(pair: Pair, tmp_path: Path) -> None:
    path = tmp_path / "again.csv"
    path.write_text(tricky_csv(), newline="")
    first = import_file(pair.columns, path, None, batch_rows=50)
    second = import_file(pair.columns, path, None, batch_rows=50)
    assert second.stored == 0
    assert second.duplicates == first.stored + first.duplicates
    assert second.rejections == first.rejections


ODD_BYTES = {
    "csv lone CR": ("odd.csv", b"meter,ts,power_w\nm1,2026-01-01T00:00:00Z,1\rm1,2026-01-01T00:01:00Z,x\n"),
    "csv not UTF-8": (
        "odd.csv",
        b"meter,ts,power_w\nm1,2026-01-01T00:00:00Z,1\xff\nm1,2026-01-01T00:01:00Z,x\n",
    ),
    "csv NUL": ("odd.csv", b"meter,ts,power_w\nm1,2026-01-01T00:00:00Z,1\x00\nm1,2026-01-01T00:01:00Z,x\n"),
    "csv BOM, blank lines": ("odd.csv", b"\xef\xbb\xbfmeter,ts,power_w\n\n\n\nm1,2026-01-01T00:01:00Z,2\n\n"),
    "csv no final newline": ("odd.csv", b"meter,ts,power_w\nm1,2026-01-01T00:01:00Z,2\nm1,bad,3"),
    "ndjson lone CR": (
        "odd.ndjson",
        b'{"meter": "m1", "ts": 1767225600, "power_w": 1}\r{"meter": "m1", "ts": "x"}\n'
        b'{"meter": "m1", "ts": 1767225660, "power_w": 2}\n',
    ),
    "ndjson not UTF-8": (
        "odd.ndjson",
        b'{"meter": "m\xe9", "ts": 1767225600}\n{"meter": "m2", "ts": 1767225600, "power_w": 1}\n',
    ),
    "ndjson CRLF": (
        "odd.ndjson",
        b'{"meter": "m1", "ts": 1767225600, "power_w": 1}\r\n\r\n{"meter": "m1", "ts": "x"}\r\n',
    ),
}


@pytest.mark.parametrize("case", sorted(ODD_BYTES))
def test_odd_bytes_give_what_the_row_reader_gives(pair: Pair, tmp_path: Path, case: str) -> None:
    name, data = ODD_BYTES[case]
    path = tmp_path / name
    path.write_bytes(
        data + b"".join(b"m1,2026-01-01T01:%02d:00Z,%d\n" % (k, k) for k in range(60))
        if name.endswith(".csv") and data.endswith(b"\n")
        else data
    )
    by_columns, by_rows = _both(pair, path, block_bytes=48)
    assert _report(by_columns) == _report(by_rows)
    assert by_columns.stored + by_columns.rejected_count > 0
    assert _state(pair.columns) == _state(pair.rows)


def test_each_commit_reports_the_rows_settled_as_the_row_reader_does(pair: Pair, tmp_path: Path) -> None:
    lines = ["meter,ts,power_w"]
    for k in range(45):
        lines.append(f"m1,{_iso(k)},{'bad' if k % 9 == 4 else k}")
    path = tmp_path / "checkpoints.csv"
    path.write_text("\n".join(lines) + "\n")
    seen: dict[str, list[tuple[int, int, int]]] = {"columns": [], "rows": []}

    def keep(name: str) -> Callable[[IngestReport], None]:
        return lambda r: seen[name].append((r.received_committed, r.stored, r.duplicates))

    import_file(pair.columns, path, None, batch_rows=10, on_batch=keep("columns"), block_bytes=100)
    import_file_by_rows(pair.rows, path, None, batch_rows=10, on_batch=keep("rows"))
    # 40 good rows (rows 5, 14, 23, 32 and 41 are bad): batches end at rows 11, 22, 34 and 45.
    assert seen["columns"] == seen["rows"] == [(11, 10, 0), (22, 20, 0), (34, 30, 0), (45, 40, 0)]
