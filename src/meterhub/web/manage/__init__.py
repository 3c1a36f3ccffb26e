"""Managing the hub from the dashboard (admins only): meters, places, users, keys, backfills."""

from __future__ import annotations

from fastapi import APIRouter

from meterhub.web.manage import backfill, home, keys, meters, places, users

__all__ = ["events_router", "router"]

router = APIRouter(include_in_schema=False)
for part in (home, meters, backfill, places, users, keys):
    router.include_router(part.router)
events_router = backfill.events_router
