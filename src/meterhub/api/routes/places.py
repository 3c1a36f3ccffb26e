"""``/api/v1/places``: places, their meters by role, and their tariffs (see analytics.tariffs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from meterhub import placebook
from meterhub.analytics.tariffs import Tariff
from meterhub.api.deps import PrincipalDep, StoreDep
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.api.render import DocFormat, FormatQuery, render
from meterhub.api.routes._params import check_acceptable, visible_place
from meterhub.ids import ID_PATTERN
from meterhub.model import Place, Role

__all__ = ["PlaceCreate", "PlacePublic", "TariffBody", "router"]

router = APIRouter(prefix="/api/v1/places", tags=["places"], responses=PROBLEM_RESPONSES)

Money = Annotated[float, Field(ge=-1e6, le=1e6)]
"""The envelope of an amount; meterhub.placebook says which may be negative (adders only)."""


class TariffBody(BaseModel):
    """How a place's energy is priced: import one way (fixed, time-of-use or a series), export, fees."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    currency: str = Field("", max_length=3, description="Currency of every price and fee, such as EUR.")
    import_per_kwh: Money | None = Field(None, description="Fixed import price per kWh.")
    peak_per_kwh: Money | None = Field(None, description="Time-of-use peak price per kWh.")
    offpeak_per_kwh: Money | None = Field(None, description="Time-of-use off-peak price per kWh.")
    peak_start_hour: int = Field(7, ge=0, le=23, description="Local hour the peak window starts.")
    peak_end_hour: int = Field(23, ge=1, le=24, description="Local hour it ends (24 is midnight).")
    peak_weekdays_only: bool = Field(True, description="Peak prices Monday to Friday only.")
    import_series: str | None = Field(None, max_length=64, description="Dynamic import price series.")
    import_adder_per_kwh: Money = Field(0.0, description="Added to every import price per kWh.")
    export_per_kwh: Money | None = Field(None, description="Fixed export compensation per kWh.")
    export_series: str | None = Field(None, max_length=64, description="Export compensation series.")
    export_adder_per_kwh: Money = Field(0.0, description="Added to every export price per kWh.")
    fee_per_day: Money = Field(0.0, description="Fixed fee per local day.")
    fee_per_month: Money = Field(0.0, description="Fixed fee per local month.")
    capacity_thresholds_kwh: list[Annotated[float, Field(gt=0, le=1e6)]] | None = Field(
        None, max_length=50, description="Capacity steps in kWh/h, increasing."
    )
    capacity_peak_days: int | None = Field(None, ge=1, le=31, description="Peak days averaged.")


class PlaceMeter(BaseModel):
    """A meter in a place and what it measures there."""

    model_config = ConfigDict(extra="forbid")

    meter: str = Field(max_length=64)
    role: Role


class PlacePublic(BaseModel):
    """A place, the meters in it by role, and its tariff."""

    id: str
    tz: str
    name: str
    meters: list[PlaceMeter]
    tariff: dict[str, Any]


