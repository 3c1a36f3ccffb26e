"""Readings as a vendor sends them, handed to ingest as columns without a Reading per row.

A poll's answer maps to a :class:`PlannedRows`: the answer's numbers in the vendor's order and the
:class:`RowsPlan` of that shape, which says what factor each number takes, which numbers add up
to one field (a smart-MAC line's import minus reverse power), how phase 0 is made from the
phases, and where every value of every reading sits. A history window maps to an
:class:`ArrayRows`: its instants and values already as arrays.

Ingest builds the store's columns of a whole batch at once (:func:`blocks_columns`): one array
per plan, however many meters were polled. A block is also a ``Sequence[Reading]``, built from
those same columns on first use, for anything that reads it row by row (the live feed, MQTT,
the relay command); both ways give the same values, bit for bit.
"""

from __future__ import annotations

import itertools
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from meterhub.model import READING_FIELDS, Reading

__all__ = [
    "EPOCH",
    "LIVE_PHASE_MIN_V",
    "ArrayRows",
    "BlockColumns",
    "PlannedRows",
    "ReadingBlock",
    "RowsPlan",
    "Total",
    "add_up",
    "blocks_columns",
    "epoch_us",
    "live_mean",
    "phase_total",
]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
LIVE_PHASE_MIN_V = 50.0
"""Below this a phase is not connected and stays out of the phase-0 voltage mean."""


def epoch_us(ts: datetime) -> int:
    """Return an aware instant as epoch microseconds, exactly."""
    return (ts - EPOCH) // _US


class Total(Enum):
    """How phase 0's value of a field is made from the phases' values (all known and finite)."""

    SUM = "sum"
    """Added left to right from 0.0, as :func:`add_up` adds."""
    LIVE_MEAN = "live mean"
    """The mean of the phases at :data:`LIVE_PHASE_MIN_V` or more; unknown when none is."""
    FIRST = "first"
    """The first phase's value (the frequency every phase shares)."""


def add_up(values: Iterable[Any]) -> float:
    """Return the values added left to right from 0.0 (:attr:`Total.SUM` one answer at a time).

    Python's ``sum`` adds floats so only up to 3.11; later versions compensate the rounding.
    """
    total = 0.0
    for value in values:
        total += value
    return total


def live_mean(values: Sequence[Any]) -> float | None:
    """Return the mean of the values at :data:`LIVE_PHASE_MIN_V` or more, None when there is none
    (:attr:`Total.LIVE_MEAN` one answer at a time; a NaN is left out)."""
    if values and min(values) >= LIVE_PHASE_MIN_V:  # every phase connected, the usual case
        total = add_up(values)
        if total == total:  # else a NaN that min() passed over: the general case leaves it out
            return total / len(values)
    live = [v for v in values if v >= LIVE_PHASE_MIN_V]
    return add_up(live) / len(live) if live else None


