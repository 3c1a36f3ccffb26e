"""``/api/v1/latest`` and ``/api/v1/meters/{id}/latest``: the newest readings, from the latest table.

What IAMMETER's metersdata and Intellimeter's /data give: one reading per meter (phase 0, the
whole meter), or every phase of one meter.

``/api/v1/latest`` is what dashboards and integrations poll, often many at once, so its encoded
answer is kept for :data:`LATEST_TTL_S` and shared by callers who see the same meters and ask
for the same format: a reading reaches it at most that much later than the store. Meters report
every few seconds at the fastest, so nobody sees the difference; the hub sees a few store reads
per second instead of one per request.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel

from meterhub.api.deps import Principal, PrincipalDep, Role, StoreDep, current_principal, store_of
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.api.render import TABULAR_FORMATS, FormatQuery, choose_format, render
from meterhub.api.routes._params import visible_meter
from meterhub.exporter import reading_record
from meterhub.model import PHASE_TOTAL
from meterhub.store.base import Store

__all__ = ["LATEST_TTL_S", "ReadingPublic", "router"]

router = APIRouter(prefix="/api/v1", tags=["readings"], responses=PROBLEM_RESPONSES)

LATEST_TTL_S = 0.5
"""How long an encoded answer of /api/v1/latest is reused, in seconds."""
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
class _Answer:
    expires_s: float
    body: bytes
    media_type: str


class _AnswerCache:
    """Encoded answers by (what the caller sees, format), each kept for LATEST_TTL_S."""

    def __init__(self) -> None:
        self._answers: dict[tuple[object, str], _Answer] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[object, str], now_s: float) -> _Answer | None:
        """Return a fresh answer for ``key``, or None."""
        answer = self._answers.get(key)
        return answer if answer is not None and answer.expires_s > now_s else None

    def put(self, key: tuple[object, str], answer: _Answer) -> None:
        """Keep an answer, dropping every stale one when the cache grows large."""
        now_s = answer.expires_s - LATEST_TTL_S
        with self._lock:
            if len(self._answers) >= _MAX_ENTRIES:
                self._answers = {k: a for k, a in self._answers.items() if a.expires_s > now_s}
            self._answers[key] = answer


_CACHES: weakref.WeakKeyDictionary[Any, _AnswerCache] = weakref.WeakKeyDictionary()


def _records(store: Store, principal: Principal) -> list[dict[str, Any]]:
    return [reading_record(r) for r in store.latest() if principal.can_see_meter(r.meter)]


async def _caller(request: Request) -> Principal:
    """Authenticate as PrincipalDep does, reading its three credentials here in one step."""
    scheme, bearer = get_authorization_scheme_param(request.headers.get("authorization"))
    return await current_principal(
        request,
        bearer if scheme.lower() == "bearer" and bearer else None,
        request.headers.get("x-api-key") or None,
        request.query_params.get("token") or None,
    )


async def _answer(request: Request, principal: Principal) -> Response:
    """Return the shared answer for what the caller sees, reading the store when it is stale."""
    key = ("*" if principal.role is Role.ADMIN else principal.meters, choose_format(request, _FORMATS))
    cache = _CACHES.get(request.app) or _CACHES.setdefault(request.app, _AnswerCache())
    now_s = time.monotonic()
    answer = cache.get(key, now_s)
    if answer is None:
        items = await anyio.to_thread.run_sync(_records, store_of(request), principal)
        response = render(request, items, rows=items, root="readings")
        answer = _Answer(now_s + LATEST_TTL_S, bytes(response.body), response.media_type or "")
        cache.put(key, answer)
    return Response(answer.body, media_type=answer.media_type)


async def _handle_latest(request: Request) -> Response:
    return await _answer(request, await _caller(request))


class _PolledRoute(APIRoute):
    """An APIRoute documented by its endpoint's parameters, whose requests skip dependency solving."""

    # Solving PrincipalDep (five dependencies) takes FastAPI about as long as the rest of a
    # cached answer; the most polled route resolves the same credentials with the same function.

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Return the handler that authenticates and answers without FastAPI's solver."""
        return _handle_latest


async def latest_all(request: Request, principal: PrincipalDep, fmt: FormatQuery = None) -> Response:
    """Return the newest whole-meter (phase 0) reading of every meter the caller may see (cached 0.5 s)."""
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
    return render(request, items, rows=items, root="readings")
