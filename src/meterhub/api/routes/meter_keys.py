"""``POST /api/v1/meters/{id}/rotate-key``: rotate a meter's vendor API key (admins).

A thin handler over :mod:`meterhub.vendorkeys`: the vendor makes a new key, the hub keeps it
in its store and switches every meter of the account to it. The answer names references and
meters, never a key. When the vendor fails nothing changes and the problem says so (502, or
429 over the vendor's quota).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from meterhub.api.deps import PrincipalDep, StoreDep
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.api.render import DocFormat, render
from meterhub.api.routes._params import check_acceptable
from meterhub.vendorkeys import rotate_meter_key

__all__ = ["KeyRotationPublic", "router"]

router = APIRouter(prefix="/api/v1/meters", tags=["meters"], responses=PROBLEM_RESPONSES)


class KeyRotationPublic(BaseModel):
    """What a key rotation changed, by references only."""

    meter: str
    previous: str = Field(description="The key reference the meter logged in with.")
    reference: str = Field(description="The reference of the new key, kept in the hub's store.")
    meters: list[str] = Field(description="Every meter of the account: all log in with the new key.")
    switched: list[str] = Field(description="The meters whose options changed to the new reference.")
    lines: list[str] = Field(description="What changed, for people.")


@router.post(
    "/{meter_id}/rotate-key",
    response_model=KeyRotationPublic,
    summary="Rotate a meter's vendor API key",
)
async def rotate_key(
    meter_id: str, request: Request, store: StoreDep, principal: PrincipalDep, fmt: DocFormat = None
) -> Response:
    """Ask the vendor for a new API key and switch every meter of the account to it (admins)."""
    principal.require_admin()
    check_acceptable(request)
    rotation = await rotate_meter_key(store, meter_id)
    public = KeyRotationPublic(
        meter=rotation.meter_id,
        previous=rotation.previous,
        reference=rotation.reference,
        meters=list(rotation.meters),
        switched=list(rotation.switched),
        lines=rotation.lines(),
    )
    return render(request, public, root="rotation")