@dataclass(frozen=True, slots=True, eq=False)
class RowsPlan:
    """How the numbers of one answer shape become readings, worked out once per shape.

    The numbers are taken times ``factors``; each ``(first, other)`` of ``summed`` then adds
    ``other`` into ``first``; each total of ``totals`` is appended after them; a NaN is
    appended last. Reading ``k``'s value of field ``f`` is the number at ``cells[k][f]``.
    """

    width: int
    """Numbers per answer."""
    factors: tuple[float, ...] | None
    summed: tuple[tuple[int, int], ...]
    totals: tuple[tuple[Total, tuple[int, ...]], ...]
    """Each phase-0 value made from the phases: its rule and the positions of the phases' values."""
    cells: tuple[tuple[int, ...], ...]
    """For each reading, the position of each field of :data:`READING_FIELDS` (the last: unknown)."""
    phases: tuple[int, ...]
    """The phase of each reading."""

    @property
    def readings(self) -> int:
        """Return the readings each answer of this shape gives."""
        return len(self.phases)

    @property
    def unknown(self) -> int:
        """Return the position of the NaN appended after the numbers and totals."""
        return self.width + len(self.totals)

    def values(self, numbers: Floats) -> Floats:
        """Return (answers, readings, fields) from (answers, width) numbers; NaN where unknown.

        Sums that overflow give infinity, silently, as Python's float additions do.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            return self._values(numbers)

    def _values(self, numbers: Floats) -> Floats:
        count = len(numbers)
        numbers = numbers * np.array(self.factors) if self.factors is not None else numbers.copy()
        for first, other in self.summed:
            numbers[:, first] += numbers[:, other]
        extended = np.empty((count, self.unknown + 1))
        extended[:, : self.width] = numbers
        for position, (rule, sources) in enumerate(self.totals, self.width):
            extended[:, position] = phase_total(rule, numbers[:, list(sources)])
        extended[:, self.unknown] = np.nan
        return extended[:, np.array(self.cells)]


def phase_total(rule: Total, phases: Floats) -> Floats:
    """Return phase 0 of one field from (answers, phases) values, as the rule makes it."""
    if rule is Total.FIRST:
        return phases[:, 0].copy()
    if rule is Total.SUM:
        total = 0.0 + phases[:, 0]
        for phase in range(1, phases.shape[1]):
            total = total + phases[:, phase]
        return total
    live = phases >= LIVE_PHASE_MIN_V
    total = 0.0 + np.where(live[:, 0], phases[:, 0], 0.0)
    for phase in range(1, phases.shape[1]):
        total = total + np.where(live[:, phase], phases[:, phase], 0.0)
    count = live.sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


@dataclass(frozen=True, slots=True)
class BlockColumns:
    """Readings as columns: row ``k`` is ``meters[k]`` at ``ts_us[k]``, phase ``phase[k]``.

    ``values`` holds one row per field of :data:`READING_FIELDS`, NaN where a value is missing,
    as ingest checks them.
    """

    meters: tuple[str, ...]
    ts_us: Ints
    phase: Floats
    values: Floats

    @property
    def rows(self) -> int:
        """Return the number of readings."""
        return len(self.ts_us)

    def reading(self, row: int) -> Reading:
        """Return row ``row`` as a reading."""
        values = self.values[:, row].tolist()
        return Reading(self.meters[row], EPOCH + timedelta(microseconds=int(self.ts_us[row])),
                       int(self.phase[row]), *(None if value != value else value for value in values))

    def readings(self) -> list[Reading]:
        """Return every row as a reading, in order."""
        if not self.rows:
            return []
        stamps = [EPOCH + timedelta(microseconds=us) for us in self.ts_us.tolist()]
        fields = []
        for column in self.values:
            missing = np.isnan(column)
            if not missing.any():
                fields.append(column.tolist())
            else:
                boxed = column.astype(object)
                boxed[missing] = None
                fields.append(boxed.tolist())
        new = tuple.__new__
        return [new(Reading, row) for row in zip(self.meters, stamps, self.phase.astype(np.int64).tolist(),
                                                 *fields, strict=True)]


class ReadingBlock(Sequence[Reading]):
    """Readings of one meter, kept as the vendor gave them until ingest takes them as columns."""

    __slots__ = ("_built",)

    meter: str
    _built: list[Reading]
    """The readings, once built (unset until then)."""

    @abstractmethod
    def __len__(self) -> int:
        """Return the number of readings."""

    @abstractmethod
    def span_us(self) -> tuple[int, int] | None:
        """Return the earliest and latest instant of the readings in epoch µs; None when empty."""

    def columns(self) -> BlockColumns:
        """Return the readings as columns."""
        return blocks_columns([self])

    def _readings(self) -> list[Reading]:
        try:
            return self._built
        except AttributeError:
            built = self._built = self.columns().readings()
            return built

    @overload
    def __getitem__(self, index: int) -> Reading: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Reading]: ...

    def __getitem__(self, index: int | slice) -> Reading | Sequence[Reading]:
        return self._readings()[index]

    def __iter__(self) -> Iterator[Reading]:
        return iter(self._readings())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ReadingBlock | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.meter!r}, {len(self)} readings)"


class PlannedRows(ReadingBlock):
    """One answer's numbers at one instant, read by the plan of its shape."""

    __slots__ = ("meter", "numbers", "plan", "ts_us")

    def __init__(self, meter: str, ts_us: int, numbers: list[Any], plan: RowsPlan) -> None:
        """Keep ``numbers``: ``plan.width`` finite numbers (floats or ints) in the plan's order,
        as one list or as rows of one width, which the other answers of ``plan`` share."""
        self.meter = meter
        self.ts_us = ts_us
        self.numbers = numbers
        self.plan = plan

    def __len__(self) -> int:
        return len(self.plan.phases)

    def span_us(self) -> tuple[int, int] | None:
        return self.ts_us, self.ts_us


