"""``/api/v1/meters/{id}/readings`` (downsampled history) and ``/intervals`` (interval energy).

The history comes from the coarsest rollups that tile the buckets, as columns: JSON is encoded
from them a column at a time, the other formats turn them straight into rows. A short read of a
local SQLite file's rollups runs on the event loop, any other in a worker thread. Identical
requests (the same resolved range, parameters and format, from callers who may see the meter)
share the encoded answer until the store's change count moves, so a new reading shows in the
next answer; ``app.state.answer_cache = False`` turns the sharing off.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Coroutine, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import anyio.to_thread
import numpy as np
import numpy.typing as npt
from fastapi import APIRouter, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from meterhub.analytics.calendar import BUCKET_ALIASES, BUCKET_CHOICES, BUCKETS
from meterhub.api.deps import Principal, PrincipalDep, StoreDep, store_of
from meterhub.api.encoding import MEDIA_TYPES, dumps_json, iso_utc, json_records
from meterhub.api.problems import PROBLEM_RESPONSES, ApiProblem
from meterhub.api.render import TABULAR_FORMATS, FormatQuery, choose_format, render
from meterhub.api.routes._params import (
    EndQuery,
    StartQuery,
    TzQuery,
    iso,
    time_range,
    visible_meter,
    zone_name,
)
from meterhub.api.routes.latest import SharedAnswer, answer_cache, caller, change_count
from meterhub.errors import InputError
from meterhub.history import MAX_POINTS, HistoryColumns, history_columns, rollup_rows
from meterhub.model import Meter
from meterhub.precision import decimals_of
from meterhub.store.base import Bucket, Store
from meterhub.store.sqlite import SQLiteStore
from meterhub.store.sqlite_periods import FIGURE_FIELDS

__all__ = ["BUCKET_FIELDS", "DEFAULT_FIELDS", "history_json", "history_rows", "iso_texts", "router"]

router = APIRouter(prefix="/api/v1/meters", tags=["readings"], responses=PROBLEM_RESPONSES)

BUCKET_FIELDS: tuple[str, ...] = FIGURE_FIELDS
"""The per-bucket figures a caller may ask for with ``fields``."""
DEFAULT_FIELDS: tuple[str, ...] = (
    "count",
    "power_avg_w",
    "power_min_w",
    "power_max_w",
    "voltage_avg_v",
    "current_avg_a",
    "energy_import_kwh",
    "energy_export_kwh",
)
DEFAULT_POINTS = 1000
_SHARED_ANSWERS = 64
_INLINE_ROLLUP_ROWS = 4096
"""Rollup rows (six weeks of quarter hours, a few milliseconds) read on the event loop, not in a thread."""
_SHARED_BODY_MAX = 512 << 10
"""Larger answers are not kept, so the shared answers never hold more than 32 MiB."""
_FORMATS = ("json", "xml", *TABULAR_FORMATS)
BUCKET_WIDTH_NAMES = frozenset(BUCKET_CHOICES)


class History(BaseModel):
    """Downsampled history of one meter phase: one row per non-empty bucket."""

    meter: str
    phase: int
    start: datetime
    end: datetime
    fields: list[str]
    data: list[dict[str, Any]]


class IntervalPublic(BaseModel):
    """Energy a source reported for [start, end), in kWh."""

    meter: str
    start: datetime
    end: datetime
    energy_import_kwh: float | None
    energy_export_kwh: float | None
    source: str


def chosen_fields(text: str | None) -> tuple[str, ...]:
    """Return the bucket fields named in a comma-separated list (default: the usual ones)."""
    if text is None or not text.strip():
        return DEFAULT_FIELDS
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in BUCKET_FIELDS]
    if unknown:
        raise InputError(f"unknown field(s) {', '.join(unknown)}; choose from {', '.join(BUCKET_FIELDS)}")
    return names


def bucket_row(bucket: Bucket, fields: tuple[str, ...]) -> dict[str, Any]:
    """Return one bucket as a flat row: its edges and the asked fields."""
    return {"start": iso(bucket.start), "end": iso(bucket.end), **{f: getattr(bucket, f) for f in fields}}


def iso_texts(ts_ms: npt.NDArray[np.int64]) -> list[str]:
    """Return epoch milliseconds as the ISO 8601 texts :func:`iso` gives their UTC datetimes."""
    return iso_utc(ts_ms.astype("datetime64[ms]"))


def _rounded(name: str, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | npt.NDArray[np.int64]:
    """Return a figure column as it is answered: counts whole, quantities rounded, NaN for None."""
    if name == "count":
        return values.astype(np.int64)
    decimals = decimals_of(name)
    if decimals is None:
        return values
    return np.round(values, decimals) + 0.0  # rint(x * 10**d) / 10**d, printed short; -0.0 -> 0.0


def _cells(name: str, values: npt.NDArray[np.float64]) -> list[Any]:
    cells: list[Any] = _rounded(name, values).tolist()
    if name != "count" and np.isnan(values).any():
        return [None if math.isnan(v) else v for v in cells]
    return cells


def history_rows(columns: HistoryColumns, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """Return the buckets as flat rows (edges, then the asked fields), straight from the columns.

    Each figure is rounded to its quantity's precision (:mod:`meterhub.precision`).
    """
    keys = ("start", "end", *fields)
    cells: list[list[Any]] = [iso_texts(columns.starts_ms), iso_texts(columns.ends_ms)]
    cells.extend(_cells(name, columns.figures[name]) for name in fields)
    if any(len(column) != len(columns) for column in cells):
        raise ValueError("history columns of unequal length")
    return [dict(zip(keys, row)) for row in zip(*cells)]  # noqa: B905 - lengths checked above


def history_json(head: dict[str, Any], columns: HistoryColumns, fields: tuple[str, ...]) -> bytes:
    """Return the JSON answer: ``head`` with the buckets as ``data``, the bytes ``render`` would give
    for ``{**head, "data": history_rows(columns, fields)}``, encoded from the columns."""
    edges = [columns.starts_ms.astype("datetime64[ms]"), columns.ends_ms.astype("datetime64[ms]")]
    figures = [_rounded(name, columns.figures[name]) for name in fields]
    data = json_records(("start", "end", *fields), [*edges, *figures])
    return dumps_json(head)[:-1] + b',"data":' + data + b"}"


def readings(
    meter_id: str,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    start: StartQuery = None,
    end: EndQuery = None,
    points: Annotated[
        int | None,
        Query(
            ge=1,
            description=f"At most this many buckets, {MAX_POINTS} at the most (default {DEFAULT_POINTS}).",
            json_schema_extra={"maximum": MAX_POINTS},
        ),
    ] = None,
    bucket: Annotated[
        str | None,
        Query(
            pattern=f"^({'|'.join(BUCKET_CHOICES)})$",
            description=f"A fixed bucket instead of points: {', '.join(BUCKETS)}; 1d, 1w (ISO weeks "
            f"from Monday), 1mo and 1y are local calendar periods ({', '.join(BUCKET_ALIASES)} are "
            "accepted too).",
        ),
    ] = None,
    phase: Annotated[int, Query(ge=0, le=3, description="0 is the whole meter, 1..3 are L1..L3.")] = 0,
    fields: Annotated[
        str | None,
        Query(max_length=400, description=f"Comma-separated subset of {', '.join(BUCKET_FIELDS)}."),
    ] = None,
    tz: TzQuery = None,
    fmt: FormatQuery = None,
) -> Response:
    """Return avg/min/max power, voltage, current and energy per bucket over [start, end) (default a day)."""
    asked = _asked(request, store, principal, meter_id, start, end, points, bucket, phase, fields, tz)
    return _answer(request, store, asked)


@dataclass(frozen=True, slots=True)
class _Asked:
    """A readings request, checked and resolved: what to read and how to answer it."""

    meter_id: str
    meter: Meter
    start: datetime
    end: datetime
    points: int | None
    bucket: str | None
    phase: int
    names: tuple[str, ...]
    zone: str
    fmt: str
    version: int
    """The store's change count, read before anything else (0 when answers are not shared)."""

    @property
    def key(self) -> Hashable:
        """Return what an identical request is known by among the shared answers."""
        return (self.meter_id, self.start, self.end, self.points, self.bucket, self.phase, self.names,
                self.zone, self.fmt)  # fmt: skip


