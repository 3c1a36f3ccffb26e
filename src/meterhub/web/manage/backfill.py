"""Manage backfills from the dashboard (admins only): the open ones with their progress, and a new one.

A backfill started here runs in the hub's own process (``meterhub serve``), in a task group the
app holds for its lifetime (:func:`lifespan`), through the same functions as ``meterhub backfill``:
:func:`~meterhub.backfills.plan_backfill` and :func:`~meterhub.poller.backfill.backfill_meter`.
An app served without the hub's poller starts none and says so. The page follows progress
through the server-sent events of ``/api/v1/dashboard/backfills/events``: one event each time a
window is stored, none while nothing changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from meterhub.api.deps import PrincipalDep, store_of
from meterhub.api.problems import PROBLEM_RESPONSES, ApiProblem
from meterhub.api.websession import WebSession
from meterhub.backfills import BackfillRuns, plan_backfill
from meterhub.catalog import FieldError
from meterhub.errors import MeterhubError, NotFoundError
from meterhub.model import utc_now
from meterhub.poller.connectors import HTTP_LIMITS, HTTP_TIMEOUT
from meterhub.poller.live import ScheduledLive
from meterhub.redact import redact_text
from meterhub.status import MeterStatus, meter_status
from meterhub.web.events import DRAIN_CHECK_S, PING_S, draining
from meterhub.web.forms import FormErrors, done, form_text
from meterhub.web.manage.home import admin_page, read_values, run, show

__all__ = ["NEEDS_SERVE", "lifespan", "router"]

NEEDS_SERVE = (
    "Backfills run inside the hub: start it with 'meterhub serve' to start one here "
    "(or run 'meterhub backfill METER --since ...' from a shell)."
)
PAGE = "/manage/backfill"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Hold, for the app's lifetime, the task group and HTTP client backfill runs use."""
    async with (
        httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=HTTP_LIMITS) as client,
        anyio.create_task_group() as task_group,
    ):
        app.state.backfill_runs = BackfillRuns(client, task_group)
        try:
            yield
        finally:
            task_group.cancel_scope.cancel()  # progress is saved after every window


router = APIRouter(include_in_schema=False, lifespan=lifespan)
events_router = APIRouter(tags=["dashboard"], responses=PROBLEM_RESPONSES)
"""The progress stream is an API route (in the OpenAPI document); the pages are not."""


def _runs(request: Request) -> BackfillRuns | None:
    """Return the app's backfill runs when the app runs inside the hub (with its poller)."""
    in_hub = isinstance(getattr(request.app.state, "live_reads", None), ScheduledLive)
    runs: BackfillRuns | None = getattr(request.app.state, "backfill_runs", None)
    return runs if in_hub else None


def _open_backfills(rows: list[MeterStatus]) -> list[MeterStatus]:
    return [row for row in rows if row.backfill is not None]


def _page(
    request: Request,
    session: WebSession,
    rows: list[MeterStatus],
    values: dict[str, str],
    errors: FormErrors | None = None,
) -> HTMLResponse:
    runs = _runs(request)
    return show(
        request,
        "manage_backfill.html",
        session,
        errors,
        meters=[row.meter_id for row in rows],
        open_backfills=_open_backfills(rows),
        runs=runs.runs() if runs is not None else [],
        in_hub=runs is not None,
        needs_serve=NEEDS_SERVE,
        values=values,
        title="Backfills",
    )


@router.get("/manage/backfill", response_class=HTMLResponse)
@admin_page
async def backfill_page(request: Request, session: WebSession) -> Response:
    """List open backfills with their progress, and the form that starts one."""
    rows = await run(meter_status, store_of(request))
    values = {"meter": request.query_params.get("meter", ""), "since": "", "until": ""}
    return _page(request, session, rows, values)


@router.post("/manage/backfill", response_class=HTMLResponse)
@admin_page
async def start_backfill(request: Request, session: WebSession) -> Response:
    """Start a backfill of a meter over a range, in the hub's process."""
    form, errors, values = await read_values(request, session, ("meter", "since", "until"))
    restart = form_text(form, "restart") == "yes"
    store = store_of(request)
    rows = await run(meter_status, store)
    if errors:
        return _page(request, session, rows, values, errors)
    try:
        meter = await run(store.get_meter, values["meter"])
        job = await plan_backfill(store, meter, values["since"], values["until"], utc_now(), restart=restart)
        runs = _runs(request)
        if runs is None:
            errors.add(None, NEEDS_SERVE)
            return _page(request, session, rows, values, errors)
        if job.finished:
            return done(PAGE, f"The history of {meter.id} over that range is stored already.")
        runs.start(store, meter, job)
    except NotFoundError as exc:
        errors.add("meter", str(exc))
    except FieldError as exc:
        errors.add(exc.field, str(exc))
    except MeterhubError as exc:
        errors.add(None, redact_text(str(exc)))
    if errors:
        return _page(request, session, rows, values, errors)
    return done(PAGE, f"Started a backfill of {values['meter']}.")


async def _events(request: Request, runs: BackfillRuns) -> AsyncIterator[ServerSentEvent]:
    seen = -1
    while not draining(request):
        changed: int | None = None
        with anyio.move_on_after(DRAIN_CHECK_S):  # to notice a stopping hub, not to poll
            changed = await runs.wait_change(seen)
        if changed is None:
            continue
        seen = changed
        body = [run.to_json() for run in runs.runs()]
        yield ServerSentEvent(data=orjson.dumps(body).decode(), event="backfills")


@events_router.get(
    "/api/v1/dashboard/backfills/events",
    response_class=EventSourceResponse,
    summary="Backfill progress (server-sent events)",
)
async def backfill_events(request: Request, principal: PrincipalDep) -> EventSourceResponse:
    """Stream the backfill runs (event ``backfills``, a JSON list) each time one changes; admins only."""
    principal.require_admin()
    runs = _runs(request)
    if runs is None:
        raise ApiProblem(409, "Conflict", NEEDS_SERVE)
    return EventSourceResponse(
        _events(request, runs), ping=PING_S, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
