"""Read CSV and NDJSON files in the canonical columns into readings.

A row that cannot be read becomes a rejection with its line number and reason; it never stops
the rest of the file. A row's line is the line it starts on (the header is line 1), so a quoted
field spanning lines does not shift the rows after it. Only a header that cannot be trusted
(missing ``ts``, unknown or repeated columns) refuses the whole file, before anything is written.
Meter ids follow the one rule of :mod:`meterhub.ids`, so an import never creates a meter the API
cannot reach.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from meterhub.errors import ConflictError, ImportFileError, InputError
from meterhub.hubzone import default_zone
from meterhub.ids import check_id, id_problem
from meterhub.ingest import Ingestor, IngestReport
from meterhub.model import (
    CANONICAL_COLUMNS,
    PHASE_TOTAL,
    READING_FIELDS,
    VENDOR_FILE,
    Meter,
    Reading,
)
from meterhub.store.base import Store
from meterhub.timeutil import get_zone

if TYPE_CHECKING:
    import _csv

    from meterhub.importcolumns import Block
    from meterhub.importmapped import MapItem

__all__ = ["ImportRow", "detect_format", "import_file", "import_file_by_rows", "read_rows"]

_KNOWN = frozenset(CANONICAL_COLUMNS)
_UNDECODABLE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One row of a file: a reading, or the reason it could not be read."""

    where: str
    reading: Reading | None
    reason: str | None = None


def detect_format(path: Path, head: bytes) -> str:
    """Return ``csv`` or ``ndjson`` from the file's name, else from its first bytes."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in {".ndjson", ".jsonl", ".json"}:
        return "ndjson"
    return "ndjson" if head.lstrip().startswith(b"{") else "csv"


def local_instant(wall: datetime, tz: str) -> datetime:
    """Return the UTC instant of a wall-clock time in zone ``tz``; raise ValueError where there is none.

    A wall time the clocks skip (spring forward) names no instant, and one they pass twice (fall
    back) names two: both are refused with the reason, rather than guessed, so an import never
    shifts a reading by an hour. Give such a time its UTC offset to import it.
    """
    zone = get_zone(tz)
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first.astimezone(UTC)
    shown = wall.isoformat(sep=" ")
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
        raise ValueError(f"local time {shown} does not exist in {tz} (the clocks skip it): give its offset")
    raise ValueError(f"local time {shown} happens twice in {tz} (the clocks go back): give its offset")


def parse_ts(value: Any, tz: str | None = None) -> datetime:
    """Parse ISO 8601 with an offset, or epoch seconds, into aware UTC.

    With ``tz``, a time without an offset is a wall-clock time there (see :func:`local_instant`);
    without, it is refused.
    """
    if isinstance(value, bool):
        raise ValueError("a timestamp cannot be true or false")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    text = str(value).strip()
    if not text:
        raise ValueError("empty timestamp")
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        if tz is None:
            raise ValueError(f"timestamp {text!r} has no UTC offset (give --tz ZONE to read local times)")
        return local_instant(parsed, tz)
    return parsed.astimezone(UTC)


def _number(name: str, value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} is not a number: {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} is not a number: {value!r}") from None


def _phase(value: Any) -> int:
    if value is None or value == "":
        return PHASE_TOTAL
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"phase is not a whole number: {value!r}")
    return int(number)


def to_reading(record: dict[str, Any], default_meter: str | None, tz: str | None = None) -> Reading:
    """Build a reading from one record of canonical columns; raise ValueError with the reason."""
    meter = record.get("meter")
    meter_id = str(meter).strip() if meter not in (None, "") else default_meter
    if not meter_id:
        raise ValueError("no meter: add a meter column or pass --meter")
    problem = id_problem(meter_id)
    if problem is not None:
        raise ValueError(f"bad meter id: {problem}")
    if record.get("ts") in (None, ""):
        raise ValueError("no ts")
    try:
        ts = parse_ts(record["ts"], tz)
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueError(f"bad ts {record['ts']!r}: {exc}") from None
    values = [_number(name, record.get(name)) for name in READING_FIELDS]
    return Reading(meter_id, ts, _phase(record.get("phase")), *values)


def read_rows(
    stream: BinaryIO, fmt: str, default_meter: str | None, tz: str | None = None
) -> Iterator[ImportRow]:
    """Yield every row of a CSV or NDJSON stream as a reading or a rejection."""
    # Bytes that are not UTF-8 decode to lone surrogates, so only the rows holding them are rejected.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        if fmt == "csv":
            yield from _csv_rows(text, default_meter, tz)
        else:
            yield from _ndjson_rows(text, default_meter, tz)
    finally:
        text.detach()


def _not_utf8(text: str) -> str | None:
    """Return why ``text`` holds a byte that was not UTF-8, or None when it holds none."""
    if text.isascii():
        return None
    found = _UNDECODABLE.search(text)
    return None if found is None else f"not UTF-8 text (byte 0x{ord(found.group()) - 0xDC00:02x})"


def csv_header(reader: Iterator[list[str]]) -> list[str]:
    """Return the header's columns; raise ImportFileError when they cannot be trusted."""
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ImportFileError(f"line 1: the header cannot be read: {exc}") from exc
    if header is None:
        raise ImportFileError("the file is empty")
    problem = _not_utf8("".join(header))
    if problem is not None:
        raise ImportFileError(f"line 1: the header is {problem}; save the file as UTF-8")
    columns = [c.strip() for c in header]
    unknown = [c for c in columns if c not in _KNOWN]
    if "ts" not in columns:
        raise ImportFileError(
            f"the header has no ts column (found: {', '.join(columns) or 'nothing'}); "
            f"expected some of: {','.join(CANONICAL_COLUMNS)}"
        )
    if unknown:
        raise ImportFileError(
            f"unknown column(s) {', '.join(unknown)}; expected some of: {','.join(CANONICAL_COLUMNS)}"
        )
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        # Which of two values would be meant is unknowable: refuse rather than guess.
        raise ImportFileError(f"the header names column(s) {', '.join(repeated)} more than once")
    return columns


