"""Read CSV and NDJSON import files by columns, in bounded blocks, with pyarrow.

Each block of whole lines is parsed as columns and checked with vectors: ids once per distinct
meter, timestamps and numbers in bulk, limits as array comparisons. A row the vectors cannot
vouch for (a value out of range, an odd timestamp, a field count that differs from the header...)
goes through the row reader of :mod:`meterhub.importer`, one line, so its reading or rejection,
line number and reason are exactly those of the row path; the other rows of its block stay on
the column path. A block holding bytes that change how lines split into records (a quote, a lone
carriage return) hands the rest of the file to the row reader, which reads it as it always has.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]
import pyarrow.json as pa_json  # type: ignore[import-untyped]

from meterhub.ids import id_problem
from meterhub.importer import (
    ImportRow,
    csv_header,
    csv_record,
    csv_records,
    ndjson_record,
    read_rows,
)
from meterhub.ingest import EARLIEST_TS, MAX_REGISTER
from meterhub.model import PHASE_TOTAL, READING_FIELDS, REGISTER_FIELDS

__all__ = ["BLOCK_BYTES", "Block", "csv_blocks", "ndjson_blocks", "row_blocks"]

BLOCK_BYTES = 4 << 20
"""Bytes of a file parsed at once; memory stays a small multiple of this on any file size."""
ROW_BLOCK_ROWS = 20_000
"""Rows per block when the row reader reads."""
FIELD_LIMIT = csv.field_size_limit()
_LIMITS: dict[str, tuple[float, float]] = {
    "voltage_v": (0.0, 1000.0),
    "current_a": (-100_000.0, 100_000.0),
    "power_w": (-10_000_000.0, 10_000_000.0),
    "reactive_power_var": (-10_000_000.0, 10_000_000.0),
    "power_factor": (-1.0, 1.0),
    "frequency_hz": (0.0, 1000.0),
    **dict.fromkeys(REGISTER_FIELDS, (0.0, MAX_REGISTER)),
}
"""The ranges of :func:`meterhub.ingest.validate_reading`; a value outside takes the row path."""
_ISO = r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d{1,6})?)?(Z|[+-]\d\d:\d\d)$"
"""ISO 8601 forms pyarrow and ``datetime.fromisoformat`` read alike; others take the row path."""
_LOCAL_ISO = r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d{1,6})?)?$"
"""A wall-clock time without an offset, read in the import's zone when it has one."""
_EPOCH_DIGITS = r"^\d{1,11}$"
_EARLIEST_US = int(EARLIEST_TS.timestamp()) * 1_000_000
_SMALL = 256
_BOM = b"\xef\xbb\xbf"

Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(slots=True)
class Block:
    """Consecutive rows of a file, in line order.

    Row ``k`` is either vouched for by the vectors (``ok[k]``), with its meter, instant, phase
    and values in the arrays, or read by the row reader: ``rows[k]`` holds its reading or
    rejection. Blank records are left out, as the row reader leaves them out.
    """

    meters: list[str]
    """Meter ids that ``meter_index`` points into (block-local)."""
    meter_index: Ints
    ts_us: Ints
    phase: Ints
    values: Floats
    ok: Bools
    lines: Ints
    """The line each row starts on."""
    rows: dict[int, ImportRow] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Return the number of rows."""
        return len(self.ok)


def _row_block(rows: list[ImportRow]) -> Block:
    count = len(rows)
    return Block(
        [],
        np.zeros(count, np.int64),
        np.zeros(count, np.int64),
        np.zeros(count, np.int64),
        np.full((count, len(READING_FIELDS)), np.nan),
        np.zeros(count, bool),
        np.array([_line_of(row.where) for row in rows], dtype=np.int64),
        dict(enumerate(rows)),
    )


def _line_of(where: str) -> int:
    number = where.removeprefix("line ")
    return int(number) if number.isdigit() else 0


def row_blocks(rows: Iterator[ImportRow]) -> Iterator[Block]:
    """Group rows of the row reader into blocks."""
    batch: list[ImportRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= ROW_BLOCK_ROWS:
            yield _row_block(batch)
            batch = []
    if batch:
        yield _row_block(batch)


class _Rejoined(io.RawIOBase):
    """A stream of bytes already read followed by the rest of another stream."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head.nbytes:
            size = min(len(buffer), self._head.nbytes)
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _LineChunks:
    """Chunks of about ``block_bytes`` holding whole lines, each ending with a newline."""

    def __init__(self, stream: BinaryIO, block_bytes: int) -> None:
        self.stream = stream
        self.block_bytes = block_bytes
        self.pending = b""
        """Bytes read after the last chunk's end: the start of a line not yet complete."""

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        while True:
            data = self.stream.read(self.block_bytes)
            if not data:
                last, self.pending = self.pending, b""
                if not last:
                    raise StopIteration
                return last if last.endswith(b"\n") else last + b"\n"
            self.pending += data
            cut = self.pending.rfind(b"\n")
            if cut >= 0:
                chunk, self.pending = self.pending[: cut + 1], self.pending[cut + 1 :]
                return chunk

    def rest_after(self, chunk: bytes) -> io.BufferedReader:
        """Return a stream of ``chunk`` followed by everything not yet handed out."""
        head, self.pending = chunk + self.pending, b""
        return io.BufferedReader(_Rejoined(head, self.stream))