def _asked(
    request: Request,
    store: Store,
    principal: Principal,
    meter_id: str,
    start: str | None = None,
    end: str | None = None,
    points: int | None = None,
    bucket: str | None = None,
    phase: int = 0,
    fields: str | None = None,
    tz: str | None = None,
) -> _Asked:
    """Check a readings request and resolve its range, zone, fields and format (one meter look-up)."""
    cache = answer_cache(request, "history", _SHARED_ANSWERS)
    version = store.change_count() if cache is not None else 0  # before anything is read
    meter = visible_meter(store, principal.can_see_meter, meter_id)
    if points is not None and bucket is not None:
        raise InputError("give either points or bucket, not both")
    if points is not None and points > MAX_POINTS:
        raise ApiProblem(
            422,
            "Too many points",
            f"points={points} exceeds the limit of {MAX_POINTS} per request; ask for fewer points, "
            "a wider bucket or a shorter range",
            max_points=MAX_POINTS,
        )
    names = chosen_fields(fields)
    zone = zone_name(tz) if tz is not None else meter.tz
    start_ts, end_ts = time_range(start, end, zone, timedelta(days=1))
    fmt = choose_format(request, _FORMATS)
    return _Asked(meter_id, meter, start_ts, end_ts, points, bucket, phase, names, zone, fmt, version)


