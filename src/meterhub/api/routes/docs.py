"""``/openapi.json``: the API's description, for authenticated callers like every route.

The interactive page ``/docs`` is part of the dashboard (:mod:`meterhub.web.assets`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from meterhub.api.deps import PrincipalDep

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
def openapi(request: Request, principal: PrincipalDep) -> JSONResponse:
    """Answer the OpenAPI description of the API."""
    return JSONResponse(request.app.openapi())
