"""``/api/v1/meters/{id}/relay``: read and switch a meter's relay where the vendor has one.

Only smart-MAC devices have a relay meterhub can switch (their external-load output); any other
meter answers 409. ``GET`` shows the state last recorded (by the poller or a switch), or asks the
device with ``live=true``. ``PUT`` switches through the vendor connector, which first takes the
device's rate slot; when a poll has just used it, the switch waits up to
:data:`MAX_RATE_WAIT_S` for the next, and answers 429 with Retry-After beyond that.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Literal, TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from meterhub.api.deps import PrincipalDep, StoreDep
from meterhub.api.problems import PROBLEM_RESPONSES, ApiProblem, problem_responses
from meterhub.api.render import DocFormat, render
from meterhub.api.routes._params import check_acceptable, iso, visible_meter
from meterhub.errors import ConfigError, PayloadError, QuotaExceeded
from meterhub.model import Extra, Meter, utc_now
from meterhub.poller.connectors import with_connector
from meterhub.store.base import Store
from meterhub.vendors.base import Connector

__all__ = ["RELAY_EXTRA", "RELAY_VENDORS", "router"]

T = TypeVar("T")

router = APIRouter(prefix="/api/v1/meters", tags=["relay"], responses=PROBLEM_RESPONSES)

RELAY_VENDORS = frozenset({"smartmac"})
"""Vendors whose connector switches a relay."""
RELAY_EXTRA = "relay_on"
"""The extra series the relay state is recorded in (1.0 on, 0.0 off)."""
MAX_RATE_WAIT_S = 10.0
"""The longest a switch waits for the device's rate slot before answering 429."""
_DEVICE_PROBLEMS = problem_responses(502, _502="The device failed, or did not switch as asked.")
_LOOKBACK = (timedelta(hours=1), timedelta(days=1), timedelta(days=31), timedelta(days=400))


class RelayState(BaseModel):
    """A relay's state: ``on`` true or false, null when nothing is known yet."""

    meter: str
    on: bool | None
    ts: datetime | None
    source: Literal["recorded", "device"]


class RelayCommand(BaseModel):
    """Switch the relay on or off."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["on", "off"]


def _with_relay(store: Store, can_see: Callable[[str], bool], meter_id: str) -> Meter:
    meter = visible_meter(store, can_see, meter_id)
    if meter.vendor not in RELAY_VENDORS:
        raise ApiProblem(
            409,
            "No relay",
            f"meter {meter_id!r} ({meter.vendor}) has no relay meterhub can switch; "
            "only smart-MAC devices have one",
        )
    return meter


def recorded_state(store: Store, meter_id: str) -> Extra | None:
    """Return the newest recorded relay state of a meter, looking back at most 400 days (read-only)."""
    now = utc_now()
    for span in _LOOKBACK:
        found = store.extras(meter_id, RELAY_EXTRA, now - span, now + timedelta(minutes=5))
        if found:
            return found[-1]
    return None


async def _device(store: Store, meter: Meter, action: Callable[[Connector], Awaitable[T]]) -> T:
    """Run one connector call, waiting once for the device's rate slot if it is near."""
    try:
        try:
            return await with_connector(store, meter, action)
        except QuotaExceeded as exc:
            if exc.retry_after_s is None or exc.retry_after_s > MAX_RATE_WAIT_S:
                raise
            await anyio.sleep(exc.retry_after_s + 0.05)
            return await with_connector(store, meter, action)
    except ConfigError as exc:
        raise ApiProblem(409, "Meter not configured for its vendor", str(exc)) from exc


def _state(meter_id: str, extra: Extra | None, source: str) -> dict[str, object]:
    on = None if extra is None else extra.value >= 0.5
    return {"meter": meter_id, "on": on, "ts": iso(extra.ts if extra else None), "source": source}


@router.get("/{meter_id}/relay", response_model=RelayState, summary="Relay state", responses=_DEVICE_PROBLEMS)
async def get_relay(
    meter_id: str,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    live: Annotated[bool, Query(description="Ask the device now instead of the recorded state.")] = False,
    fmt: DocFormat = None,
) -> Response:
    """Return the relay's recorded state, or the device's own with live=true."""
    meter = await anyio.to_thread.run_sync(_with_relay, store, principal.can_see_meter, meter_id)
    if not live:
        extra = await anyio.to_thread.run_sync(recorded_state, store, meter_id)
        return render(request, _state(meter_id, extra, "recorded"), root="relay")

    async def read(connector: Connector) -> list[Extra]:
        return (await connector.latest()).extras

    extras = [e for e in await _device(store, meter, read) if e.name == RELAY_EXTRA]
    if not extras:
        raise PayloadError(f"meter {meter_id!r}: the device did not report its relay state")
    await anyio.to_thread.run_sync(store.write_extras, extras[-1:])
    return render(request, _state(meter_id, extras[-1], "device"), root="relay")


@router.put(
    "/{meter_id}/relay", response_model=RelayState, summary="Switch the relay", responses=_DEVICE_PROBLEMS
)
async def put_relay(
    meter_id: str,
    command: RelayCommand,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    fmt: DocFormat = None,
) -> Response:
    """Switch the relay on or off and return the state the device reports afterwards."""
    principal.require_writer()
    check_acceptable(request)
    meter = await anyio.to_thread.run_sync(_with_relay, store, principal.can_see_meter, meter_id)
    wanted = command.state == "on"

    async def switch(connector: Connector) -> bool:
        return await connector.set_relay(wanted)

    reported = await _device(store, meter, switch)
    now = utc_now()
    stored_at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the store keeps milliseconds
    extra = Extra(meter_id, stored_at, RELAY_EXTRA, 1.0 if reported else 0.0)
    await anyio.to_thread.run_sync(store.write_extras, [extra])
    if reported != wanted:
        raise ApiProblem(
            502,
            "Relay did not switch",
            f"asked {meter_id} to switch its relay {command.state}, "
            f"but it reports {'on' if reported else 'off'}",
            on=reported,
        )
    return render(request, _state(meter_id, extra, "device"), root="relay")