@dataclass(frozen=True, slots=True)
class _Lines:
    """Where each line of a chunk starts and ends (its CR LF or LF left out)."""

    starts: Ints
    ends: Ints
    lone_cr: bool

    @classmethod
    def of(cls, chunk: bytes) -> _Lines:
        data = np.frombuffer(chunk, np.uint8)
        breaks = np.flatnonzero(data == 10)
        starts = np.concatenate(([0], breaks[:-1] + 1)).astype(np.int64)
        ends = breaks.astype(np.int64)
        crs = (ends > starts) & (data[np.maximum(ends - 1, 0)] == 13)
        ends[crs] -= 1
        return cls(starts, ends, int(np.count_nonzero(data == 13)) != int(crs.sum()))


def _cast(array: pa.Array, kind: pa.DataType) -> tuple[pa.Array, Bools]:
    """Cast strings to ``kind``; return the result (null where a value failed) and where it failed."""
    try:
        return pc.cast(array, kind), np.zeros(len(array), bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if len(array) <= _SMALL:
        values: list[object] = []
        failed = np.zeros(len(array), bool)
        for k, item in enumerate(array):
            try:
                values.append(pc.cast(pa.array([item.as_py()], array.type), kind)[0].as_py())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                values.append(None)
                failed[k] = True
        return pa.array(values, kind), failed
    half = len(array) // 2
    left, left_failed = _cast(array.slice(0, half), kind)
    right, right_failed = _cast(array.slice(half), kind)
    return pa.concat_arrays([left, right]), np.concatenate((left_failed, right_failed))


def _nulls(array: pa.Array) -> Bools:
    return np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _floats(array: pa.Array) -> Floats:
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)


def _whole(array: pa.Array) -> Ints:
    return np.asarray(pc.fill_null(array, 0).to_numpy(zero_copy_only=False), dtype=np.int64)


