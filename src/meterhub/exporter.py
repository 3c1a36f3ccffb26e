"""Stream readings out in the canonical columns: CSV, NDJSON or one JSON array.

Output is produced row by row, so memory stays constant for any range, and the CSV reads back
through ``meterhub import`` unchanged. A text cell a spreadsheet would run as a formula is
written with a leading ``'`` (see :mod:`meterhub.csvsafe`). Each value is rounded to its
quantity's precision (:mod:`meterhub.precision`), so no binary noise reaches a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson

from meterhub.csvsafe import safe_text
from meterhub.errors import InputError
from meterhub.model import CANONICAL_COLUMNS, READING_FIELDS, REGISTER_FIELDS, Reading
from meterhub.precision import REGISTER_DECIMALS, decimals_of, round_to

__all__ = ["EXPORT_FORMATS", "export_lines", "reading_record", "rounded_values"]

EXPORT_FORMATS = ("csv", "ndjson", "json")


_DECIMALS: tuple[int, ...] = tuple(
    REGISTER_DECIMALS if name in REGISTER_FIELDS else decimals_of(name) or REGISTER_DECIMALS
    for name in READING_FIELDS
)
"""The decimals each value of a reading keeps, in :data:`READING_FIELDS` order: a register keeps
its own precision (as stored), a measured value its quantity's."""


def rounded_values(reading: Reading) -> list[float | None]:
    """Return a reading's values rounded to their quantities' precision (registers: as stored)."""
    return [None if v is None else round_to(v, d) for v, d in zip(reading.values(), _DECIMALS, strict=True)]


def _text(value: float | None) -> str:
    return "" if value is None else repr(value)


def reading_record(reading: Reading) -> dict[str, str | int | float | None]:
    """Return a reading as a record of canonical columns (ts in ISO 8601 UTC), values rounded."""
    record: dict[str, str | int | float | None] = {
        "meter": reading.meter,
        "ts": reading.ts.isoformat(),
        "phase": reading.phase,
    }
    record.update(zip(CANONICAL_COLUMNS[3:], rounded_values(reading), strict=True))
    return record


def _csv_line(reading: Reading) -> str:
    meter = safe_text(reading.meter)
    if any(c in meter for c in ',"\n\r'):
        meter = '"' + meter.replace('"', '""') + '"'
    values = ",".join(_text(v) for v in rounded_values(reading))
    return f"{meter},{reading.ts.isoformat()},{reading.phase},{values}\n"


def export_lines(readings: Iterable[Reading], fmt: str) -> Iterator[str]:
    """Yield the export text piece by piece."""
    if fmt == "csv":
        yield ",".join(CANONICAL_COLUMNS) + "\n"
        for reading in readings:
            yield _csv_line(reading)
    elif fmt == "ndjson":
        for reading in readings:
            yield orjson.dumps(reading_record(reading)).decode() + "\n"
    elif fmt == "json":
        yield "["
        first = True
        for reading in readings:
            yield ("\n" if first else ",\n") + orjson.dumps(reading_record(reading)).decode()
            first = False
        yield "\n]\n"
    else:
        raise InputError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