def _answer(request: Request, store: Store, asked: _Asked, as_asked: Hashable | None = None) -> Response:
    """Answer a checked request; identical requests share the encoded answer until the store changes.

    ``as_asked`` is a further key (the request's own words for a fixed range) to keep it under.
    """
    cache = answer_cache(request, "history", _SHARED_ANSWERS)
    shared = cache.get(asked.key, asked.version) if cache is not None else None
    if shared is not None:
        return Response(shared.body, media_type=shared.media_type)
    columns = history_columns(
        store,
        asked.meter_id,
        asked.start,
        asked.end,
        points=DEFAULT_POINTS if asked.points is None and asked.bucket is None else asked.points,
        bucket=asked.bucket,
        phase=asked.phase,
        tz=asked.zone,
        meter=asked.meter,
        fields=asked.names,
    )
    head = {"meter": asked.meter_id, "phase": asked.phase, "start": iso(asked.start), "end": iso(asked.end)}
    head["fields"] = list(asked.names)
    if asked.fmt == "json":
        response = Response(history_json(head, columns, asked.names), media_type=MEDIA_TYPES["json"])
    else:
        rows = history_rows(columns, asked.names)
        response = render(request, {**head, "data": rows}, rows=rows, root="history", rounded_already=True)
    if cache is not None and len(response.body) <= _SHARED_BODY_MAX:
        shared = SharedAnswer(asked.version, bytes(response.body), response.media_type or "")
        cache.put(asked.key, shared)
        if as_asked is not None:
            cache.put(as_asked, shared)
    return response


def _history(
    request: Request,
    store: Store,
    principal: Principal,
    meter_id: str,
    as_asked: Hashable | None,
    **args: Any,
) -> Response:
    """Check and answer a readings request (``args``: the route's query parameters)."""
    return _answer(request, store, _asked(request, store, principal, meter_id, **args), as_asked)


def _short_local_read(store: Store, asked: _Asked) -> bool:
    """Tell whether the answer is a short read of a local SQLite file's rollups: cheaper than a thread.

    Handing such a read to a worker thread costs more than it saves: the GIL passes back and forth
    between the threads several times per request, which under load halts each for a while.
    """
    if not isinstance(store, SQLiteStore):
        return False
    points = DEFAULT_POINTS if asked.points is None and asked.bucket is None else asked.points
    rows = rollup_rows(asked.start, asked.end, points=points, bucket=asked.bucket)
    return rows is not None and rows <= _INLINE_ROLLUP_ROWS


_PLAIN_KEYS = frozenset({"start", "end", "points", "bucket", "phase", "fields", "tz", "format"})
_LIMITS = {"start": 64, "end": 64, "tz": 64, "fields": 400}
_FORMAT_NAMES = frozenset({"json", "xml", "csv", "yaml", "ndjson"})


def _fixed_range(args: dict[str, Any]) -> bool:
    """Tell whether the asked range reads the same whenever it is asked (no ``now``, no ``today``)."""
    for name in ("start", "end"):
        text = str(args.get(name, "now")).strip().lower()
        if text.startswith("now") or text == "today":
            return False
    return True


