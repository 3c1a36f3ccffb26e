"""``/api/v1/latest`` and ``/api/v1/meters/{id}/latest``: the newest readings, from the latest table.

What IAMMETER's metersdata and Intellimeter's /data give: one reading per meter (phase 0, the
whole meter), or every phase of one meter.

``/api/v1/latest`` is what dashboards and integrations poll, often many at once, so its encoded
answer is kept and shared by callers who see the same meters and ask for the same format, until
the store's change count (:meth:`meterhub.store.base.Store.change_count`) moves: a reading shows
in the next answer after it is written, and between writes the hub reads the store once instead
of once per request. ``app.state.answer_cache = False`` turns the sharing off. JSON is encoded by
columns (:func:`latest_json`), and a local SQLite file is read without a thread hop.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Coroutine, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel

from meterhub.api.deps import Principal, PrincipalDep, Role, StoreDep, current_principal, store_of
from meterhub.api.encoding import MEDIA_TYPES, json_records
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.api.render import TABULAR_FORMATS, FormatQuery, choose_format, render
from meterhub.api.routes._params import visible_meter
from meterhub.exporter import reading_record
from meterhub.model import CANONICAL_COLUMNS, PHASE_TOTAL, READING_FIELDS, REGISTER_FIELDS, Reading
from meterhub.precision import REGISTER_DECIMALS, decimals_of
from meterhub.store.base import Store
from meterhub.store.sqlite import SQLiteStore

__all__ = [
    "CACHE_SWITCH",
    "AnswerCache",
    "ReadingPublic",
    "SharedAnswer",
    "answer_cache",
    "caller",
    "change_count",
    "latest_json",
    "router",
]

router = APIRouter(prefix="/api/v1", tags=["readings"], responses=PROBLEM_RESPONSES)

CACHE_SWITCH = "answer_cache"
"""The ``app.state`` attribute that, set False, makes every request of /api/v1/latest and of the
readings history read the store instead of sharing answers."""
_MAX_ENTRIES = 512
_FORMATS = ("json", "xml", *TABULAR_FORMATS)


class ReadingPublic(BaseModel):
    """One meter, one instant, one phase (0 is the whole meter); power_w > 0 is import."""

    meter: str
    ts: datetime
    phase: int
    voltage_v: float | None
    current_a: float | None
    power_w: float | None
    reactive_power_var: float | None
    power_factor: float | None
    frequency_hz: float | None
    energy_import_kwh: float | None
    energy_export_kwh: float | None
    reactive_import_kvarh: float | None
    reactive_export_kvarh: float | None


@dataclass(frozen=True, slots=True)
class SharedAnswer:
    """An encoded answer and the store's change count read before it was built."""

    version: int
    body: bytes
    media_type: str


class AnswerCache:
    """Encoded answers by key, each valid while the store's change count stays what it was."""

    def __init__(self, max_entries: int = _MAX_ENTRIES) -> None:
        self._answers: dict[Hashable, SharedAnswer] = {}
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def get(self, key: Hashable, version: int) -> SharedAnswer | None:
        """Return the answer for ``key`` built at change count ``version``, or None."""
        answer = self._answers.get(key)
        return answer if answer is not None and answer.version == version else None

    def put(self, key: Hashable, answer: SharedAnswer) -> None:
        """Keep an answer, dropping every one of another version (or all) when the cache is full."""
        with self._lock:
            if len(self._answers) >= self._max_entries:
                self._answers = {k: a for k, a in self._answers.items() if a.version == answer.version}
                if len(self._answers) >= self._max_entries:
                    self._answers = {}
            self._answers[key] = answer


_CACHES: weakref.WeakKeyDictionary[Any, dict[str, AnswerCache]] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def answer_cache(request: Request, name: str, max_entries: int = _MAX_ENTRIES) -> AnswerCache | None:
    """Return the app's cache of answers called ``name``, or None when the app turned sharing off."""
    if getattr(request.app.state, CACHE_SWITCH, True) is False:
        return None
    caches = _CACHES.get(request.app)
    if caches is None or name not in caches:
        with _CACHES_LOCK:
            caches = _CACHES.setdefault(request.app, {})
            caches.setdefault(name, AnswerCache(max_entries))
    return caches[name]


_KEYS = CANONICAL_COLUMNS
_DECIMALS = np.array(
    [REGISTER_DECIMALS if name in REGISTER_FIELDS else decimals_of(name) or REGISTER_DECIMALS
     for name in READING_FIELDS]
)  # fmt: skip
"""The decimals each value keeps, as :func:`meterhub.exporter.reading_record` rounds them."""


