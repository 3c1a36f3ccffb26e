"""``/api/v1/meters/{id}/relay``: read and switch a meter's relay where the vendor has one.

Only smart-MAC devices have a relay meterhub can switch (their external-load output); any other
meter answers 409. ``GET`` shows the state last recorded (by a poll, a live read or a switch)
with its age. With ``live=true`` it asks the device, but only when the meter was last asked at
least its minimum interval ago, so a live read never takes the quota slot the poller needs;
otherwise it answers the recorded state with its age and when the device may be asked again.
``PUT`` switches in the meter's next turn: when a poll has just used the device's rate slot, the
switch waits up to :data:`MAX_RATE_WAIT_S` for the next, and answers 429 with Retry-After beyond
that. What a live read or a switch fetches is stored like a poll's data and counts as the
meter's poll. In the hub's own process (``meterhub serve``) both run through its poller
(:func:`use_poller`); an API alone goes through the quota ledger in the store.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Literal

import anyio
import anyio.to_thread
from fastapi import APIRouter, FastAPI, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from meterhub.api.deps import PrincipalDep, StoreDep
from meterhub.api.problems import PROBLEM_RESPONSES, ApiProblem, problem_responses
from meterhub.api.render import DocFormat, render
from meterhub.api.routes._params import check_acceptable, iso, visible_meter
from meterhub.errors import ConfigError, PayloadError
from meterhub.model import Extra, Meter
from meterhub.poller.live import RELAY_EXTRA, Contact, LedgerLive, LiveReads, ScheduledLive
from meterhub.poller.scheduler import Poller
from meterhub.store.base import Store

__all__ = ["RELAY_EXTRA", "RELAY_VENDORS", "router", "use_poller"]

router = APIRouter(prefix="/api/v1/meters", tags=["relay"], responses=PROBLEM_RESPONSES)

RELAY_VENDORS = frozenset({"smartmac"})
"""Vendors whose connector switches a relay."""
MAX_RATE_WAIT_S = 10.0
"""The longest a switch waits for the device's rate slot before answering 429."""
_DEVICE_PROBLEMS = problem_responses(502, _502="The device failed, or did not switch as asked.")
_LOOKBACK = (timedelta(hours=1), timedelta(days=1), timedelta(days=31), timedelta(days=400))


class RelayState(BaseModel):
    """A relay's state: ``on`` true or false, null when nothing is known yet.

    ``source`` is ``device`` when this request asked the device, ``recorded`` when the state is
    the last one stored (by a poll, a live read or a switch); ``age_s`` is how old ``ts`` is.
    """

    meter: str
    on: bool | None
    ts: datetime | None
    age_s: float | None
    source: Literal["recorded", "device"]
    next_live_in_s: float
    """Seconds until ``live=true`` may ask the device again (0: it may now)."""


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


def recorded_state(store: Store, meter_id: str, now: datetime) -> Extra | None:
    """Return the newest recorded relay state of a meter, looking back at most 400 days (read-only)."""
    for span in _LOOKBACK:
        found = store.extras(meter_id, RELAY_EXTRA, now - span, now + timedelta(minutes=5))
        if found:
            return found[-1]
    return None


def use_poller(app: FastAPI, poller: Poller) -> None:
    """Run the app's live reads and relay switches as polls of ``poller`` (same process)."""
    app.state.live_reads = ScheduledLive(poller)


def _live_reads(request: Request) -> LiveReads:
    found: LiveReads | None = getattr(request.app.state, "live_reads", None)
    return found if found is not None else LedgerLive()


def _reported(meter_id: str, contact: Contact) -> Extra:
    """Return the relay state in what the device answered."""
    fetched = contact.fetched
    extras = [e for e in fetched.extras if e.name == RELAY_EXTRA] if fetched is not None else []
    if not extras:
        raise PayloadError(f"meter {meter_id!r}: the device did not report its relay state")
    return extras[-1]


def _state(
    meter_id: str, extra: Extra | None, source: str, now: datetime, next_live_in_s: float = 0.0
) -> dict[str, object]:
    on = None if extra is None else extra.value >= 0.5
    age_s = None if extra is None else round(max(0.0, (now - extra.ts).total_seconds()), 3)
    return {
        "meter": meter_id,
        "on": on,
        "ts": iso(extra.ts if extra else None),
        "age_s": age_s,
        "source": source,
        "next_live_in_s": round(next_live_in_s, 3),
    }


@router.get("/{meter_id}/relay", response_model=RelayState, summary="Relay state", responses=_DEVICE_PROBLEMS)
async def get_relay(
    meter_id: str,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    live: Annotated[bool, Query(description="Ask the device now instead of the recorded state.")] = False,
    fmt: DocFormat = None,
) -> Response:
    """Return the relay's recorded state with its age, or the device's own with live=true."""
    meter = await anyio.to_thread.run_sync(_with_relay, store, principal.can_see_meter, meter_id)
    live_reads = _live_reads(request)
    if live:
        try:
            contact = await live_reads.read(store, meter)
        except ConfigError as exc:
            raise ApiProblem(409, "Meter not configured for its vendor", str(exc)) from exc
        if contact.fetched is not None:
            fresh = _reported(meter_id, contact)
            return render(request, _state(meter_id, fresh, "device", contact.now, contact.next_call_in_s),
                          root="relay")
        now, next_live_in_s = contact.now, contact.next_call_in_s
    else:
        now, next_live_in_s = live_reads.now(), 0.0
    extra = await anyio.to_thread.run_sync(recorded_state, store, meter_id, now)
    return render(request, _state(meter_id, extra, "recorded", now, next_live_in_s), root="relay")


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
    try:
        contact = await _live_reads(request).switch(store, meter, wanted, MAX_RATE_WAIT_S)
    except ConfigError as exc:
        raise ApiProblem(409, "Meter not configured for its vendor", str(exc)) from exc
    extra = _reported(meter_id, contact)
    reported = extra.value >= 0.5
    if reported != wanted:
        raise ApiProblem(
            502,
            "Relay did not switch",
            f"asked {meter_id} to switch its relay {command.state}, "
            f"but it reports {'on' if reported else 'off'}",
            on=reported,
        )
    state = _state(meter_id, extra, "device", contact.now, contact.next_call_in_s)
    return render(request, state, root="relay")