def _csv_rows(text: io.TextIOWrapper, default_meter: str | None, tz: str | None) -> Iterator[ImportRow]:
    # csv's field limit (128 KiB) stays: a longer field rejects its row, and the rest is read.
    reader = csv.reader(text)
    columns = csv_header(reader)
    yield from csv_records(reader, columns, default_meter, 0, tz)


def csv_records(
    reader: _csv.Reader,
    columns: list[str],
    default_meter: str | None,
    line_offset: int,
    tz: str | None = None,
) -> Iterator[ImportRow]:
    """Yield the rows a ``csv.reader`` reads after the header; its line 1 is file line ``line_offset + 1``."""
    last_line = reader.line_num
    while True:
        where = f"line {line_offset + last_line + 1}"
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # the reader goes on with the next line
            last_line = reader.line_num
            yield ImportRow(where, None, f"unreadable CSV: {exc}")
            continue
        last_line = reader.line_num
        row = csv_record(where, values, columns, default_meter, tz)
        if row is not None:
            yield row


def csv_record(
    where: str, values: list[str], columns: list[str], default_meter: str | None, tz: str | None = None
) -> ImportRow | None:
    """Return one CSV record as a reading or a rejection; None for a blank record (not a row)."""
    if not values or all(not v.strip() for v in values):
        return None
    problem = _not_utf8("".join(values))
    if problem is not None:
        return ImportRow(where, None, problem)
    if len(values) != len(columns):
        return ImportRow(where, None, f"{len(values)} fields where the header has {len(columns)}")
    try:
        return ImportRow(where, to_reading(dict(zip(columns, values, strict=True)), default_meter, tz))
    except ValueError as exc:
        return ImportRow(where, None, str(exc))


