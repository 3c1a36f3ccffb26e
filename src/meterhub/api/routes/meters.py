"""``/api/v1/meters``: meters with their vendor connection options and polling health.

Secrets are write-only: an option holding a password, key, PIN or token is accepted only as a
reference ``env:NAME`` to an environment variable of the hub, never as the secret itself, and
no option whose value is a reference is ever returned; ``secret_options`` names them instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from meterhub import catalog
from meterhub.api.deps import PrincipalDep, StoreDep
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.api.render import DocFormat, FormatQuery, render
from meterhub.api.routes._params import check_acceptable, records, visible_meter
from meterhub.catalog import OPTION_KEY_PATTERN, is_reference
from meterhub.ids import ID_PATTERN
from meterhub.model import VENDOR_FILE, Meter, MeterHealth
from meterhub.poller.config import SECRET_OPTIONS
from meterhub.poller.connectors import known_vendors

__all__ = ["MeterCreate", "MeterPublic", "MeterUpdate", "router"]

router = APIRouter(prefix="/api/v1/meters", tags=["meters"], responses=PROBLEM_RESPONSES)

_OPTIONS_HELP = (
    "Vendor connection options such as base_url, sn, devid, ean, username, rate_class. "
    f"Secrets ({', '.join(sorted(SECRET_OPTIONS))}) are accepted only as references env:NAME "
    "to an environment variable of the hub, never as values, and are never returned."
)

_OPTIONS_SCHEMA: dict[str, Any] = {"propertyNames": {"pattern": OPTION_KEY_PATTERN}, "maxProperties": 32}


class MeterHealthPublic(BaseModel):
    """How polling the meter goes."""

    online: bool
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int


class MeterPublic(BaseModel):
    """A meter as the API shows it: secret options are named, never shown."""

    id: str
    vendor: str
    phases: int
    tz: str
    interval_s: int
    name: str
    options: dict[str, str] = Field(description="Connection options that are not secret references.")
    secret_options: list[str] = Field(description="Names of options set as env:NAME references.")
    health: MeterHealthPublic | None = Field(description="Polling health; null until first polled.")


class MeterCreate(BaseModel):
    """A new meter and how to reach it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN, description="Letters, digits and _ . : - (at most 64).")
    vendor: str = Field(
        max_length=32,
        description="The vendor whose API the hub polls, or file for a meter fed by imports only.",
        json_schema_extra={"enum": [*known_vendors(), VENDOR_FILE]},
    )
    phases: int = Field(1, ge=1, le=3)
    tz: str | None = Field(
        None,
        max_length=64,
        description="IANA time zone of the meter's site (default: the hub's default zone).",
    )
    interval_s: int | None = Field(
        None, ge=1, le=86_400, description="Expected seconds between readings (default: the vendor's)."
    )
    name: str = Field("", max_length=200)
    options: dict[str, str] = Field(
        default_factory=dict, description=_OPTIONS_HELP, json_schema_extra=_OPTIONS_SCHEMA
    )


class MeterUpdate(BaseModel):
    """Changes to a meter; options given are merged, and an option set to null is removed."""

    model_config = ConfigDict(extra="forbid")

    phases: int | None = Field(None, ge=1, le=3)
    tz: str | None = Field(None, max_length=64)
    interval_s: int | None = Field(None, ge=1, le=86_400)
    name: str | None = Field(None, max_length=200)
    options: dict[str, str | None] | None = Field(
        None, description=_OPTIONS_HELP, json_schema_extra=_OPTIONS_SCHEMA
    )


def meter_public(meter: Meter, health: MeterHealth | None) -> dict[str, Any]:
    """Return a meter as the API shows it, as JSON-ready data."""
    public = MeterPublic(
        id=meter.id,
        vendor=meter.vendor,
        phases=meter.phases,
        tz=meter.tz,
        interval_s=meter.interval_s,
        name=meter.name,
        options={k: v for k, v in sorted(meter.options.items()) if not is_reference(v)},
        secret_options=sorted(k for k, v in meter.options.items() if is_reference(v)),
        health=None
        if health is None
        else MeterHealthPublic(
            online=health.online,
            last_success=health.last_success,
            last_error=health.last_error,
            last_error_at=health.last_error_at,
            consecutive_failures=health.consecutive_failures,
        ),
    )
    return public.model_dump(mode="json")


def _row(public: dict[str, Any]) -> dict[str, Any]:
    health = public["health"] or {}
    return {
        **{k: public[k] for k in ("id", "vendor", "phases", "tz", "interval_s", "name")},
        "options": " ".join(f"{k}={v}" for k, v in public["options"].items()),
        "secret_options": " ".join(public["secret_options"]),
        "online": health.get("online"),
        "last_success": health.get("last_success"),
        "last_error": health.get("last_error"),
        "consecutive_failures": health.get("consecutive_failures"),
    }


@router.get("", response_model=list[MeterPublic], summary="List meters")
def list_meters(
    request: Request, store: StoreDep, principal: PrincipalDep, fmt: FormatQuery = None
) -> Response:
    """List the meters the caller may see, with their polling health."""
    health = store.health()
    items = [
        meter_public(meter, health.get(meter.id))
        for meter in store.list_meters()
        if principal.can_see_meter(meter.id)
    ]
    return render(request, items, rows=records([_row(item) for item in items]), root="meters")


@router.post("", status_code=201, response_model=MeterPublic, summary="Add a meter")
def add_meter(
    body: MeterCreate, request: Request, store: StoreDep, principal: PrincipalDep, fmt: DocFormat = None
) -> Response:
    """Add a meter (admins); secret options only as env:NAME references."""
    principal.require_admin()
    check_acceptable(request)
    vendor = catalog.check_vendor(body.vendor)
    meter = catalog.add_meter(
        store,
        body.id,
        vendor,
        phases=body.phases,
        tz=body.tz,
        interval_s=body.interval_s or catalog.vendor_interval_s(vendor),  # documented: the vendor's
        name=body.name,
        options=body.options,
    )
    return render(request, meter_public(meter, None), root="meter", status_code=201)


@router.get("/{meter_id}", response_model=MeterPublic, summary="Show a meter")
def get_meter(
    meter_id: str, request: Request, store: StoreDep, principal: PrincipalDep, fmt: FormatQuery = None
) -> Response:
    """Show one meter with its polling health."""
    meter = visible_meter(store, principal.can_see_meter, meter_id)
    public = meter_public(meter, store.health([meter_id]).get(meter_id))
    return render(request, public, rows=records([_row(public)]), root="meter")


@router.patch("/{meter_id}", response_model=MeterPublic, summary="Change a meter")
def update_meter(
    meter_id: str,
    body: MeterUpdate,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    fmt: DocFormat = None,
) -> Response:
    """Change a meter's settings (admins); options are merged, null removes one."""
    principal.require_admin()
    check_acceptable(request)
    updated = catalog.update_meter(
        store,
        meter_id,
        phases=body.phases,
        tz=body.tz,
        interval_s=body.interval_s,
        name=body.name,
        options=body.options,
    )
    return render(request, meter_public(updated, store.health([meter_id]).get(meter_id)), root="meter")


@router.delete("/{meter_id}", status_code=204, response_class=Response, summary="Remove a meter")
def remove_meter(meter_id: str, store: StoreDep, principal: PrincipalDep) -> Response:
    """Remove a meter and all its data (admins)."""
    principal.require_admin()
    catalog.remove_meter(store, meter_id)
    return Response(status_code=204)
