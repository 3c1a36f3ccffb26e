"""The ASGI application: health, the REST API under /api/v1, metrics, the API docs and the dashboard."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from meterhub import __version__
from meterhub.api.auth import Authenticator
from meterhub.api.nul_guard import reject_nul_parameters
from meterhub.api.problems import install_problem_handlers
from meterhub.api.routes import RESOURCE_ROUTERS
from meterhub.api.websession import WebSessions
from meterhub.config import Settings
from meterhub.errors import MeterhubError
from meterhub.metrics import RequestMetricsMiddleware
from meterhub.redact import backend_kind, redact_text
from meterhub.store import open_store
from meterhub.web import install_web

__all__ = ["create_app"]

logger = logging.getLogger("meterhub.api")

DESCRIPTION = (
    "One API over every meter the hub collects. Authenticate with `Authorization: Bearer <token "
    "or API key>`, `X-API-Key`, or `?token=`; get tokens from `POST /api/v1/auth/token`. Every "
    "JSON answer is also XML (`?format=xml` or `Accept: application/xml`); tables also CSV, YAML "
    "and NDJSON. Errors are RFC 9457 problem details."
)


def create_app(database_url: str, settings: Settings | None = None) -> FastAPI:
    """Build the hub's ASGI app on the store at ``database_url``."""
    chosen = settings if settings is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = await anyio.to_thread.run_sync(open_store, database_url)
        app.state.store = store
        app.state.auth = Authenticator(store, chosen)
        app.state.web_sessions = WebSessions(app.state.auth)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(store.close)

    app = FastAPI(
        title="meterhub",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(reject_nul_parameters)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = chosen
    install_problem_handlers(app)
    app.add_middleware(RequestMetricsMiddleware)

    @app.get("/healthz", tags=["health"])
    async def healthz(request: Request) -> JSONResponse:
        """Report whether the hub and its database answer; anyone may ask, so it names no internals."""
        body: dict[str, Any] = {
            "status": "ok",
            "version": __version__,
            "database": backend_kind(database_url),
        }
        try:
            body["meters"] = len(await anyio.to_thread.run_sync(request.app.state.store.list_meters))
        except MeterhubError as exc:
            logger.warning("health check: the database does not answer: %s", redact_text(str(exc)))
            body.update(status="degraded", error="the database does not answer; see the hub's log")
            return JSONResponse(body, status_code=503)
        worker_status = getattr(request.app.state, "worker_status", None)
        if worker_status is not None:  # set by the hub: this worker's role and the meters it holds
            body["worker"] = worker_status()
        return JSONResponse(body)

    for router in RESOURCE_ROUTERS:
        app.include_router(router)
    install_web(app)
    return app