class _Checker:
    """Turns a table of one block's columns into a :class:`Block`, row by row where it must."""

    def __init__(
        self, default_meter: str | None, latest_allowed_us: Callable[[], int], tz: str | None = None
    ) -> None:
        self.default_meter = default_meter
        self.tz = tz
        """The zone of timestamps without an offset (None: such a timestamp is refused)."""
        self.latest_allowed_us = latest_allowed_us
        self.json_schema: pa.Schema | None = None
        """The NDJSON schema (timestamps as numbers or as text) that read the last block."""

    def check(self, table: pa.Table, lines: Ints, slow: Callable[[int], ImportRow | None]) -> Block:
        count = table.num_rows
        names = set(table.column_names)
        bad = np.zeros(count, bool)
        meters, meter_index = self._meters(table, names, bad)
        ts_us = self._instants(table.column("ts").combine_chunks(), bad)
        phase = np.full(count, PHASE_TOTAL, np.int64)
        if "phase" in names:
            raw = table.column("phase").combine_chunks()
            numbers, failed = _cast(raw, pa.float64()) if pa.types.is_string(raw.type) else (raw, None)
            # A missing phase is the total; a NaN read from the file is no phase at all.
            floats = np.where(_nulls(numbers), float(PHASE_TOTAL), _floats(numbers))
            fine = np.isin(floats, (0.0, 1.0, 2.0, 3.0))
            bad |= ~fine if failed is None else ~fine | failed
            phase = np.where(fine, floats, PHASE_TOTAL).astype(np.int64)
        values = np.full((count, len(READING_FIELDS)), np.nan)
        for position, name in enumerate(READING_FIELDS):
            if name not in names:
                continue
            raw = table.column(name).combine_chunks()
            numbers, failed = _cast(raw, pa.float64()) if pa.types.is_string(raw.type) else (raw, None)
            column = _floats(numbers)
            present = ~_nulls(numbers)
            low, high = _LIMITS[name]
            with np.errstate(invalid="ignore"):
                fine = ~present | ((column >= low) & (column <= high))  # NaN and infinity fail
            bad |= ~fine if failed is None else ~fine | failed
            values[:, position] = np.where(present & fine, column, np.nan)
        bad |= np.isnan(values).all(axis=1)
        bad |= (ts_us < _EARLIEST_US) | (ts_us > self.latest_allowed_us())
        rows: dict[int, ImportRow] = {}
        kept = np.ones(count, bool)
        for position in np.flatnonzero(bad).tolist():
            row = slow(position)
            if row is None:
                kept[position] = False
            else:
                rows[position] = row
        block = Block(meters, meter_index, ts_us, phase, values, ~bad, lines, rows)
        if kept.all():
            return block
        rows_kept = np.flatnonzero(kept)
        renumbered = {int(new): rows[int(old)] for new, old in enumerate(rows_kept) if int(old) in rows}
        return Block(
            meters,
            meter_index[rows_kept],
            ts_us[rows_kept],
            phase[rows_kept],
            values[rows_kept],
            block.ok[rows_kept],
            lines[rows_kept],
            renumbered,
        )

    def _meters(self, table: pa.Table, names: set[str], bad: Bools) -> tuple[list[str], Ints]:
        count = table.num_rows
        default = self.default_meter
        meters = [] if default is None else [default]
        if "meter" not in names:
            if default is None:
                bad[:] = True
            return meters, np.zeros(count, np.int64)
        encoded = pc.dictionary_encode(table.column("meter").combine_chunks())
        dictionary = encoded.dictionary.to_pylist()
        code = np.full(len(dictionary) + 1, -1, np.int64)  # the last: a missing meter
        if default is not None:
            code[-1] = 0
        for k, meter_id in enumerate(dictionary):
            if meter_id == meter_id.strip() and id_problem(meter_id) is None:
                code[k] = len(meters)
                meters.append(meter_id)
        index = np.asarray(
            pc.fill_null(encoded.indices, len(dictionary)).to_numpy(zero_copy_only=False), np.int64
        )
        meter_index = code[index]
        bad |= meter_index < 0
        return meters, np.maximum(meter_index, 0)

    def _instants(self, ts: pa.Array, bad: Bools) -> Ints:
        if pa.types.is_floating(ts.type) or pa.types.is_integer(ts.type):
            seconds = _floats(ts)
            with np.errstate(invalid="ignore"):
                whole = np.isfinite(seconds) & (seconds == np.floor(seconds)) & (np.abs(seconds) < 1e11)
            bad |= ~whole
            return np.where(whole, seconds, 0).astype(np.int64) * 1_000_000
        if not pa.types.is_string(ts.type):
            bad[:] = True
            return np.zeros(len(ts), np.int64)
        iso = pc.fill_null(pc.match_substring_regex(ts, _ISO), False)
        iso_mask = np.asarray(iso.to_numpy(zero_copy_only=False), bool)
        if iso_mask.all():  # the usual file: one pass of the pattern, one cast
            parsed, failed = _cast(ts, pa.timestamp("us", "UTC"))
            bad |= failed
            return _whole(parsed.cast(pa.int64()))
        epoch = pc.fill_null(pc.match_substring_regex(ts, _EPOCH_DIGITS), False)
        parsed, failed = _cast(pc.if_else(iso, ts, None), pa.timestamp("us", "UTC"))
        from_iso = _whole(parsed.cast(pa.int64()))
        seconds, _ = _cast(pc.if_else(epoch, ts, None), pa.int64())
        epoch_mask = np.asarray(epoch.to_numpy(zero_copy_only=False), bool)
        found = np.where(iso_mask, from_iso, _whole(seconds) * 1_000_000)
        known = iso_mask | epoch_mask
        if self.tz is not None:
            local_mask, from_local = self._local_instants(ts)
            found = np.where(local_mask, from_local, found)
            known |= local_mask
        bad |= ~known | failed
        return found

    def _local_instants(self, ts: pa.Array) -> tuple[Bools, Ints]:
        """Read wall-clock times without an offset in ``self.tz``; a skipped or doubled one is left out.

        Such a time reads differently taking the earlier or the later offset, so it is not vouched
        for here: the row reader rejects it with its reason.
        """
        local = pc.fill_null(pc.match_substring_regex(ts, _LOCAL_ISO), False)
        mask = np.asarray(local.to_numpy(zero_copy_only=False), bool)
        if not mask.any():
            return mask, np.zeros(len(ts), np.int64)
        walls, failed = _cast(pc.if_else(local, ts, None), pa.timestamp("us"))
        try:
            early = pc.assume_timezone(walls, self.tz, ambiguous="earliest", nonexistent="earliest")
            late = pc.assume_timezone(walls, self.tz, ambiguous="latest", nonexistent="latest")
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            # A zone pyarrow's database lacks: no row is vouched for here, so the row reader
            # converts every one of them with Python's zoneinfo instead (nothing is skipped).
            return np.zeros(len(ts), bool), np.zeros(len(ts), np.int64)
        early_us, late_us = _whole(early.cast(pa.int64())), _whole(late.cast(pa.int64()))
        return mask & ~failed & (early_us == late_us), early_us


