"""``/api/v1/export``: raw readings in the canonical columns, streamed in constant memory.

The CSV reads back through ``meterhub import`` unchanged; NDJSON, JSON, XML and YAML carry the
same records. Rows are read from the store while they are sent, so any range can be exported.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import StreamingResponse

from meterhub.api.deps import PrincipalDep, StoreDep
from meterhub.api.encoding import accepted_formats
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.api.render import choose_format, stream
from meterhub.api.routes._params import EndQuery, StartQuery, time_range, visible_meter
from meterhub.exporter import reading_record
from meterhub.hubzone import zone_of_meters
from meterhub.model import CANONICAL_COLUMNS

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["export"], responses=PROBLEM_RESPONSES)

EXPORT_FORMATS = ("csv", "ndjson", "json", "xml", "yaml")
_STREAMED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Readings in the canonical columns, streamed.",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/x-ndjson": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "application/xml": {"schema": {"type": "string"}},
            "application/yaml": {"schema": {"type": "array", "items": {"type": "object"}}},
        },
    }
}


def _format(request: Request, asked: str | None) -> str:
    """Return ``?format=``, else a format the Accept header names, else CSV."""
    if asked is not None:
        return asked
    if any(fmt != "*" for fmt in accepted_formats(request)):
        return choose_format(request, EXPORT_FORMATS)
    return "csv"


@router.get("/export", response_class=StreamingResponse, responses=_STREAMED, summary="Export readings")
def export(
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    start: StartQuery = None,
    end: EndQuery = None,
    meter: Annotated[
        list[str] | None,
        Query(max_length=500, description="Meter to export (repeatable; default all you may see)."),
    ] = None,
    phase: Annotated[int | None, Query(ge=0, le=3, description="Only this phase (default all).")] = None,
    fmt: Annotated[
        Literal["csv", "ndjson", "json", "xml", "yaml"] | None,
        Query(alias="format", description="csv (default), ndjson, json, xml or yaml; or ask by Accept."),
    ] = None,
) -> StreamingResponse:
    """Stream raw readings of [start, end) (default the last day) of the meters asked, in UTC.

    A date (or a time without an offset) is read in the meters' zone when they share one, else
    in the hub's default zone.
    """
    if meter:
        meter_ids = sorted({visible_meter(store, principal.can_see_meter, m).id for m in meter})
    else:
        meter_ids = [m.id for m in store.list_meters() if principal.can_see_meter(m.id)]
    zone = zone_of_meters(store, meter_ids) if meter_ids else "UTC"
    start_ts, end_ts = time_range(start, end, zone, timedelta(days=1))
    chosen = _format(request, fmt)
    readings = store.iter_readings(meter_ids, start_ts, end_ts, phase)
    rows: Iterator[dict[str, Any]] = (reading_record(r) for r in readings)
    return stream(
        request,
        rows,
        fmt=chosen,
        columns=CANONICAL_COLUMNS,
        root="readings",
        filename=f"meterhub-export.{chosen}",
        rounded_already=True,  # reading_record rounds each value
    )