class ArrayRows(ReadingBlock):
    """Readings of one meter at many instants: (instants, readings per instant, fields) values."""

    __slots__ = ("meter", "phases", "ts_us", "values")

    def __init__(self, meter: str, ts_us: Ints, values: Floats, phases: tuple[int, ...]) -> None:
        self.meter = meter
        self.ts_us = ts_us
        self.values = values
        self.phases = phases

    def __len__(self) -> int:
        return len(self.ts_us) * len(self.phases)

    def span_us(self) -> tuple[int, int] | None:
        if not len(self.ts_us):
            return None
        return int(self.ts_us.min()), int(self.ts_us.max())

    def within(self, start: datetime, end: datetime) -> ArrayRows:
        """Return the readings at instants in [start, end)."""
        keep = (self.ts_us >= epoch_us(start)) & (self.ts_us < epoch_us(end))
        return ArrayRows(self.meter, self.ts_us[keep], self.values[keep], self.phases)


def blocks_columns(blocks: Sequence[ReadingBlock]) -> BlockColumns:
    """Return the readings of ``blocks`` as columns, block after block in order.

    Planned rows of one plan are read together: one array of numbers per plan, whatever the
    number of meters.
    """
    planned: dict[int, tuple[RowsPlan, list[PlannedRows], list[int]]] = {}
    parts: list[tuple[Ints, list[str], Ints, Ints, Floats]] = []
    for position, block in enumerate(blocks):
        if isinstance(block, PlannedRows):
            group = planned.setdefault(id(block.plan), (block.plan, [], []))
            group[1].append(block)
            group[2].append(position)
        elif isinstance(block, ArrayRows):
            parts.append(_array_part(block, position))
        else:
            raise TypeError(f"no columns for a {type(block).__name__}")
    parts.extend(_planned_part(group, plan, positions) for plan, group, positions in planned.values())
    if not parts:
        return BlockColumns((), np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros((len(READING_FIELDS), 0)))
    if len(parts) == 1:
        order, meters, ts_us, phase, values = parts[0]
    else:  # back to block order
        order = np.concatenate([part[0] for part in parts])
        meters = list(itertools.chain.from_iterable(part[1] for part in parts))
        ts_us = np.concatenate([part[2] for part in parts])
        phase = np.concatenate([part[3] for part in parts])
        values = np.concatenate([part[4] for part in parts])
        rank = np.argsort(order, kind="stable")
        meters = [meters[k] for k in rank.tolist()]
        ts_us, phase, values = ts_us[rank], phase[rank], values[rank]
    return BlockColumns(tuple(meters), ts_us, phase.astype(np.float64), np.ascontiguousarray(values.T))


def _planned_part(blocks: list[PlannedRows], plan: RowsPlan,
                  positions: list[int]) -> tuple[Ints, list[str], Ints, Ints, Floats]:
    count, per = len(blocks), plan.readings
    numbers = np.array([block.numbers for block in blocks], dtype=np.float64).reshape(count, plan.width)
    values = plan.values(numbers).reshape(count * per, len(READING_FIELDS))
    stamps = np.fromiter([block.ts_us for block in blocks], np.int64, count)
    meters = list(itertools.chain.from_iterable(itertools.repeat(block.meter, per) for block in blocks))
    return (np.repeat(np.array(positions, dtype=np.int64), per), meters, np.repeat(stamps, per),
            np.tile(np.array(plan.phases, dtype=np.int64), count), values)


def _array_part(block: ArrayRows, position: int) -> tuple[Ints, list[str], Ints, Ints, Floats]:
    rows = len(block)
    per = len(block.phases)
    return (np.full(rows, position, dtype=np.int64), [block.meter] * rows, np.repeat(block.ts_us, per),
            np.tile(np.array(block.phases, dtype=np.int64), len(block.ts_us)),
            block.values.reshape(rows, len(READING_FIELDS)))