_CSV_PARSE = pa_csv.ParseOptions(
    quote_char=False, double_quote=False, escape_char=False, newlines_in_values=False, ignore_empty_lines=True
)


def _convert(types: dict[str, pa.DataType]) -> pa_csv.ConvertOptions:
    return pa_csv.ConvertOptions(
        column_types=types, null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False
    )


def csv_blocks(
    stream: BinaryIO,
    default_meter: str | None,
    latest_allowed_us: Callable[[], int],
    block_bytes: int = BLOCK_BYTES,
    tz: str | None = None,
) -> Iterator[Block]:
    """Yield the rows of a CSV stream in blocks; raise ImportFileError for a header not to trust.

    ``tz`` is the zone of timestamps without an offset (None: they are refused).
    """
    chunks = _LineChunks(stream, block_bytes)
    first = next(chunks, b"")
    if first.startswith(_BOM):
        first = first[len(_BOM) :]
    header_end = first.find(b"\n")
    header = first[: header_end + 1]
    if not first or not header.isascii() or b'"' in header or b"\r" in header.rstrip(b"\r\n"):
        # A header the vectors do not read alike: the row reader reads the whole file.
        yield from row_blocks(read_rows(chunks.rest_after(_BOM + first), "csv", default_meter, tz))
        return
    columns = csv_header(csv.reader(io.StringIO(header.decode("ascii"), newline="")))
    checker = _Checker(default_meter, latest_allowed_us, tz)
    as_text = _convert(dict.fromkeys(columns, pa.string()))
    typed = _convert({c: pa.string() if c in ("meter", "ts") else pa.float64() for c in columns})
    read_options = pa_csv.ReadOptions(column_names=columns, block_size=BLOCK_BYTES)
    line = 2
    chunk = first[header_end + 1 :]
    while True:
        if chunk:
            lines = _Lines.of(chunk)
            if b'"' in chunk or lines.lone_cr:
                # Quotes may carry a record over lines: the row reader reads the rest as before.
                text = io.TextIOWrapper(
                    chunks.rest_after(chunk), encoding="utf-8", errors="surrogateescape", newline=""
                )
                yield from row_blocks(csv_records(csv.reader(text), columns, default_meter, line - 1, tz))
                return
            yield _csv_block(
                chunk, lines, line, columns, default_meter, checker, read_options, typed, as_text
            )
            line += len(lines.starts)
        chunk = next(chunks, b"")
        if not chunk:
            return