def _visible(store: Store, principal: Principal) -> list[Reading]:
    return [r for r in store.latest() if principal.can_see_meter(r.meter)]


def _records(store: Store, principal: Principal) -> list[dict[str, Any]]:
    return [reading_record(r) for r in _visible(store, principal)]


def latest_json(readings: Sequence[Reading]) -> bytes:
    """Return the JSON of ``[reading_record(r) for r in readings]``, rounded and encoded by columns."""
    if not readings:
        return b"[]"
    values = np.array([r[3:] for r in readings], dtype=np.float64).T  # None reads as NaN: null
    scales = 10.0 ** _DECIMALS[:, np.newaxis]
    rounded = np.ascontiguousarray(np.rint(values * scales) / scales + 0.0)  # round_to, for every cell
    meters = [r.meter for r in readings]
    moments = [r.ts.isoformat() for r in readings]
    phases = np.array([r.phase for r in readings], dtype=np.int64)
    return json_records(_KEYS, [meters, moments, phases, *rounded])


async def caller(request: Request) -> Principal:
    """Authenticate as PrincipalDep does, reading its three credentials here in one step."""
    scheme, bearer = get_authorization_scheme_param(request.headers.get("authorization"))
    return await current_principal(
        request,
        bearer if scheme.lower() == "bearer" and bearer else None,
        request.headers.get("x-api-key") or None,
        request.query_params.get("token") or None,
    )


async def change_count(store: Store) -> int:
    """Return the store's change count without holding up the event loop longer than a PRAGMA."""
    if isinstance(store, SQLiteStore):  # one PRAGMA on a local file: cheaper than a thread hop
        return store.change_count()
    return await anyio.to_thread.run_sync(store.change_count)


async def _fresh(request: Request, store: Store, principal: Principal, fmt: str) -> Response:
    """Read the store and answer what the caller sees in ``fmt``."""
    if fmt == "json" and isinstance(store, SQLiteStore):  # one short local read: no thread hop
        return Response(latest_json(_visible(store, principal)), media_type=MEDIA_TYPES["json"])
    items = await anyio.to_thread.run_sync(_records, store, principal)
    return render(request, items, rows=items, root="readings", rounded_already=True)


async def _answer(request: Request, principal: Principal) -> Response:
    """Return the shared answer for what the caller sees, reading the store when it changed."""
    fmt = choose_format(request, _FORMATS)
    store = store_of(request)
    cache = answer_cache(request, "latest")
    if cache is None:
        return await _fresh(request, store, principal, fmt)
    key = ("*" if principal.role is Role.ADMIN else principal.meters, fmt)
    version = await change_count(store)
    answer = cache.get(key, version)
    if answer is None:
        response = await _fresh(request, store, principal, fmt)
        answer = SharedAnswer(version, bytes(response.body), response.media_type or "")
        cache.put(key, answer)
    return Response(answer.body, media_type=answer.media_type)


async def _handle_latest(request: Request) -> Response:
    return await _answer(request, await caller(request))


class _PolledRoute(APIRoute):
    """An APIRoute documented by its endpoint's parameters, whose requests skip dependency solving."""

    # Solving PrincipalDep (five dependencies) takes FastAPI about as long as the rest of a
    # cached answer; the most polled route resolves the same credentials with the same function.

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Return the handler that authenticates and answers without FastAPI's solver."""
        return _handle_latest


async def latest_all(request: Request, principal: PrincipalDep, fmt: FormatQuery = None) -> Response:
    """Return the newest whole-meter (phase 0) reading of every meter the caller may see."""
    return await _answer(request, principal)


router.add_api_route(
    "/latest",
    latest_all,
    methods=["GET"],
    response_model=list[ReadingPublic],
    summary="Latest reading of every meter",
    route_class_override=_PolledRoute,
)


@router.get(
    "/meters/{meter_id}/latest", response_model=list[ReadingPublic], summary="Latest readings of a meter"
)
def latest_of_meter(
    meter_id: str,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    phase: Annotated[
        int | None, Query(ge=PHASE_TOTAL, le=3, description="One phase (0 is the whole meter); default all.")
    ] = None,
    fmt: FormatQuery = None,
) -> Response:
    """Return the newest reading of each phase of one meter (or of the phase asked)."""
    visible_meter(store, principal.can_see_meter, meter_id)
    items = [reading_record(r) for r in store.latest([meter_id], phase=phase)]
    return render(request, items, rows=items, root="readings", rounded_already=True)  # reading_record
