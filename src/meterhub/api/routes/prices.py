"""``/api/v1/prices``: dynamic price series (day-ahead and the like): list, show, import, delete.

An import takes the same CSV or JSON as ``meterhub prices import`` as the request body (see
:mod:`meterhub.analytics.prices`): every row is checked before anything is stored, and a bad
row refuses the whole body with every reason, so a series is never half imported.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel

from meterhub.analytics.prices import PriceImport, import_prices
from meterhub.api.deps import PrincipalDep, StoreDep
from meterhub.api.problems import PROBLEM_RESPONSES, ApiProblem, problem_responses
from meterhub.api.render import FormatQuery, render
from meterhub.api.routes._params import EndQuery, StartQuery, check_acceptable, iso, time_range
from meterhub.errors import InputError
from meterhub.ids import ID_PATTERN
from meterhub.pricefeeds.exports import detect_format, parse_export
from meterhub.pricefeeds.storing import StoredPrices, store_prices
from meterhub.store.base import Store

__all__ = ["MAX_BODY_BYTES", "router"]

router = APIRouter(prefix="/api/v1/prices", tags=["prices"], responses=PROBLEM_RESPONSES)

MAX_BODY_BYTES = 8 * 1024 * 1024
"""The largest price file one request may carry (a year of 15-minute slots is ~3 MB of CSV)."""
_DAY = timedelta(days=1)
SeriesPath = Annotated[
    str, PathParam(pattern=ID_PATTERN, description="Name of the price series.")
]
_IMPORT_BODY = {
    "required": True,
    "description": "Price rows: start, end or resolution, price, currency[, direction]; "
    "or a Nord Pool or ENTSO-E export (CSV, or an A44 XML document).",
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/xml": {"schema": {"type": "string"}},
        "application/json": {
            "schema": {
                "oneOf": [
                    {"type": "array", "items": {"type": "object"}},
                    {
                        "type": "object",
                        "properties": {"prices": {"type": "array", "items": {"type": "object"}}},
                    },
                ]
            }
        },
    },
}


class PriceSeries(BaseModel):
    """A stored price series: slots per direction and the span they cover."""

    series: str
    direction: str
    currency: str
    slots: int
    start: datetime
    end: datetime


class PriceSlotPublic(BaseModel):
    """One price per kWh over [start, end)."""

    series: str
    direction: str
    start: datetime
    end: datetime
    price_per_kwh: float
    currency: str


class ImportResult(BaseModel):
    """What an import did: slots read, stored (new or changed) and already equal."""

    series: str
    read: int
    stored: int
    unchanged: int
    start: datetime
    end: datetime


class DeleteResult(BaseModel):
    """How many slots a delete removed."""

    series: str
    deleted: int


def _series_rows(store: Store) -> list[dict[str, Any]]:
    return [
        {"series": s, "direction": d, "currency": c, "slots": n, "start": iso(lo), "end": iso(hi)}
        for s, d, c, n, lo, hi in store.price_series()
    ]


def _require_series(store: Store, series: str) -> None:
    if not any(name == series for name, *_ in store.price_series()):
        raise ApiProblem(404, "Unknown price series", f"no price series {series!r} (see GET /api/v1/prices)")


@router.get("", response_model=list[PriceSeries], summary="List price series")
def list_series(
    request: Request, store: StoreDep, principal: PrincipalDep, fmt: FormatQuery = None
) -> Response:
    """List stored price series per direction."""
    rows = _series_rows(store)
    return render(request, rows, rows=rows, root="series")


@router.get("/{series}", response_model=list[PriceSlotPublic], summary="Show a price series")
def show_series(
    series: SeriesPath,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    start: StartQuery = None,
    end: EndQuery = None,
    direction: Annotated[Literal["import", "export"], Query(description="Which prices.")] = "import",
    fmt: FormatQuery = None,
) -> Response:
    """Return a series' slots overlapping [start, end) (default: from a day ago to two days ahead)."""
    _require_series(store, series)
    start_ts, end_ts = time_range(start or "now-1d", end or "now+2d", "UTC", _DAY)
    rows = [
        {
            "series": p.series,
            "direction": p.direction.value,
            "start": iso(p.start),
            "end": iso(p.end),
            "price_per_kwh": p.price_per_kwh,
            "currency": p.currency,
        }
        for p in store.prices(start_ts, end_ts, direction, series)
    ]
    return render(request, rows, rows=rows, root="prices")


def _import_text(store: Store, text: str, series: str, zone: str | None) -> PriceImport | StoredPrices:
    export = detect_format(text)
    if export is not None:
        return store_prices(store, parse_export(text, series, export, "the body", zone=zone))
    with tempfile.TemporaryDirectory(prefix="meterhub-prices-") as folder:
        path = Path(folder) / "request-body"
        path.write_text(text, encoding="utf-8")
        return import_prices(store, path, series)


@router.post(
    "/{series}",
    response_model=ImportResult,
    summary="Import prices",
    openapi_extra={"requestBody": _IMPORT_BODY},
    responses=problem_responses(413, _413="The body is larger than 8 MiB."),
)
async def import_series(
    series: SeriesPath,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    zone: Annotated[
        str | None,
        Query(max_length=32, description="For an export with several areas: the one to import, such as NO1."),
    ] = None,
    fmt: FormatQuery = None,
) -> Response:
    """Import price slots from a CSV or JSON body into a series (admins); a re-import updates prices.

    Nord Pool's data-portal CSV and the ENTSO-E platform's CSV and A44 XML exports are
    recognised too (prices per MWh there are stored per kWh, raw).
    """
    principal.require_admin()
    check_acceptable(request, tabular=True)
    if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
        raise ApiProblem(413, "Body too large", f"a price import may carry at most {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise ApiProblem(
                413, "Body too large", f"a price import may carry at most {MAX_BODY_BYTES} bytes"
            )
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"the body is not UTF-8 text: {exc}") from exc
    if "\x00" in text:
        raise InputError("the body holds NUL characters; send CSV or JSON text")
    result = await anyio.to_thread.run_sync(_import_text, store, text, series, zone)
    payload = {
        "series": result.series,
        "read": result.read,
        "stored": result.stored,
        "unchanged": result.unchanged,
        "start": iso(result.first_start),
        "end": iso(result.last_end),
    }
    return render(request, payload, rows=[payload], root="import")


@router.delete("/{series}", response_model=DeleteResult, summary="Delete prices")
def delete_series(
    series: SeriesPath,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    start: StartQuery = None,
    end: EndQuery = None,
    fmt: FormatQuery = None,
) -> Response:
    """Delete a series' slots starting in [start, end), or all of them without a range (admins)."""
    principal.require_admin()
    check_acceptable(request, tabular=True)
    _require_series(store, series)
    lo = hi = None
    if start is not None or end is not None:
        lo, hi = time_range(start or "0", end or "2199-12-31", "UTC", _DAY)
    payload = {"series": series, "deleted": store.delete_prices(series, lo, hi)}
    return render(request, payload, rows=[payload], root="delete")
