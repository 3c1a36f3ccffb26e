"""``/api/v1/session``: who the caller is, and what they may see."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from meterhub.api.deps import PrincipalDep
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.api.render import DocFormat, answer_formats, render
from meterhub.model import UserRole

__all__ = ["SessionPublic", "router"]

router = APIRouter(prefix="/api/v1/session", tags=["auth"], responses=PROBLEM_RESPONSES)


class SessionPublic(BaseModel):
    """The caller: user, role, how they signed in, and the meters and places shared with them."""

    user: str
    role: UserRole
    credential: str = Field(description="api_key or access_token")
    key_id: str | None
    sees_everything: bool = Field(description="True for admins, who see every meter and place.")
    meters: list[str] = Field(description="Meters shared with the caller, directly or through a place.")
    places: list[str]


@router.get("", response_model=SessionPublic, summary="Who am I", responses=answer_formats())
def who_am_i(request: Request, principal: PrincipalDep, fmt: DocFormat = None) -> Response:
    """Answer the caller's user, role and shares."""
    answer = SessionPublic(
        user=principal.user,
        role=principal.role,
        credential="api_key" if principal.key_id else "access_token",
        key_id=principal.key_id,
        sees_everything=principal.role is UserRole.ADMIN,
        meters=sorted(principal.meters),
        places=sorted(principal.places),
    )
    return render(request, answer, root="session")
