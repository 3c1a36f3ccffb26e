"""What every vendor mapping promises on any input, and the hypothesis strategies that probe it.

A mapping either returns readings, interval records and extras that the ingest pipeline can take
(``validate_reading`` accepts each reading or rejects it with a reason; interval energies and
extras are finite), or raises ``PayloadError`` with a message a person can act on. Anything else
(KeyError, TypeError, OverflowError...) is a defect of the mapping.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from meterhub.errors import PayloadError
from meterhub.ingest import validate_reading
from meterhub.model import Extra, IntervalEnergy, Reading

T = TypeVar("T")

HOSTILE_NUMBERS = st.sampled_from(
    [0, -1, -0.0, 1e308, -1e308, 10**30, -(10**30), 2**63, 10**400, float("nan"), float("inf"), float("-inf")]
)
HOSTILE_TEXTS = st.sampled_from(["", " ", "NaN", "inf", "-inf", "1e999", "-1", "1,5", "0x10", "\x00", "é"])
HOSTILE_SCALARS = (
    HOSTILE_NUMBERS
    | HOSTILE_TEXTS
    | st.booleans()
    | st.none()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | HOSTILE_NUMBERS.map(str)
)
"""Values a field may hold in a structurally right payload: wrong types, huge, NaN, negative, text."""

JSON = st.recursive(
    HOSTILE_SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)
"""Random JSON-like documents, leaves included the hostile scalars."""


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Return the path of every node of a JSON document, the root first."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += json_paths(item, (*prefix, index))
    return found


def replace_at(document: Any, path: tuple[Any, ...], replacement: Any) -> None:
    """Put ``replacement`` at ``path`` (not the root) inside ``document``."""
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = replacement


@st.composite
def replaced(draw: st.DrawFn, documents: list[Any], values: st.SearchStrategy[Any] = JSON) -> Any:
    """Return one of ``documents`` with one to three of its nodes replaced by drawn values."""
    document = copy.deepcopy(draw(st.sampled_from(documents)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(json_paths(document)))
        replacement = draw(values)
        if not path:
            return replacement
        replace_at(document, path, replacement)
    return document


STRUCTURED_VALUES = HOSTILE_SCALARS | JSON
"""Replacements for a node of a real payload: mostly wrong scalars, sometimes a whole subtree."""

WRONG_LEAVES: st.SearchStrategy[Any] = (
    HOSTILE_NUMBERS | HOSTILE_NUMBERS.map(str) | HOSTILE_TEXTS | st.sampled_from([None, True, [], {}])
)
"""Replacements for one value of a real payload: wrong types, huge, NaN, negative, odd text."""


def _leaf_paths(value: Any) -> list[tuple[Any, ...]]:
    return [path for path in json_paths(value) if path and not _has_children(value, path)]


def _has_children(document: Any, path: tuple[Any, ...]) -> bool:
    node = document
    for step in path:
        node = node[step]
    return isinstance(node, dict | list) and bool(node)


@st.composite
def wrong_leaves(draw: st.DrawFn, documents: list[Any]) -> Any:
    """Return one of ``documents``, its keys intact, with one to six of its values made wrong."""
    document = copy.deepcopy(draw(st.sampled_from(documents)))
    leaves = _leaf_paths(document)
    for path in draw(st.lists(st.sampled_from(leaves), min_size=1, max_size=6)):
        replace_at(document, path, draw(WRONG_LEAVES))
    return document


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_reading(reading: Reading, latest_allowed: datetime) -> None:
    """Check that ingest either accepts a reading or rejects it with a reason, and that it is well typed."""
    assert isinstance(reading, Reading)
    assert isinstance(reading.meter, str) and reading.meter
    assert isinstance(reading.ts, datetime) and reading.ts.utcoffset() is not None, reading.ts
    assert isinstance(reading.phase, int) and 0 <= reading.phase <= 3, reading.phase
    assert all(value is None or _is_number(value) for value in reading.values()), reading
    reason = validate_reading(reading, latest_allowed)
    assert reason is None or (isinstance(reason, str) and reason.strip()), reason


def check_interval(record: IntervalEnergy) -> None:
    """Check that an interval record is aware, forward, and carries finite, non-negative energy."""
    assert isinstance(record, IntervalEnergy)
    assert record.start.utcoffset() is not None and record.end > record.start
    for energy_kwh in (record.import_kwh, record.export_kwh):
        assert energy_kwh is None or (_is_number(energy_kwh) and math.isfinite(energy_kwh)), record
        assert energy_kwh is None or energy_kwh >= 0, record


def check_extra(extra: Extra) -> None:
    """Check that an extra is a finite number at an aware time."""
    assert isinstance(extra, Extra) and extra.ts.utcoffset() is not None
    assert _is_number(extra.value) and math.isfinite(extra.value), extra


def check_items(items: Iterable[object], at: datetime) -> None:
    """Check every reading, interval record and extra a mapping returned."""
    latest_allowed = at + timedelta(minutes=5)
    for item in items:
        if isinstance(item, Reading):
            check_reading(item, latest_allowed)
        elif isinstance(item, IntervalEnergy):
            check_interval(item)
        else:
            check_extra(item)  # type: ignore[arg-type]


def assert_accepted(items: Iterable[object], at: datetime) -> None:
    """Check that ingest accepts every reading a documented example maps to, and its other items."""
    items = list(items)
    assert items, "a documented example maps to something"
    check_items(items, at)
    latest_allowed = at + timedelta(minutes=5)
    rejected = [(r, validate_reading(r, latest_allowed)) for r in items if isinstance(r, Reading)]
    assert [pair for pair in rejected if pair[1] is not None] == []


def maps_or_refuses(call: Callable[..., T], *args: Any) -> T | None:
    """Return ``call(*args)``, or None when it raised PayloadError with a message; else fail."""
    try:
        return call(*args)
    except PayloadError as exc:
        assert str(exc).strip(), f"PayloadError without a message: {exc!r}"
        return None


def fuzz_test(
    documents: st.SearchStrategy[Any], map_all: Callable[[Any], None], *, max_examples: int = 300
) -> Callable[[], None]:
    """Return a test that hands each drawn document to ``map_all``, which maps it or refuses it."""

    @settings(max_examples=max_examples, deadline=None)
    @given(documents)
    def test(document: Any) -> None:
        map_all(document)

    return test


def decode_fuzz_test(
    bodies: st.SearchStrategy[bytes],
    decode: Callable[[bytes], Any],
    map_all: Callable[[Any], None],
    *,
    max_examples: int = 300,
) -> Callable[[], None]:
    """Return a test that each drawn body decodes and maps, or is refused with PayloadError."""

    @settings(max_examples=max_examples, deadline=None)
    @given(bodies)
    def test(body: bytes) -> None:
        document = maps_or_refuses(decode, body)
        if document is not None:
            map_all(document)

    return test
