"""Pages and data routes of the dashboard (see the module's handlers)."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
