"""The web dashboard: server-rendered pages, their data as columns, and a live event stream."""

from __future__ import annotations

from fastapi import FastAPI

from meterhub.web import assets, capacity_pages, data, events, manage, pages, place_pages, prices_pages

__all__ = ["install_web"]


def install_web(app: FastAPI) -> None:
    """Add the dashboard's pages, data routes, event stream and assets to the hub's app."""
    app.include_router(assets.router)  # before the mount, so /static/vendor/ is ours to answer
    assets.mount_assets(app)
    app.include_router(pages.router)
    app.include_router(data.router)
    app.include_router(events.router)
    app.include_router(place_pages.router)
    app.include_router(capacity_pages.router)
    app.include_router(prices_pages.router)
    app.include_router(manage.router)
    app.include_router(manage.events_router)
