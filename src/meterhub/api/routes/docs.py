"""``/openapi.json`` and ``/docs``: the API's description, for authenticated callers like every route.

A browser opens ``/docs?token=<access token or API key>``; the page then loads the description
with the same token.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from meterhub.api.deps import PrincipalDep

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
def openapi(request: Request, principal: PrincipalDep) -> JSONResponse:
    """Answer the OpenAPI description of the API."""
    return JSONResponse(request.app.openapi())


@router.get("/docs")
def docs(request: Request, principal: PrincipalDep) -> HTMLResponse:
    """Answer the interactive API documentation."""
    token = request.query_params.get("token")
    url = "/openapi.json" + (f"?token={quote(token, safe='')}" if token else "")
    page = get_swagger_ui_html(openapi_url=url, title="meterhub API")
    page.headers["Cache-Control"] = "no-store"
    return page