def _csv_block(
    chunk: bytes,
    lines: _Lines,
    first_line: int,
    columns: list[str],
    default_meter: str | None,
    checker: _Checker,
    read_options: pa_csv.ReadOptions,
    typed: pa_csv.ConvertOptions,
    text: pa_csv.ConvertOptions,
) -> Block:
    starts, ends = lines.starts, lines.ends
    numbers = np.arange(first_line, first_line + len(starts), dtype=np.int64)

    def by_rows(picked: Ints) -> Block:
        rows = []
        for k in picked.tolist():
            text = chunk[starts[k] : ends[k]].decode("utf-8", "surrogateescape")
            values = next(csv.reader(io.StringIO(text, newline="")), [])
            row = csv_record(f"line {numbers[k]}", values, columns, default_meter, checker.tz)
            if row is not None:
                rows.append(row)
        return _row_block(rows)

    nonempty = ends > starts
    if not chunk.isascii() or b"\x00" in chunk or int((ends - starts).max()) > FIELD_LIMIT:
        return by_rows(np.flatnonzero(nonempty))
    on_lines = np.flatnonzero(nonempty)
    # Numbers parsed while reading; a value pyarrow cannot parse re-reads the chunk as text.
    table = _read_csv(chunk, read_options, typed) or _read_csv(chunk, read_options, text)
    if table is not None and table.num_rows == len(on_lines):
        return checker.check(table, numbers[on_lines], lambda k: by_rows(on_lines[k : k + 1]).rows.get(0))
    # Some line has more or fewer fields than the header: it takes the row reader.
    commas = np.flatnonzero(np.frombuffer(chunk, np.uint8) == 44)
    fields = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
    fits = nonempty & (fields == len(columns))
    if not fits.any():
        return by_rows(on_lines)
    data = b"\n".join(chunk[s:e] for s, e in zip(starts[fits].tolist(), ends[fits].tolist(), strict=True))
    table = _read_csv(data, read_options, text)
    on_lines = np.flatnonzero(fits)
    if table is None or table.num_rows != len(on_lines):
        return by_rows(np.flatnonzero(nonempty))
    block = checker.check(table, numbers[on_lines], lambda k: by_rows(on_lines[k : k + 1]).rows.get(0))
    return _merge_in_order(block, by_rows(np.flatnonzero(nonempty & ~fits)))


def _read_csv(
    data: bytes, read_options: pa_csv.ReadOptions, options: pa_csv.ConvertOptions
) -> pa.Table | None:
    try:
        return pa_csv.read_csv(
            io.BytesIO(data), read_options=read_options, parse_options=_CSV_PARSE, convert_options=options
        )
    except pa.ArrowInvalid:
        return None