class PlaceCreate(BaseModel):
    """A new place."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN, description="Letters, digits and _ . : - (at most 64).")
    tz: str = Field(max_length=64, description="IANA time zone such as Europe/Oslo.")
    name: str = Field("", max_length=200)
    meters: list[PlaceMeter] = Field(default_factory=list, max_length=500)
    tariff: TariffBody | None = None


class PlaceUpdate(BaseModel):
    """Changes to a place: fields given replace the current ones (meters and tariff whole)."""

    model_config = ConfigDict(extra="forbid")

    tz: str | None = Field(None, max_length=64)
    name: str | None = Field(None, max_length=200)
    meters: list[PlaceMeter] | None = Field(None, max_length=500)
    tariff: TariffBody | None = None


class RoleBody(BaseModel):
    """The role of a meter in a place."""

    model_config = ConfigDict(extra="forbid")

    role: Role


def place_public(place: Place, can_see_meter: Callable[[str], bool]) -> dict[str, Any]:
    """Return a place as the API shows it, listing only meters the caller may see."""
    return {
        "id": place.id,
        "tz": place.tz,
        "name": place.name,
        "meters": [{"meter": m, "role": r.value} for m, r in place.meters if can_see_meter(m)],
        "tariff": dict(place.tariff),
    }


def _row(public: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": public["id"],
        "tz": public["tz"],
        "name": public["name"],
        "meters": " ".join(f"{m['role']}:{m['meter']}" for m in public["meters"]),
        "tariff": " ".join(f"{k}={v}" for k, v in sorted(public["tariff"].items())),
    }


def _settings(body: TariffBody | None) -> dict[str, Any]:
    return {} if body is None else body.model_dump(exclude_defaults=True)


def _pairs(meters: list[PlaceMeter]) -> list[tuple[str, Role]]:
    return [(m.meter, m.role) for m in meters]


PlaceId = Annotated[str, Path(max_length=64)]


@router.get("", response_model=list[PlacePublic], summary="List places")
def list_places(
    request: Request, store: StoreDep, principal: PrincipalDep, fmt: FormatQuery = None
) -> Response:
    """List the places the caller may see, with their meters and tariffs."""
    items = [
        place_public(p, principal.can_see_meter) for p in store.list_places() if principal.can_see_place(p.id)
    ]
    return render(request, items, rows=[_row(i) for i in items], root="places")


@router.post("", status_code=201, response_model=PlacePublic, summary="Add a place")
def add_place(
    body: PlaceCreate, request: Request, store: StoreDep, principal: PrincipalDep, fmt: DocFormat = None
) -> Response:
    """Add a place with its meters and tariff (admins)."""
    principal.require_admin()
    check_acceptable(request)
    place = placebook.add_place(
        store, body.id, body.tz, body.name, _pairs(body.meters), _settings(body.tariff)
    )
    return render(request, place_public(place, principal.can_see_meter), root="place", status_code=201)


@router.get("/{place_id}", response_model=PlacePublic, summary="Show a place")
def get_place(
    place_id: PlaceId, request: Request, store: StoreDep, principal: PrincipalDep, fmt: FormatQuery = None
) -> Response:
    """Show one place with its meters and tariff."""
    public = place_public(visible_place(store, principal.can_see_place, place_id), principal.can_see_meter)
    return render(request, public, rows=[_row(public)], root="place")


@router.patch("/{place_id}", response_model=PlacePublic, summary="Change a place")
def update_place(
    place_id: PlaceId,
    body: PlaceUpdate,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    fmt: DocFormat = None,
) -> Response:
    """Change a place's zone, name, meters or tariff (admins); what is given replaces what was."""
    principal.require_admin()
    check_acceptable(request)
    changes: dict[str, Any] = {"tz": body.tz, "name": body.name}
    if body.meters is not None:
        changes["meters"] = _pairs(body.meters)
    if "tariff" in body.model_fields_set:
        changes["tariff"] = _settings(body.tariff)
    updated = placebook.change_place(store, place_id, **changes)
    return render(request, place_public(updated, principal.can_see_meter), root="place")


@router.delete("/{place_id}", status_code=204, response_class=Response, summary="Remove a place")
def remove_place(place_id: PlaceId, store: StoreDep, principal: PrincipalDep) -> Response:
    """Remove a place (admins); its meters and their data stay."""
    principal.require_admin()
    placebook.remove_place(store, place_id)
    return Response(status_code=204)


@router.put("/{place_id}/meters/{meter_id}", response_model=PlacePublic, summary="Put a meter in a place")
def attach_meter(
    place_id: PlaceId,
    meter_id: Annotated[str, Path(max_length=64)],
    body: RoleBody,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    fmt: DocFormat = None,
) -> Response:
    """Put a meter in a place with a role, replacing its role there (admins)."""
    principal.require_admin()
    check_acceptable(request)
    place = placebook.attach_meter(store, place_id, meter_id, body.role)
    return render(request, place_public(place, principal.can_see_meter), root="place")


@router.delete(
    "/{place_id}/meters/{meter_id}", response_model=PlacePublic, summary="Take a meter out of a place"
)
def detach_meter(
    place_id: PlaceId,
    meter_id: Annotated[str, Path(max_length=64)],
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    fmt: DocFormat = None,
) -> Response:
    """Take a meter out of a place (admins)."""
    principal.require_admin()
    check_acceptable(request)
    place = placebook.detach_meter(store, place_id, meter_id)
    return render(request, place_public(place, principal.can_see_meter), root="place")


@router.get("/{place_id}/tariff", response_model=TariffBody, summary="Show a place's tariff")
def get_tariff(
    place_id: PlaceId, request: Request, store: StoreDep, principal: PrincipalDep, fmt: FormatQuery = None
) -> Response:
    """Show a place's tariff with every setting (defaults included)."""
    place = visible_place(store, principal.can_see_place, place_id)
    data = TariffBody.model_validate(Tariff.from_data(place.tariff).to_data()).model_dump(mode="json")
    return render(request, data, rows=[data], root="tariff")


@router.put("/{place_id}/tariff", response_model=TariffBody, summary="Set a place's tariff")
def put_tariff(
    place_id: PlaceId,
    body: TariffBody,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    fmt: FormatQuery = None,
) -> Response:
    """Replace a place's tariff (admins); an empty object clears it."""
    principal.require_admin()
    check_acceptable(request, tabular=True)
    data = placebook.set_tariff(store, place_id, _settings(body))
    shown = TariffBody.model_validate(Tariff.from_data(data).to_data()).model_dump(mode="json")
    return render(request, shown, rows=[shown], root="tariff")