def _plain_args(request: Request) -> dict[str, Any] | None:
    """Return the query as the route's arguments when no parameter needs FastAPI's validation.

    Anything unusual (an unknown or repeated parameter, a value out of its declared range, a NUL)
    returns None, and the request takes the fully validated way with FastAPI's own errors.
    """
    items = request.query_params.multi_items()
    names = [name for name, _ in items]
    if len(set(names)) != len(names) or not _PLAIN_KEYS.issuperset(names):
        return None
    if any("\x00" in value for _, value in items) or "\x00" in request.path_params.get("meter_id", "\x00"):
        return None
    args: dict[str, Any] = {}
    for name, value in items:
        if name in _LIMITS:
            if len(value) > _LIMITS[name]:
                return None
            args[name] = value
        elif name == "points":
            if not (value.isascii() and value.isdigit() and len(value) <= 9) or int(value) < 1:
                return None
            args[name] = int(value)
        elif name == "phase":
            if value not in ("0", "1", "2", "3"):
                return None
            args[name] = int(value)
        elif name == "bucket":
            if value not in BUCKET_WIDTH_NAMES:
                return None
            args[name] = value
        elif value not in _FORMAT_NAMES:  # format, which render() reads itself
            return None
    return args


class _HistoryRoute(APIRoute):
    """The readings route, documented and validated by FastAPI; plain requests skip its solver.

    Solving the route's dependencies and eight query parameters costs FastAPI about as much as
    the answer itself; a request whose parameters need no validation beyond their form is
    authenticated by the same function and answered by the same code.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Return a handler that answers plain requests directly and the rest through FastAPI."""
        solved = super().get_route_handler()

        async def handle(request: Request) -> Response:
            args = _plain_args(request)
            if args is None:
                return await solved(request)
            principal = await caller(request)
            store = store_of(request)
            meter_id = request.path_params["meter_id"]
            cache = answer_cache(request, "history", _SHARED_ANSWERS)
            as_asked = None
            if cache is not None and _fixed_range(args) and principal.can_see_meter(meter_id):
                # The same words for a fixed range mean the same answer while the store is unchanged
                # (the meter's zone is in the store too): no thread, no parsing, no query.
                as_asked = (meter_id, tuple(sorted(args.items())), choose_format(request, _FORMATS))
                shared = cache.get(as_asked, await change_count(store))
                if shared is not None:
                    return Response(shared.body, media_type=shared.media_type)
            if not isinstance(store, SQLiteStore):
                answer = functools.partial(_history, request, store, principal, meter_id, as_asked, **args)
                return await anyio.to_thread.run_sync(answer)
            asked = _asked(request, store, principal, meter_id, **args)  # a local look-up: no hop
            if _short_local_read(store, asked):
                return _answer(request, store, asked, as_asked)
            return await anyio.to_thread.run_sync(_answer, request, store, asked, as_asked)

        return handle


router.add_api_route(
    "/{meter_id}/readings",
    readings,
    methods=["GET"],
    response_model=History,
    summary="Downsampled history",
    route_class_override=_HistoryRoute,
)


@router.get("/{meter_id}/intervals", response_model=list[IntervalPublic], summary="Interval energy")
def intervals(
    meter_id: str,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    start: StartQuery = None,
    end: EndQuery = None,
    source: Annotated[
        str | None, Query(max_length=64, description="Only records of this source, such as umeter.")
    ] = None,
    tz: TzQuery = None,
    fmt: FormatQuery = None,
) -> Response:
    """Return the interval-energy records (Intellimeter /interval and the like) starting in [start, end)."""
    meter = visible_meter(store, principal.can_see_meter, meter_id)
    start_ts, end_ts = time_range(start, end, zone_name(tz) if tz else meter.tz, timedelta(days=1))
    items = [
        {
            "meter": r.meter,
            "start": iso(r.start),
            "end": iso(r.end),
            "energy_import_kwh": r.import_kwh,
            "energy_export_kwh": r.export_kwh,
            "source": r.source,
        }
        for r in store.intervals(meter_id, start_ts, end_ts, source)
    ]
    return render(request, items, rows=items, root="intervals")