def _ndjson_rows(text: io.TextIOWrapper, default_meter: str | None, tz: str | None) -> Iterator[ImportRow]:
    for number, line in enumerate(text, start=1):
        row = ndjson_record(f"line {number}", line, default_meter, tz)
        if row is not None:
            yield row


def ndjson_record(
    where: str, line: str, default_meter: str | None, tz: str | None = None
) -> ImportRow | None:
    """Return one NDJSON line as a reading or a rejection; None for a blank line (not a row)."""
    if not line.strip():
        return None
    problem = _not_utf8(line)
    if problem is not None:
        return ImportRow(where, None, problem)
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return ImportRow(where, None, f"not JSON: {exc}")
    if not isinstance(record, dict):
        return ImportRow(where, None, "not a JSON object")
    unknown = sorted(set(record) - _KNOWN)
    if unknown:
        return ImportRow(where, None, f"unknown field(s) {', '.join(unknown)}")
    try:
        return ImportRow(where, to_reading(record, default_meter, tz))
    except ValueError as exc:
        return ImportRow(where, None, str(exc))


BIG_IMPORT_ROWS = 10_000
"""An import storing at least this many readings refreshes the planner's statistics."""


def import_file(
    store: Store,
    path: Path,
    default_meter: str | None,
    *,
    batch_rows: int = 10_000,
    on_batch: Callable[[IngestReport], None] | None = None,
    stream: BinaryIO | None = None,
    block_bytes: int | None = None,
    maps: Sequence[str] = (),
    tz: str | None = None,
) -> IngestReport:
    """Import a CSV or NDJSON file; unknown meters are created with vendor ``file``.

    A file in the canonical columns is read by columns in bounded blocks
    (:mod:`meterhub.importcolumns`); what is stored and rejected, with line numbers and reasons,
    is what :func:`import_file_by_rows` gives. A Home Assistant history CSV, and any CSV with
    ``maps`` (``QUANTITY=COLUMN``), are read row by row (:mod:`meterhub.importmapped`). With
    ``tz``, a timestamp without an offset is a wall-clock time there (see :func:`local_instant`).
    A meter created here takes the hub's default zone; ``report.added_meters`` names each with
    the zone and the rule that chose it.
    """
    # pyarrow loads only for imports, so other commands start without it.
    from meterhub.importbatches import LatestAllowed, ingest_blocks
    from meterhub.importcolumns import BLOCK_BYTES, csv_blocks, ndjson_blocks, row_blocks
    from meterhub.importmapped import parse_maps

    if stream is None and not path.is_file():
        raise ImportFileError(f"file {path} not found")
    if default_meter is not None:
        check_id(default_meter, "--meter")
    if tz is not None:
        try:
            get_zone(tz)
        except InputError as exc:
            raise ImportFileError(f"--tz: {exc}") from None
    map_items = parse_maps(maps)
    report = IngestReport()
    known = {meter.id for meter in store.list_meters()}

    def ensure(meter_id: str) -> None:
        if meter_id not in known:
            added = _ensure_file_meter(store, meter_id)
            if added is not None:
                report.added_meters.append(added)
            known.add(meter_id)

    def run(source: BinaryIO) -> IngestReport:
        head = source.peek(_HEAD_BYTES)[:_HEAD_BYTES] if hasattr(source, "peek") else b""
        fmt = detect_format(path, head)
        latest = LatestAllowed()
        special = _special_rows(source, path, fmt, head, map_items, default_meter, tz)
        if special is not None:
            read: Iterator[Block] = row_blocks(special)
        else:
            blocks = csv_blocks if fmt == "csv" else ndjson_blocks
            read = blocks(source, default_meter, latest.us, block_bytes or BLOCK_BYTES, tz)
        done = ingest_blocks(
            store,
            read,
            report,
            latest=latest,
            batch_rows=batch_rows,
            ensure_meter=ensure,
            on_batch=on_batch,
        )
        if done.stored >= BIG_IMPORT_ROWS:
            store.refresh_statistics()  # the planner's view of the tables changed a lot
        return done

    if stream is not None:
        return run(stream)
    try:
        with path.open("rb") as source:
            return run(source)
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror or exc}") from exc


