"""The ASGI application: health now; the REST API and dashboard mount here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from meterhub import __version__
from meterhub.errors import MeterhubError
from meterhub.store import Store, open_store
from meterhub.store.factory import redact_url

__all__ = ["create_app"]


def create_app(database_url: str) -> FastAPI:
    """Build the hub's ASGI app on the store at ``database_url``."""
    holder: dict[str, Store] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        holder["store"] = await anyio.to_thread.run_sync(open_store, database_url)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(holder["store"].close)

    app = FastAPI(title="meterhub", version=__version__, lifespan=lifespan)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> JSONResponse:
        """Report whether the hub and its database answer."""
        body: dict[str, Any] = {
            "status": "ok",
            "version": __version__,
            "database": redact_url(database_url),
        }
        try:
            body["meters"] = len(await anyio.to_thread.run_sync(holder["store"].list_meters))
        except MeterhubError as exc:
            body.update(status="degraded", error=str(exc))
            return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    return app
