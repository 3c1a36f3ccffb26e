"""``/api/v1/status``, ``/api/v1/meters/{id}/status`` and ``/api/v1/status/prices``: how collecting goes.

Per meter: its effective poll interval, online or offline, consecutive failures, the last
success, the last error with its time, the newest reading and its age, each vendor quota rule
with the calls used and left in its current window, and the open backfill. Quota scope keys may
name accounts, so they are never answered; only the rules' counts are. Times are UTC.

Per price feed (``[[prices]]``, :func:`meterhub.status.price_feed_status`): its series, zone and
the worker fetching it, the last success and what it stored, the newest stored slot and whether
tomorrow is stored, the last error in one line (never the token) and the next try. Prices are
not any one meter's, so every signed-in caller may see them, as ``GET /api/v1/prices``.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from meterhub.api.deps import PrincipalDep, StoreDep
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.api.render import FormatQuery, render
from meterhub.api.routes._params import records, visible_meter
from meterhub.status import MeterStatus, PriceFeedStatus, meter_status, price_feed_status

__all__ = [
    "BackfillStatusPublic",
    "FeedStoredPublic",
    "MeterStatusPublic",
    "PriceFeedStatusPublic",
    "QuotaStatusPublic",
    "router",
]

router = APIRouter(prefix="/api/v1", tags=["status"], responses=PROBLEM_RESPONSES)


class QuotaStatusPublic(BaseModel):
    """One vendor limit the meter's calls take, and its current window's use."""

    rule: str
    scope: str = Field(description="What the limit counts by: meter, account or ip.")
    limit_calls: int
    window_s: int
    used_calls: int | None = Field(description="Calls in the current window; null when not known here.")
    left_calls: int | None


class BackfillStatusPublic(BaseModel):
    """An unfinished history backfill: [start, end), stored up to done_until."""

    kind: str = Field(description="backfill (asked for) or recovery (a window the poller missed).")
    start: datetime
    end: datetime
    done_until: datetime
    percent_done: float


class MeterStatusPublic(BaseModel):
    """How collecting one meter goes."""

    meter_id: str
    name: str
    vendor: str
    tz: str
    checked_at: datetime
    poll_interval_s: int | None = Field(description="The interval it is polled at; null if not polled.")
    online: bool | None = Field(description="Null until the first poll.")
    consecutive_failures: int
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    newest_reading_at: datetime | None
    newest_reading_age_s: float | None
    quotas: list[QuotaStatusPublic]
    backfill: BackfillStatusPublic | None
    config_error: str | None = Field(description="Why the meter's options cannot be used, if so.")


class FeedStoredPublic(BaseModel):
    """What a feed's last successful fetch stored."""

    days: str = Field(description="The local days asked for: 2026-10-25 or 2026-10-24..2026-10-25.")
    slots: int = Field(description="Price slots the answer held.")
    stored: int = Field(description="Slots new or changed in the store.")
    unchanged: int
    first_start: datetime
    last_end: datetime


class PriceFeedStatusPublic(BaseModel):
    """How one day-ahead price feed goes."""

    series: str
    direction: str = Field(description="import, or export (compensation).")
    source: str
    zone: str = Field(description="The bidding zone, such as NO1 or DE-LU.")
    tz: str = Field(description="The zone's local time zone; days are its days.")
    checked_at: datetime
    state: str = Field(description="ok, waiting (not published yet, or quota), failing, overdue or stopped.")
    fetched_by: str | None = Field(description="The worker fetching it; null when none does.")
    fetches: int
    consecutive_failures: int
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_stored: FeedStoredPublic | None
    last_error: str | None = Field(description="The last failure in one line; the token never shows.")
    last_error_at: datetime | None
    note: str | None = Field(description="The last look's outcome when no error: 'DAY not published yet'.")
    next_try_at: datetime | None
    newest_slot_end: datetime | None = Field(description="The end of the series' newest stored slot.")
    tomorrow: date
    tomorrow_stored: bool = Field(description="Whether the stored slots reach the end of tomorrow.")


_BACKFILL_FIELDS = tuple(BackfillStatusPublic.model_fields)
_STORED_FIELDS = tuple(FeedStoredPublic.model_fields)


def status_public(item: MeterStatus) -> dict[str, Any]:
    """Return a meter's status as JSON-ready data."""
    return MeterStatusPublic.model_validate(dataclasses.asdict(item)).model_dump(mode="json")


def _row(item: MeterStatus) -> dict[str, Any]:
    """Return a flat row for CSV and YAML: quotas as ``rule=used/limit/window`` words."""
    fields = dataclasses.asdict(item)
    job = fields.pop("backfill") or {}
    fields["quotas"] = " ".join(
        f"{q.rule}={'?' if q.used_calls is None else q.used_calls}/{q.limit_calls}/{q.window_s}s"
        for q in item.quotas
    )
    return {**fields, **{f"backfill_{name}": job.get(name) for name in _BACKFILL_FIELDS}}


@router.get("/status", response_model=list[MeterStatusPublic], summary="Collection status of meters")
def list_status(
    request: Request, store: StoreDep, principal: PrincipalDep, fmt: FormatQuery = None
) -> Response:
    """Return the collection status of every meter the caller may see."""
    visible = [meter.id for meter in store.list_meters() if principal.can_see_meter(meter.id)]
    found = meter_status(store, visible)
    items = [status_public(item) for item in found]
    return render(request, items, rows=records([_row(item) for item in found]), root="statuses")


def feed_public(item: PriceFeedStatus) -> dict[str, Any]:
    """Return a price feed's status as JSON-ready data."""
    return PriceFeedStatusPublic.model_validate(dataclasses.asdict(item)).model_dump(mode="json")


def _feed_row(item: PriceFeedStatus) -> dict[str, Any]:
    """Return a flat row for CSV and YAML: what the last success stored as ``stored_*`` columns."""
    fields = dataclasses.asdict(item)
    span = fields.pop("last_stored") or {}
    return {**fields, **{f"stored_{name}": span.get(name) for name in _STORED_FIELDS}}


@router.get(
    "/status/prices",
    response_model=list[PriceFeedStatusPublic],
    summary="Status of the day-ahead price feeds",
)
def list_price_feeds(
    request: Request, store: StoreDep, principal: PrincipalDep, fmt: FormatQuery = None
) -> Response:
    """Return each price feed's worker, last success, newest stored slot, last error and next try."""
    found = price_feed_status(store)
    items = [feed_public(item) for item in found]
    return render(request, items, rows=records([_feed_row(item) for item in found]), root="feeds")


@router.get(
    "/meters/{meter_id}/status", response_model=MeterStatusPublic, summary="Collection status of a meter"
)
def get_status(
    meter_id: str, request: Request, store: StoreDep, principal: PrincipalDep, fmt: FormatQuery = None
) -> Response:
    """Return the collection status of one meter."""
    visible_meter(store, principal.can_see_meter, meter_id)
    item = meter_status(store, [meter_id])[0]
    return render(request, status_public(item), rows=records([_row(item)]), root="status")