def _merge_in_order(first: Block, second: Block) -> Block:
    """Interleave two blocks of one chunk by the lines their rows come from."""
    order = np.argsort(np.concatenate((first.lines, second.lines)), kind="stable")
    count = len(order)
    offset = len(first.meters)
    block = Block(
        [*first.meters, *second.meters],
        np.concatenate(
            (first.meter_index, second.meter_index + offset if second.meters else 0 * second.meter_index)
        )[order],
        np.concatenate((first.ts_us, second.ts_us))[order],
        np.concatenate((first.phase, second.phase))[order],
        np.concatenate((first.values, second.values))[order],
        np.concatenate((first.ok, second.ok))[order],
        np.concatenate((first.lines, second.lines))[order],
    )
    position_of = np.empty(count, np.int64)
    position_of[order] = np.arange(count)
    for k, row in first.rows.items():
        block.rows[int(position_of[k])] = row
    for k, row in second.rows.items():
        block.rows[int(position_of[first.size + k])] = row
    return block


def _json_schema(ts: pa.DataType) -> pa.Schema:
    numbers = [(name, pa.float64()) for name in ("phase", *READING_FIELDS)]
    return pa.schema([("meter", pa.string()), ("ts", ts), *numbers])


_JSON_SCHEMAS = (_json_schema(pa.float64()), _json_schema(pa.string()))


def ndjson_blocks(
    stream: BinaryIO,
    default_meter: str | None,
    latest_allowed_us: Callable[[], int],
    block_bytes: int = BLOCK_BYTES,
    tz: str | None = None,
) -> Iterator[Block]:
    """Yield the rows of an NDJSON stream in blocks; ``tz`` as for :func:`csv_blocks`."""
    checker = _Checker(default_meter, latest_allowed_us, tz)
    line = 1
    chunks = _LineChunks(stream, block_bytes)
    for number, chunk in enumerate(chunks):
        if number == 0 and chunk.startswith(_BOM):
            chunk = chunk[len(_BOM) :]
        lines = _Lines.of(chunk)
        if lines.lone_cr:
            # A lone carriage return ends a line for the row reader: it reads the rest as before.
            text = io.TextIOWrapper(
                chunks.rest_after(chunk), encoding="utf-8", errors="surrogateescape", newline=""
            )
            rows = (ndjson_record(f"line {n}", t, default_meter, tz) for n, t in enumerate(text, start=line))
            yield from row_blocks(row for row in rows if row is not None)
            return
        yield _ndjson_block(chunk, lines, line, default_meter, checker)
        line += len(lines.starts)


def _ndjson_block(
    chunk: bytes, lines: _Lines, first_line: int, default_meter: str | None, checker: _Checker
) -> Block:
    starts, ends = lines.starts, lines.ends
    numbers = np.arange(first_line, first_line + len(starts), dtype=np.int64)

    def by_rows(picked: Ints) -> Block:
        rows = []
        for k in picked.tolist():
            text = chunk[starts[k] : ends[k]].decode("utf-8", "surrogateescape")
            row = ndjson_record(f"line {numbers[k]}", text, default_meter, checker.tz)
            if row is not None:
                rows.append(row)
        return _row_block(rows)

    nonblank = np.flatnonzero(ends > starts)
    if not chunk.isascii() or not len(nonblank):
        return by_rows(nonblank)
    table = None
    for schema in sorted(_JSON_SCHEMAS, key=lambda option: option is not checker.json_schema):
        try:
            table = pa_json.read_json(
                io.BytesIO(chunk),
                read_options=pa_json.ReadOptions(block_size=max(len(chunk), 1 << 20)),
                parse_options=pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error"),
            )
            checker.json_schema = schema  # the next block tries it first
            break
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    if table is None or table.num_rows != len(nonblank):
        return by_rows(nonblank)
    return checker.check(table, numbers[nonblank], lambda k: by_rows(nonblank[k : k + 1]).rows.get(0))