_HEAD_BYTES = 4096
"""Bytes looked at to tell a file's kind from its header."""


def _header_of(head: bytes) -> list[str]:
    """Return the columns of the first line of ``head`` (empty when it holds no whole line)."""
    line = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("utf-8", "replace")
    from meterhub.importmapped import sniff_delimiter

    return next(csv.reader([line.rstrip("\r")], delimiter=sniff_delimiter(line)), [])


def _special_rows(
    source: BinaryIO,
    path: Path,
    fmt: str,
    head: bytes,
    maps: Sequence[MapItem],
    default_meter: str | None,
    tz: str | None,
) -> Iterator[ImportRow] | None:
    """Return the rows of a Home Assistant or column-mapped CSV, or None for a canonical file."""
    from meterhub.importmapped import (
        home_assistant_entities,
        home_assistant_rows,
        home_assistant_targets,
        is_home_assistant,
        mapped_rows,
    )

    if fmt != "csv":
        if maps:
            raise ImportFileError(f"--map reads CSV files; {path.name} is NDJSON (its fields are canonical)")
        return None
    if is_home_assistant(_header_of(head)):
        entities: list[str] = []
        if not maps:  # the automatic map needs every entity first, so nothing is written on a clash
            if not source.seekable():
                raise ImportFileError("a Home Assistant file read from a pipe needs --map QUANTITY=ENTITY")
            entities = home_assistant_entities(source)
            source.seek(0)
        targets = home_assistant_targets(entities, maps, default_meter)
        return home_assistant_rows(source, targets, tz)
    if maps:
        return mapped_rows(source, maps, default_meter, tz)
    return None


def import_file_by_rows(
    store: Store,
    path: Path,
    default_meter: str | None,
    *,
    batch_rows: int = 10_000,
    on_batch: Callable[[IngestReport], None] | None = None,
    stream: BinaryIO | None = None,
    tz: str | None = None,
) -> IngestReport:
    """Import a CSV or NDJSON file row by row: one reading object per row, through the Ingestor.

    :func:`import_file` stores the same by columns; this path stays as its reference (``tz`` as
    there). A meter
    created here takes the hub's default zone; ``report.added_meters`` names each with the zone
    and the rule that chose it.
    """
    if stream is None and not path.is_file():
        raise ImportFileError(f"file {path} not found")
    if default_meter is not None:
        check_id(default_meter, "--meter")
    report = IngestReport()
    known = {meter.id for meter in store.list_meters()}

    def readings(source: BinaryIO) -> Iterator[tuple[str, Reading]]:
        head = source.peek(64)[:64] if hasattr(source, "peek") else b""
        for row in read_rows(source, detect_format(path, head), default_meter, tz):
            if row.reading is None:
                report.received += 1
                report.reject(row.where, row.reason or "unreadable row")
                continue
            if row.reading.meter not in known:
                added = _ensure_file_meter(store, row.reading.meter)
                if added is not None:
                    report.added_meters.append(added)
                known.add(row.reading.meter)
            yield row.where, row.reading

    ingestor = Ingestor(store, batch_size=batch_rows)
    if stream is not None:
        return ingestor.ingest(readings(stream), on_batch=on_batch, report=report)
    try:
        with path.open("rb") as source:
            return ingestor.ingest(readings(source), on_batch=on_batch, report=report)
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _ensure_file_meter(store: Store, meter_id: str) -> str | None:
    """Add a file meter in the hub's default zone; return a line saying so (None if it exists)."""
    zone = default_zone(store)
    try:
        store.add_meter(Meter(meter_id, VENDOR_FILE, tz=zone.tz))
    except ConflictError:  # created meanwhile by another process: fine
        return None
    return f"added meter {meter_id} (file, {zone.tz}: {zone.source})"
