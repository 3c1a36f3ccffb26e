"""Browser assets: our own scripts and styles, and third-party code from installed packages.

Plotly's ``plotly.min.js`` comes from the ``plotly`` wheel and Swagger UI from
``fastapi-offline``: nothing is fetched from the internet and nothing third-party is kept in
this repository. Assets are public (the sign-in page needs them); they hold no data.
"""

from __future__ import annotations

import gzip
import importlib.util
import threading
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from meterhub.errors import ConfigError
from meterhub.web.pagekit import current_session, page, to_sign_in

__all__ = ["STATIC_DIR", "mount_assets", "package_dir", "router"]

STATIC_DIR = Path(__file__).with_name("static")
CACHE_LONG = "public, max-age=86400"
router = APIRouter(include_in_schema=False)
_GZIP_LOCK = threading.Lock()


def package_dir(name: str) -> Path:
    """Return the folder of an installed package without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the package {name} is not installed; reinstall meterhub (pip install meterhub)")
    return Path(next(iter(spec.submodule_search_locations)))


@lru_cache(maxsize=1)
def _plotly_bytes() -> tuple[bytes, bytes]:
    """Return plotly.min.js as it is and gzipped (read once)."""
    plain = (package_dir("plotly") / "package_data" / "plotly.min.js").read_bytes()
    return plain, gzip.compress(plain, compresslevel=6, mtime=0)


@router.get("/static/vendor/plotly.min.js")
def plotly_js(request: Request) -> Response:
    """Answer Plotly's browser bundle from the installed plotly package, gzipped when accepted."""
    with _GZIP_LOCK:
        plain, packed = _plotly_bytes()
    headers = {"Cache-Control": CACHE_LONG, "Vary": "Accept-Encoding", "X-Content-Type-Options": "nosniff"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(packed, media_type="text/javascript", headers=headers)
    return Response(plain, media_type="text/javascript", headers=headers)


@router.get("/docs", response_class=HTMLResponse)
async def docs(request: Request) -> Response:
    """Show the interactive API documentation; requests it tries go with the signed-in session."""
    session = await current_session(request)
    if session is None and not request.query_params.get("token"):
        return to_sign_in(request)
    return page(request, "docs.html", session, title="API")


def mount_assets(app: FastAPI) -> None:
    """Serve our static files and Swagger UI's from their packages."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    swagger = package_dir("fastapi_offline") / "static"
    if not (swagger / "swagger-ui-bundle.js").is_file():
        raise ConfigError("fastapi-offline holds no Swagger UI; reinstall meterhub")
    app.mount("/docs/assets", StaticFiles(directory=swagger), name="docs-assets")
